package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// Initramfs is an initramfs being put together: files, directories and symbolic
// links by their path inside it, written out by WriteTo as an uncompressed newc
// cpio archive, the format the kernel unpacks into its rootfs
// (https://docs.kernel.org/driver-api/early-userspace/buffer-format.html).
// Parent directories are added as needed. The zero Initramfs is empty and ready.
type Initramfs struct {
	entries map[string]entry
}

type entry struct {
	mode   fs.FileMode // fs.ModeDir, fs.ModeSymlink or regular, with permissions
	data   []byte      // regular file contents, when src is ""
	src    string      // regular file: host file read at WriteTo time
	target string      // symbolic link target
}

// File adds a regular file with the given contents.
func (r *Initramfs) File(name string, perm fs.FileMode, data []byte) {
	r.add(name, entry{mode: perm.Perm(), data: data})
}

// HostFile adds the host file src (read when the archive is written) as name.
func (r *Initramfs) HostFile(name, src string, perm fs.FileMode) {
	r.add(name, entry{mode: perm.Perm(), src: src})
}

// Symlink adds a symbolic link name pointing to target.
func (r *Initramfs) Symlink(name, target string) {
	r.add(name, entry{mode: fs.ModeSymlink | 0o777, target: target})
}

// Dir adds a directory.
func (r *Initramfs) Dir(name string, perm fs.FileMode) {
	r.add(name, entry{mode: fs.ModeDir | perm.Perm()})
}

// Has reports whether name was added (or is the parent of something added).
func (r *Initramfs) Has(name string) bool {
	_, ok := r.entries[clean(name)]
	return ok
}

func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (r *Initramfs) add(name string, e entry) {
	if r.entries == nil {
		r.entries = make(map[string]entry)
	}
	name = clean(name)
	if name == "" {
		return // the root exists already
	}
	r.entries[name] = e
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if _, ok := r.entries[d]; ok {
			break
		}
		r.entries[d] = entry{mode: fs.ModeDir | 0o755}
	}
}

// WriteTo writes the archive: entries sorted by path, so that every directory comes
// before what it holds, then the trailer.
func (r *Initramfs) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	slices.Sort(names)
	ino := uint32(1)
	for _, n := range names {
		if err := writeEntry(bw, ino, n, r.entries[n]); err != nil {
			return cw.n, fmt.Errorf("initramfs: %s: %w", n, err)
		}
		ino++
	}
	if err := writeHeader(bw, 0, "TRAILER!!!", 0, 0); err != nil {
		return cw.n, err
	}
	err := bw.Flush()
	return cw.n, err
}

func writeEntry(w *bufio.Writer, ino uint32, name string, e entry) error {
	var mode uint32
	perm := uint32(e.mode.Perm())
	switch {
	case e.mode.IsDir():
		return writeHeader(w, ino, name, 0o040000|perm, 0)
	case e.mode&fs.ModeSymlink != 0:
		mode = 0o120000 | perm
		if err := writeHeader(w, ino, name, mode, len(e.target)); err != nil {
			return err
		}
		return writeData(w, strings.NewReader(e.target), int64(len(e.target)))
	}
	mode = 0o100000 | perm
	if e.src == "" {
		if err := writeHeader(w, ino, name, mode, len(e.data)); err != nil {
			return err
		}
		return writeData(w, strings.NewReader(string(e.data)), int64(len(e.data)))
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", e.src)
	}
	if fi.Size() > 0xffffffff {
		return fmt.Errorf("%s is too large for newc cpio", e.src)
	}
	if err := writeHeader(w, ino, name, mode, int(fi.Size())); err != nil {
		return err
	}
	return writeData(w, f, fi.Size())
}

// writeHeader writes a newc header: magic, 13 fields of 8 hex digits, the
// NUL-terminated name, padded to a multiple of 4 bytes.
func writeHeader(w *bufio.Writer, ino uint32, name string, mode uint32, size int) error {
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	// ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
	if _, err := fmt.Fprintf(w, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%s\x00",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0, name); err != nil {
		return err
	}
	return pad(w, 110+len(name)+1)
}

func writeData(w *bufio.Writer, r io.Reader, size int64) error {
	n, err := io.Copy(w, r)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("wrote %d bytes, want %d (file changed?)", n, size)
	}
	return pad(w, int(size%4))
}

func pad(w *bufio.Writer, n int) error {
	if r := n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
