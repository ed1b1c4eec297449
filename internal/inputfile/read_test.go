package inputfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRead: a file is read whole with its mode; a directory is EISDIR; a
// regular file over MaxSize is a TooLargeError with its size, a stream one
// without. (Cancellation on a FIFO: check's TestReadFileCancel.)
func TestRead(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "a.conf")
	if err := os.WriteFile(ok, []byte("[Interface]\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	src, mode, err := Read(context.Background(), ok)
	if err != nil || string(src) != "[Interface]\n" || mode.Perm() != 0o640 {
		t.Errorf("Read = %q, %v, %v", src, mode, err)
	}
	if _, _, err := Read(context.Background(), dir); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("Read(directory) = %v, want EISDIR", err)
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxSize+1); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	var tl *TooLargeError
	if _, _, err := Read(context.Background(), big); !errors.As(err, &tl) || tl.Size != MaxSize+1 {
		t.Errorf("Read(%d-byte file) = %v, want a TooLargeError with its size", MaxSize+1, err)
	}
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	if _, _, err := Read(context.Background(), "/dev/zero"); !errors.As(err, &tl) || tl.Size != -1 {
		t.Errorf("Read(/dev/zero) = %v, want a TooLargeError of unknown size", err)
	}
}
