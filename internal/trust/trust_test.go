//go:build unix

package trust

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// foreign is a uid that is neither root nor the user running the tests.
const foreign = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user (chown 65534)")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPath(t *testing.T) {
	t.Setenv("SUDO_UID", "")
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path to check
		wantErr string
	}{
		{"own file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "f")
			must(t, os.WriteFile(p, nil, 0o600))
			return p
		}, ""},
		{"missing file in own dir", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "a", "b", "c")
		}, ""},
		{"group-writable file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "f")
			must(t, os.WriteFile(p, nil, 0o600))
			must(t, os.Chmod(p, 0o620))
			return p
		}, "writable by group (mode 0620); chmod go-w"},
		{"world-writable parent", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "d")
			must(t, os.Mkdir(d, 0o700))
			must(t, os.Chmod(d, 0o777))
			p := filepath.Join(d, "f")
			must(t, os.WriteFile(p, nil, 0o600))
			return p
		}, "d: writable by others (mode 0777)"},
		{"world-writable sticky parent", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "d")
			must(t, os.Mkdir(d, 0o700))
			must(t, os.Chmod(d, 0o777|os.ModeSticky))
			p := filepath.Join(d, "f")
			must(t, os.WriteFile(p, nil, 0o600))
			return p
		}, ""},
		{"missing file under a world-writable dir", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "d")
			must(t, os.Mkdir(d, 0o700))
			must(t, os.Chmod(d, 0o777))
			return filepath.Join(d, "new", "f")
		}, "writable by others"},
		{"symlink", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "f")
			must(t, os.WriteFile(p, nil, 0o600))
			l := filepath.Join(dir, "l")
			must(t, os.Symlink(p, l))
			return l
		}, "is a symbolic link"},
		{"symlinked parent is resolved", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "d")
			must(t, os.Mkdir(d, 0o700))
			must(t, os.WriteFile(filepath.Join(d, "f"), nil, 0o600))
			must(t, os.Symlink(d, filepath.Join(dir, "l")))
			return filepath.Join(dir, "l", "f")
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup(t, t.TempDir())
			err := Path(p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Path(%s): %v, want nil", p, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Path(%s): %v, want an error saying %q", p, err, tt.wantErr)
			}
			var te *Error
			if !errors.As(err, &te) {
				t.Errorf("Path(%s): %T, want a *trust.Error", p, err)
			}
		})
	}
}

func TestPathForeignOwner(t *testing.T) {
	needRoot(t)
	t.Setenv("SUDO_UID", "")
	dir := t.TempDir()
	d := filepath.Join(dir, "wgnet.secrets")
	must(t, os.Mkdir(d, 0o700))
	k := filepath.Join(d, "s1.key")
	must(t, os.WriteFile(k, nil, 0o600))
	must(t, os.Chown(d, foreign, foreign))
	err := Path(k)
	want := d + ": owned by uid 65534, not root or you (uid 0); chown -R 0 " + d + " or remove it"
	if err == nil || err.Error() != want {
		t.Errorf("Path under a foreign dir: %v\nwant %s", err, want)
	}
	// The user who ran sudo is trusted too.
	t.Setenv("SUDO_UID", "65534")
	if err := Path(k); err != nil {
		t.Errorf("with SUDO_UID=65534: %v, want nil", err)
	}
	t.Setenv("SUDO_UID", "")
	must(t, os.Chown(d, 0, 0))
	must(t, os.Chown(k, foreign, foreign))
	if _, err := Open(k); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("Open of a foreign-owned file: %v", err)
	}
}

func TestTarget(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real", "wgnet.yaml")
	must(t, os.Mkdir(filepath.Dir(real), 0o700))
	must(t, os.WriteFile(real, nil, 0o644))
	link := filepath.Join(dir, "wgnet.yaml")
	must(t, os.Symlink(real, link))
	if err := Target(link); err != nil {
		t.Errorf("Target(link to own file): %v", err)
	}
	if err := Path(link); err == nil {
		t.Error("Path(link): nil, want refused")
	}
	must(t, os.Chmod(filepath.Dir(real), 0o777))
	if err := Target(link); err == nil || !strings.Contains(err.Error(), "real: writable by others") {
		t.Errorf("Target(link into a world-writable dir): %v", err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	must(t, os.WriteFile(p, []byte("x"), 0o600))
	f, err := Open(p)
	must(t, err)
	f.Close()
	l := filepath.Join(dir, "l")
	must(t, os.Symlink(p, l))
	if _, err := Open(l); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Open(symlink): %v, want refused", err)
	}
}

// TestImports keeps the package at the bottom of the tree: standard library and
// golang.org/x/sys only.
func TestImports(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", nil, parser.ImportsOnly)
	must(t, err)
	for _, p := range pkgs {
		for name, f := range p.Files {
			for _, im := range f.Imports {
				path := strings.Trim(im.Path.Value, `"`)
				first, _, _ := strings.Cut(path, "/")
				if strings.Contains(first, ".") && !strings.HasPrefix(path, "golang.org/x/sys/") && !strings.HasSuffix(name, "_test.go") {
					t.Errorf("%s imports %s; trust imports only the standard library and golang.org/x/sys", name, path)
				}
			}
		}
	}
}
