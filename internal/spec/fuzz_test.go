package spec

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/wgnet/wgnet/internal/diag"
)

// checkLine formats a problem as `wgnet check` prints it.
func checkLine(p diag.Diagnostic) string {
	loc := p.File
	if p.Line > 0 {
		loc += ":" + strconv.Itoa(p.Line)
	}
	return loc + ": " + p.Severity.String() + ": " + p.Code + ": " + p.Message
}

// TestBrokenCorpus runs every file of testdata/broken: each must give at least
// one error, never a panic, never a spec, and a Document of it must refuse to
// save. What `wgnet check` would print for all of them is the golden file
// testdata/broken.golden.
func TestBrokenCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil || len(files) < 40 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	var out strings.Builder
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		_, errs, warns := Check(name, src)
		if len(errs) == 0 {
			t.Errorf("%s: no error", name)
		}
		if s, err := Parse(name, src); err == nil || s != nil {
			t.Errorf("%s: Parse = %v, %v; want nil and an error", name, s, err)
		}
		out.WriteString("== " + name + "\n")
		for _, p := range append(errs, warns...) {
			out.WriteString(checkLine(p) + "\n")
		}
		path := filepath.Join(t.TempDir(), "wgnet.yaml")
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		if d, err := LoadDocument(path); err == nil {
			if err := d.Save(); err == nil {
				t.Errorf("%s: Document.Save wrote an invalid spec", name)
			}
		}
		if after, _ := os.ReadFile(path); string(after) != string(src) {
			t.Errorf("%s: the file changed", name)
		}
	}
	golden(t, "testdata/broken.golden", []byte(out.String()))
}

// FuzzParse: no input panics; a spec that parses renders (Marshal, or the
// Document without edits) to YAML that parses to the same spec.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/broken/*.yaml")
	seeds = append(seeds, "testdata/example.yaml", "testdata/edit/commented.yaml", "testdata/wgquick-fields.yaml")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	opts := cmp.Options{ignoreSource, cmpopts.IgnoreFields(Host{}, "Line"), cmpopts.EquateEmpty()}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, errs, warns := Check("f.yaml", data)
		for _, p := range append(errs, warns...) {
			if p.Message == "" || p.Code == "" || p.Line < 0 {
				t.Fatalf("malformed problem %#v", p)
			}
		}
		if s != nil {
			s.Lint()
		}
		good, err := Parse("f.yaml", data)
		if (err == nil) != (len(errs) == 0) {
			t.Fatalf("Parse error %v but Check found %d errors", err, len(errs))
		}
		if good != nil {
			out, err := Marshal(good)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			again, err := Parse("m.yaml", out)
			if err != nil {
				t.Fatalf("Marshal output does not parse: %v\n%s", err, out)
			}
			if diff := cmp.Diff(good, again, opts); diff != "" {
				t.Fatalf("Marshal/Parse (-want +got):\n%s", diff)
			}
		}
		d, err := ParseDocument("f.yaml", data)
		if err != nil {
			return
		}
		out, err := d.Bytes()
		if err != nil {
			t.Fatalf("Bytes: %v", err)
		}
		if good != nil {
			again, err := Parse("r.yaml", out)
			if err != nil {
				t.Fatalf("rendered Document does not parse: %v\n%s", err, out)
			}
			if diff := cmp.Diff(good, again, opts); diff != "" {
				t.Fatalf("Document render (-want +got):\n%s", diff)
			}
		}
	})
}
