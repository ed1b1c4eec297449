// Package atomicfile writes files so that a reader sees either the old content or
// the new, never a half-written file: temp file in the same directory, fsync,
// rename, fsync of the directory (Write), or the same without the fsyncs for
// a record of the running system that a reboot makes void anyway
// (WriteRuntime). It imports nothing of wgnet.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data, created with perm. Missing parent directories are
// created with dirPerm (0 means 0700).
func Write(path string, data []byte, perm, dirPerm os.FileMode) error {
	return write(path, data, perm, dirPerm, true)
}

// WriteRuntime is Write without the two fsyncs: the replacement is as atomic
// (a rename), and every reader sees it at once (the page cache outlives the
// writer), so a crash of the writing process leaves the old file or the new,
// never a mix; only a crash of the whole machine may lose it. That is for
// files that describe the running system, like wgnet's state of an interface
// under /run: a reboot ends the interface too, which makes the file void
// whatever it says, and /run is usually a tmpfs that a reboot empties. Each
// fsync costs from a millisecond to hundreds of them on a disk that other
// programs keep busy, and up records its state once per step.
func WriteRuntime(path string, data []byte, perm, dirPerm os.FileMode) error {
	return write(path, data, perm, dirPerm, false)
}

func write(path string, data []byte, perm, dirPerm os.FileMode, durable bool) (err error) {
	if dirPerm == 0 {
		dirPerm = 0o700
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if durable {
		if err = f.Sync(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if !durable {
		return nil
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
