package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCheckMesh1000 times `wgnet check` of a 1,000-host full mesh, from its
// spec and from its 1,000 rendered files (129 MB), against a baseline from the
// same run: reading those files and nothing else. The goal of issue 12 is under
// a second for each; it reports the medians (seconds) and the ratios to the read.
func BenchmarkCheckMesh1000(b *testing.B) {
	dir := b.TempDir()
	specPath := meshSpec(b, dir, 1000)
	out := filepath.Join(dir, "out")
	if err := runQuiet(specPath, "render", "--out", out); err != nil {
		b.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(out, "*", "*.conf"))
	if err != nil || len(files) != 1000 {
		b.Fatalf("rendered %d files: %v", len(files), err)
	}
	var specs, confs, reads []float64
	for b.Loop() {
		t0 := time.Now()
		if err := runQuiet(specPath, "check"); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := runQuiet(specPath, append([]string{"check"}, files...)...); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		for _, f := range files {
			if _, err := os.ReadFile(f); err != nil {
				b.Fatal(err)
			}
		}
		t3 := time.Now()
		specs = append(specs, t1.Sub(t0).Seconds())
		confs = append(confs, t2.Sub(t1).Seconds())
		reads = append(reads, t3.Sub(t2).Seconds())
	}
	b.ReportMetric(median(specs), "check-spec-s")
	b.ReportMetric(median(confs), "check-files-s")
	b.ReportMetric(median(reads), "read-files-s")
	b.ReportMetric(median(confs)/median(reads), "check-files/read")
}

// runQuiet runs wgnet with -f specPath and args, discarding its output.
func runQuiet(specPath string, args ...string) error {
	root := newRootCmd()
	root.SetArgs(append([]string{"-f", specPath}, args...))
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	return root.Execute()
}
