package layering

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// MaxFuncLines is the longest a non-test function may be in the packages and
// files of longFuncScope (issue 8: long functions there are a sign of steps that
// want names).
const MaxFuncLines = 120

// longFuncScope is what TestFunctionLength reads: whole packages (directories)
// and single files (the reconcile engine), relative to the repository root.
var longFuncScope = []string{
	"internal/compile",
	"internal/importer",
	"internal/spec",
	"internal/check",
	"internal/intent",
	"internal/netmodel",
	"internal/up/reconcile.go",
	"internal/up/sync.go",
	"internal/up/diff.go",
	"internal/up/plan.go",
	"internal/up/up.go",
}

// longFuncAllowed lists functions known to be over MaxFuncLines, as
// "path:Func" (methods by their name alone), with their length when listed.
// They belong to internal/up's owner: split them and delete the line here.
var longFuncAllowed = map[string]bool{}

func TestFunctionLength(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []string
	for _, s := range longFuncScope {
		if strings.HasSuffix(s, ".go") {
			files = append(files, s)
			continue
		}
		ents, err := os.ReadDir(filepath.Join(root, s))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if n := e.Name(); strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
				files = append(files, s+"/"+n)
			}
		}
	}
	seen := map[string]bool{}
	for _, rel := range files {
		f, err := parser.ParseFile(fset, filepath.Join(root, rel), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			id := rel + ":" + fd.Name.Name
			if n <= MaxFuncLines {
				continue
			}
			seen[id] = true
			if !longFuncAllowed[id] {
				t.Errorf("%s:%d: %s is %d lines, over %d: split it into named steps", rel, fset.Position(fd.Pos()).Line, fd.Name.Name, n, MaxFuncLines)
			}
		}
	}
	for id := range longFuncAllowed {
		if !seen[id] {
			t.Errorf("%s is allowed to be over %d lines but is not (any more): remove it from longFuncAllowed", id, MaxFuncLines)
		}
	}
}
