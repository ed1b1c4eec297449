package main

import (
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/spec"
)

// TestReadersTakeTheLock: check, list and lab read the spec and its secrets under the
// spec's lock (shared), so while an edit holds it they wait.
func TestReadersTakeTheLock(t *testing.T) {
	dir := renderNet(t)
	path := filepath.Join(dir, "wgnet.yaml")
	l, err := spec.LockSpec(path, true)
	must(t, err)
	readers := map[string]func() error{
		"list": func() error {
			_, errs, code := cli(t, dir, "list")
			if code != 0 {
				return fmt.Errorf("exit %d: %s", code, errs)
			}
			return nil
		},
		"check": func() error {
			_, errs, code := cli(t, dir, "check")
			if code != 0 {
				return fmt.Errorf("exit %d: %s", code, errs)
			}
			return nil
		},
		"lab": func() error {
			_, err := labHosts(nil, global.specFile, io.Discard)
			return err
		},
	}
	old := global.specFile
	global.specFile = path
	t.Cleanup(func() { global.specFile = old })
	done := map[string]chan error{}
	for name, read := range readers {
		done[name] = make(chan error, 1)
		go func() { done[name] <- read() }()
	}
	time.Sleep(500 * time.Millisecond)
	for name, ch := range done {
		select {
		case err := <-ch:
			t.Errorf("%s finished (%v) while an edit held the spec", name, err)
			delete(done, name)
		default:
		}
	}
	l.Unlock()
	for name, ch := range done {
		if err := <-ch; err != nil {
			t.Errorf("%s after the edit: %v", name, err)
		}
	}
}
