package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// renderNet makes a network of hosts a, b and c in a new directory.
func renderNet(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mustCLI(t, dir, "init", "r", "--subnet", "10.0.0.0/24", "--topology", "mesh")
	for i, h := range []string{"a", "b", "c"} {
		mustCLI(t, dir, "add", h, "--endpoint", "10.1.0."+string(rune('1'+i))+":51820")
	}
	return dir
}

// TestRenderChecksEveryHostFirst: a render where one host's out dir is refused
// writes nothing, not the configs of the hosts before it, and says why.
func TestRenderChecksEveryHostFirst(t *testing.T) {
	cases := []struct {
		name  string
		root  bool
		spoil func(t *testing.T, b string) // b is DIR/out/b
		want  string
	}{
		{"out/b is a file", false, func(t *testing.T, b string) {
			must(t, os.WriteFile(b, []byte("not a directory\n"), 0o600))
		}, filepath.Join("out", "b") + ": not a directory"},
		{"out/b/wg0.conf is a directory", false, func(t *testing.T, b string) {
			must(t, os.MkdirAll(filepath.Join(b, "wg0.conf"), 0o700))
		}, filepath.Join("out", "b", "wg0.conf") + ": not a regular file"},
		{"a stale out/gone/wg0.conf is a link", false, func(t *testing.T, b string) {
			gone := filepath.Join(filepath.Dir(b), "gone")
			must(t, os.MkdirAll(gone, 0o700))
			must(t, os.Symlink("/etc/hostname", filepath.Join(gone, "wg0.conf")))
		}, filepath.Join("out", "gone", "wg0.conf")},
		{"out/b is foreign", true, func(t *testing.T, b string) {
			must(t, os.MkdirAll(b, 0o700))
			must(t, os.Chown(b, 65534, 65534))
		}, filepath.Join("out", "b") + ": owned by uid 65534"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root to give a directory to another user (chown 65534)")
			}
			t.Setenv("SUDO_UID", "")
			dir := renderNet(t)
			must(t, os.MkdirAll(filepath.Join(dir, "out"), 0o700))
			tc.spoil(t, filepath.Join(dir, "out", "b"))
			_, errs, code := cli(t, dir, "render")
			if code == 0 || !strings.Contains(errs, "nothing written") || !strings.Contains(errs, tc.want) {
				t.Errorf("render: exit %d, %s\nwant a failure saying %q and that nothing was written", code, errs, tc.want)
			}
			for _, h := range []string{"a", "b", "c"} {
				if fi, err := os.Lstat(filepath.Join(dir, "out", h, "wg0.conf")); err == nil && fi.Mode().IsRegular() {
					t.Errorf("render wrote out/%s/wg0.conf although a file was refused", h)
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestApplyRenderReports: when a write fails after others succeeded, the error
// names the files written and those not.
func TestApplyRenderReports(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "b")
	must(t, os.WriteFile(blocker, nil, 0o600)) // appeared after the plan
	step := func(host string) renderStep {
		p := filepath.Join(dir, host, "wg0.conf")
		return renderStep{renderedFile{Host: host, Path: p, Changed: true}, []byte("x\n"), true}
	}
	steps := []renderStep{step("a"), step("b"), step("c")}
	done, err := applyRender(steps)
	if err == nil {
		t.Fatal("applyRender succeeded writing under a file")
	}
	want := "render changed 1 file(s) before this: " + steps[0].Path + "\nand did not change 2: " + steps[1].Path + ", " + steps[2].Path
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v\nwant it to contain %q", err, want)
	}
	if len(done) != 1 || done[0].Host != "a" {
		t.Errorf("done = %v, want a only", done)
	}
}
