package layering

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/wgnet/wgnet/"

// imports returns the imports of the non-test Go files of every package under
// the repository root, by package path below the module; every build variant
// (_linux, fallback) counts.
func imports(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		if slices.Contains(Pure, pkg) {
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "time" && slices.Contains(Clock, sel.Sel.Name) {
						t.Errorf("%s: %s reads the clock (time.%s), but %s must stay pure", fset.Position(sel.Pos()), pkg, sel.Sel.Name, pkg)
					}
				}
				return true
			})
		}
		if _, ok := out[pkg]; !ok {
			out[pkg] = nil
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if !slices.Contains(out[pkg], p) {
				out[pkg] = append(out[pkg], p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLayering(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	got := imports(t, root)
	for pkg, imps := range got {
		if strings.HasPrefix(pkg, "bench") || pkg == "." {
			continue // benchmark programs stand apart
		}
		allowed, ok := Rules[pkg]
		if !ok {
			t.Errorf("%s: no rule in internal/layering/rules.go; add one saying what it may import", pkg)
			continue
		}
		for _, imp := range imps {
			w, own := strings.CutPrefix(imp, module)
			if !own {
				if slices.Contains(Pure, pkg) && slices.Contains(Impure, imp) {
					t.Errorf("%s imports %q, but it must stay pure (no I/O, clock or randomness)", pkg, imp)
				}
				continue
			}
			if !slices.Contains(allowed, "*") && !slices.Contains(allowed, w) {
				t.Errorf("%s imports %s, which its rule does not allow (allowed: %v)", pkg, w, allowed)
			}
		}
	}
	for pkg := range Rules {
		if _, ok := got[pkg]; !ok {
			t.Errorf("rule for %s, which does not exist", pkg)
		}
	}
}

// TestArchitectureDoc checks that docs/architecture.md describes every package.
func TestArchitectureDoc(t *testing.T) {
	b, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range Rules {
		if !strings.Contains(string(b), "`"+pkg+"`") {
			t.Errorf("docs/architecture.md does not describe `%s`", pkg)
		}
	}
}
