// Package trust decides whether wgnet may believe what a file says: the spec, the
// secrets directory and its keys, the state directory and its files, the
// directories render writes private keys into. It owns one rule, the one OpenSSH's
// StrictModes applies to ~/.ssh: the file and every directory above it belong to
// root or to you (the effective user, or the user who ran sudo), and none of them
// can be written by anyone else, unless it is a sticky directory like /tmp, where
// others can add entries but not replace yours. It also opens such files without
// following symbolic links. It imports only the standard library and
// golang.org/x/sys.
package trust

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Error says why path can't be trusted and how to fix it.
type Error struct {
	Path    string
	Problem string // "owned by uid 65534, not you (uid 0)"
	Fix     string // "chown -R 0 wgnet.secrets or remove it"
}

func (e *Error) Error() string {
	if e.Fix == "" {
		return e.Path + ": " + e.Problem
	}
	return e.Path + ": " + e.Problem + "; " + e.Fix
}

// ErrSymlink is wrapped by the error for a symbolic link where wgnet wants the
// file itself.
var ErrSymlink = errors.New("is a symbolic link")

// owners are the uids whose files wgnet trusts: root, the effective user and,
// when running as root through sudo, the user who ran sudo (whose files the
// command was surely meant to use).
func owners() (euid int, sudo int) {
	euid, sudo = os.Geteuid(), -1
	if euid == 0 {
		if n, err := strconv.Atoi(os.Getenv("SUDO_UID")); err == nil && n >= 0 {
			sudo = n
		}
	}
	return euid, sudo
}

// Info checks one file or directory, from fi (an Lstat, or the Stat of a file
// already open): it must not be a symbolic link, must be owned by root or you,
// and must not be writable by group or others, unless it is a sticky directory.
func Info(path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return &Error{Path: path, Problem: "is a symbolic link, which wgnet does not follow here", Fix: "replace it with the file or directory itself"}
	}
	euid, sudo := owners()
	if uid, ok := owner(fi); ok && uid != 0 && uid != euid && uid != sudo {
		you := fmt.Sprintf("you (uid %d)", euid)
		if sudo >= 0 {
			you = fmt.Sprintf("you (uid %d) or the sudo user (uid %d)", euid, sudo)
		}
		chown := "chown"
		if fi.IsDir() {
			chown = "chown -R"
		}
		return &Error{Path: path, Problem: fmt.Sprintf("owned by uid %d, not root or %s", uid, you),
			Fix: fmt.Sprintf("%s %d %s or remove it", chown, euid, path)}
	}
	m := fi.Mode()
	if m.Perm()&0o022 != 0 && !(fi.IsDir() && m&fs.ModeSticky != 0) {
		who := "group"
		if m.Perm()&0o002 != 0 {
			who = "others"
		}
		return &Error{Path: path, Problem: fmt.Sprintf("writable by %s (mode %04o)", who, m.Perm()),
			Fix: "chmod go-w " + path}
	}
	return nil
}

// Path checks path and every directory above it, up to /. A symbolic link at
// path is refused; links above it are resolved first, as realpath does, and the
// directories they lead to are checked. A path that does not exist yet is
// checked as far as it does, so that wgnet never creates a file under a
// directory someone else controls.
func Path(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("trust %s: %w", path, err)
	}
	fi, err := os.Lstat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if dir := filepath.Dir(abs); dir != abs {
			return Path(dir)
		}
		return nil
	case err != nil:
		return fmt.Errorf("trust %s: %w", path, err)
	}
	if err := Info(path, fi); err != nil {
		return err
	}
	return parents(abs)
}

// Target is Path for a file that may be a symbolic link to the real one (the
// spec): it checks the directories above the link and, through the link, the
// file it leads to and the directories above that.
func Target(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return Path(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("trust %s: %w", path, err)
	}
	if err := parents(abs); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("trust %s: %w", path, err)
	}
	return Path(real)
}

// parents checks each directory above the absolute path abs, after resolving
// links in them.
func parents(abs string) error {
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return fmt.Errorf("trust %s: %w", abs, err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return fmt.Errorf("trust %s: %w", abs, err)
	}
	for {
		fi, err := os.Lstat(dir)
		if err != nil {
			return fmt.Errorf("trust %s: %w", abs, err)
		}
		if err := Info(dir, fi); err != nil {
			return err
		}
		up := filepath.Dir(dir)
		if up == dir {
			return nil
		}
		dir = up
	}
}

// Open opens path for reading without following a symbolic link at it, and
// checks the open file with Info. The directories above it are the caller's
// to check (Path), once for all the files it opens there.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if isLoop(err) {
		return nil, &Error{Path: path, Problem: "is a symbolic link, which wgnet does not follow here", Fix: "replace it with the file itself"}
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = Info(path, fi)
	}
	if err == nil && !fi.Mode().IsRegular() {
		err = &Error{Path: path, Problem: "is not a regular file"}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile reads the whole file path, opened as Open does.
func ReadFile(path string) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
