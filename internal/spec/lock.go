package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// LockTimeout bounds how long Lock waits for another wgnet that holds the spec.
var LockTimeout = 30 * time.Second

// Lock is held on a spec while it is read or edited: an flock on .NAME.lock
// beside the spec file (beside its target, when the spec is a symbolic link, so
// that every path to one spec takes one lock). Edits hold it exclusively from
// reading the spec to writing it and its keys, so that no edit is lost and a key
// file and the spec never disagree; readers hold it shared, so that they never
// see keys an edit has written but not yet recorded in the spec. The kernel drops
// the lock when the process dies.
type Lock struct {
	f *os.File // nil: nothing to lock (a reader of a spec never edited)
}

// LockPath returns the lock file of the spec file at path.
func LockPath(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	dir, base := filepath.Split(path)
	return filepath.Join(dir, "."+base+".lock")
}

// LockSpec takes the lock of the spec file at path, exclusive for an edit, else
// shared, waiting up to LockTimeout for another wgnet to finish.
func LockSpec(path string, exclusive bool) (*Lock, error) {
	lp := LockPath(path)
	if exclusive {
		// init and import create the spec, and its directory with it.
		if err := os.MkdirAll(filepath.Dir(lp), 0o755); err != nil {
			return nil, fmt.Errorf("lock spec %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE|noFollow, 0o644)
	if err != nil && !exclusive && (errors.Is(err, fs.ErrPermission) || errors.Is(err, errReadOnly)) {
		// A reader that can't create the lock file: no edit by this user can be
		// running, and one by another leaves the file behind to lock.
		f, err = os.OpenFile(lp, os.O_RDONLY|noFollow, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return &Lock{}, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lock spec %s: %w", path, err)
	}
	deadline := time.Now().Add(LockTimeout)
	for {
		ok, err := tryLock(f, exclusive)
		if ok {
			return &Lock{f: f}, nil
		}
		if err != nil || time.Now().After(deadline) {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("lock spec %s: %w", path, err)
			}
			return nil, fmt.Errorf("lock spec %s: another wgnet has held it for %v (lock file %s); try again when it is done", path, LockTimeout, lp)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// Edit locks the spec file at path and runs EditLocked.
func Edit(path string, edit func(d *Document) error) error {
	l, err := LockSpec(path, true)
	if err != nil {
		return err
	}
	defer l.Unlock()
	return EditLocked(path, edit)
}

// EditLocked reads the spec file at path, runs edit on it, generates the keys
// the result needs and saves it; nothing is written unless the edited spec is
// valid. A host whose public_key the edit changed away from the private key in
// the secrets directory (it now keeps its own) has that key deleted once the
// spec is saved. The caller holds the spec's lock exclusively (LockSpec), so the
// spec is read after every earlier edit was written.
func EditLocked(path string, edit func(d *Document) error) error {
	d, err := LoadDocument(path)
	if err != nil {
		return err
	}
	if err := edit(d); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return err
	}
	dir := SecretsDir(path)
	restore, err := d.retireKeys(dir)
	if err != nil {
		return err
	}
	err = d.EnsureKeys(dir)
	if err == nil {
		err = d.Save()
	}
	return errors.Join(err, restore(err == nil))
}
