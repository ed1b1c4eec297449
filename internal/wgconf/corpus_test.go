package wgconf

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/diag"
)

// corpus returns the agreement corpus: testdata/agreement/*.conf, sorted.
func corpus(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/agreement/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus under testdata/agreement: %v", err)
	}
	return files
}

// diagnostics renders what Parse reports for a file: one line per error and
// warning, in the form the CLI prints them.
func diagnostics(file string, src []byte) string {
	_, warns, err := ParseWithWarnings(file, src)
	var b strings.Builder
	for _, e := range diag.FromError(err) {
		b.WriteString("error: " + e.Located() + "\n")
	}
	for _, w := range warns {
		b.WriteString("warning: " + w.Located() + "\n")
	}
	if b.Len() == 0 {
		b.WriteString("ok\n")
	}
	return b.String()
}

// TestCorpusDiagnostics pins every message and line the parser gives for the
// agreement corpus (golden files NAME.want; -update rewrites them). The file
// names say what each one expects: ok-* must parse without error, err-* must not.
func TestCorpusDiagnostics(t *testing.T) {
	for _, path := range corpus(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".conf")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, perr := Parse(filepath.Base(path), src)
			switch {
			case strings.HasPrefix(name, "ok-") && perr != nil:
				t.Errorf("want no error, got:\n%v", perr)
			case strings.HasPrefix(name, "err-") && perr == nil:
				t.Errorf("want an error, got none")
			}
			golden(t, strings.TrimSuffix(path, ".conf")+".want", []byte(diagnostics(filepath.Base(path), src)))
		})
	}
}

// TestParseOwned checks that ParseOwnedWithWarnings, which shares src's memory,
// gives what ParseWithWarnings gives on every file of the corpus.
func TestParseOwned(t *testing.T) {
	for _, file := range corpus(t) {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		want, wantWarns, wantErr := ParseWithWarnings(file, src)
		got, gotWarns, gotErr := ParseOwnedWithWarnings(file, slices.Clone(src))
		if diff := cmp.Diff(want, got, cmpConfig); diff != "" {
			t.Errorf("%s: config (-ParseWithWarnings +ParseOwnedWithWarnings):\n%s", file, diff)
		}
		if fmt.Sprint(wantWarns, wantErr) != fmt.Sprint(gotWarns, gotErr) {
			t.Errorf("%s: %v %v, want %v %v", file, gotWarns, gotErr, wantWarns, wantErr)
		}
	}
}
