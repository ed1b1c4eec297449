package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// meshSpec writes an n-host full-mesh spec and its secrets into dir.
func meshSpec(b *testing.B, dir string, n int) string {
	b.Helper()
	var y strings.Builder
	y.WriteString("version: 1\nnetwork: big\nsubnets: [10.64.0.0/16]\ntopology: mesh\nhosts:\n")
	path := filepath.Join(dir, "wgnet.yaml")
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("h%d", i)
		fmt.Fprintf(&y, "  - name: %s\n    endpoint: 198.18.%d.%d:51820\n    address: [10.64.%d.%d]\n", name, i/250, i%250+1, i/250, i%250+1)
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			b.Fatal(err)
		}
		if err := spec.WritePrivateKey(spec.SecretsDir(path), name, k); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(path, []byte(y.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkRenderMesh1000 times `wgnet render` of a 1,000-host full mesh (1,000
// files, about 129 MB) against its baseline from the same run: writing the same
// bytes with the same atomic writes (temp file, fsync, rename, fsync of the
// directory) and nothing else. Runs alternate; it reports both medians and the
// median of the per-pair ratios (the goal is at most 2).
func BenchmarkRenderMesh1000(b *testing.B) {
	dir := b.TempDir()
	specPath := meshSpec(b, dir, 1000)
	out := filepath.Join(dir, "out")
	base := filepath.Join(dir, "base")
	var renders, writes, ratios []float64
	for b.Loop() {
		if err := os.RemoveAll(out); err != nil {
			b.Fatal(err)
		}
		root := newRootCmd()
		root.SetArgs([]string{"-f", specPath, "render", "--out", out})
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		t0 := time.Now()
		if err := root.Execute(); err != nil {
			b.Fatal(err)
		}
		r := time.Since(t0).Seconds()

		files := map[string][]byte{}
		if err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			rel, _ := filepath.Rel(out, p)
			files[filepath.Join(base, rel)] = data
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(base); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		for p, data := range files {
			if err := atomicfile.Write(p, data, 0o600, 0o700); err != nil {
				b.Fatal(err)
			}
		}
		w := time.Since(t1).Seconds()
		renders, writes, ratios = append(renders, r), append(writes, w), append(ratios, r/w)
	}
	b.ReportMetric(median(renders), "render-s")
	b.ReportMetric(median(writes), "write-bytes-s")
	b.ReportMetric(median(ratios), "render/write")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
