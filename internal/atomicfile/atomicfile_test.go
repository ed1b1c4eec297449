package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	for name, write := range map[string]func(string, []byte, os.FileMode, os.FileMode) error{"Write": Write, "WriteRuntime": WriteRuntime} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "sub", "x.conf")
			if err := write(p, []byte("one"), 0o600, 0); err != nil {
				t.Fatal(err)
			}
			if err := write(p, []byte("two"), 0o600, 0); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil || string(b) != "two" {
				t.Fatalf("read back %q, %v; want \"two\"", b, err)
			}
			fi, _ := os.Stat(p)
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
			}
			di, _ := os.Stat(filepath.Dir(p))
			if di.Mode().Perm() != 0o700 {
				t.Errorf("dir mode %v, want 0700", di.Mode().Perm())
			}
			left, _ := filepath.Glob(filepath.Join(dir, "sub", ".*tmp*"))
			if len(left) != 0 {
				t.Errorf("temp files left behind: %v", left)
			}
		})
	}
}

func TestWriteFailureLeavesOldFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; this test needs a non-root user")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "x")
	if err := Write(p, []byte("old"), 0o600, 0); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if err := Write(p, []byte("new"), 0o600, 0); err == nil {
		t.Fatal("Write into a read-only directory succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("old file changed to %q", b)
	}
}
