package check

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadFileCancel: a FIFO that never delivers, with or without a writer,
// gives up when the context is done (issue 9, finding 7), and one that
// delivers is read whole.
func TestReadFileCancel(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "s1.conf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, tt := range []struct {
		name   string
		writer bool // a writer holds the FIFO open but never writes
	}{{"no writer", false}, {"silent writer", true}} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.writer {
				w, err := os.OpenFile(fifo, os.O_RDWR, 0) // never blocks on Linux
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { _, _, err := ReadFile(ctx, fifo); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("ReadFile = %v, want the context's error", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ReadFile did not return after its context was done")
			}
		})
	}
	t.Run("delivers", func(t *testing.T) {
		go func() {
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err == nil {
				w.WriteString("[Interface]\n")
				w.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		src, _, err := ReadFile(ctx, fifo)
		if err != nil || string(src) != "[Interface]\n" {
			t.Errorf("ReadFile = %q, %v", src, err)
		}
	})
}

// TestReadFileLimit: an input over MaxFileSize is refused (issue 9, finding
// 8): a regular file by its size, before reading it; a stream once it has
// given more.
func TestReadFileLimit(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.conf")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileSize + 1); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	f.Close()
	_, _, err = ReadFile(context.Background(), big)
	if err == nil || !strings.Contains(err.Error(), "67108865 bytes, more than the 64 MiB") {
		t.Errorf("ReadFile(%d-byte file) = %v", MaxFileSize+1, err)
	}
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, _, err = ReadFile(context.Background(), "/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "more than the 64 MiB") {
		t.Errorf("ReadFile(/dev/zero) = %v", err)
	}
	if _, _, err := ReadFile(context.Background(), t.TempDir()); err == nil {
		t.Error("ReadFile of a directory: no error")
	}
}
