// Package inputfile reads a file wgnet is given to read, a spec or a config:
// capped at MaxSize, so that /dev/zero or a runaway file is refused instead of
// exhausting memory, and cancellable, so that a FIFO or pipe that never
// delivers does not hold up the command past its context. spec and check both
// read through it. It imports nothing of wgnet.
package inputfile

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// MaxSize is the most Read reads of one file: far above any real spec or
// config (a 10,000-peer hub is about 1.5 MB).
const MaxSize = 64 << 20

// TooLargeError is Read's error for a file over MaxSize.
type TooLargeError struct {
	Path string
	// Size is the file's size when it has one (a regular file, refused before
	// it is read); -1 for a stream, refused once it has given more.
	Size int64
}

func (e *TooLargeError) Error() string {
	if e.Size >= 0 {
		return fmt.Sprintf("read %s: %d bytes, more than %d MiB", e.Path, e.Size, MaxSize>>20)
	}
	return fmt.Sprintf("read %s: more than %d MiB", e.Path, MaxSize>>20)
}

// Read reads the file at path and returns its permission bits as well. It
// refuses a directory (an error that is syscall.EISDIR) and anything over
// MaxSize (a *TooLargeError; a regular file by its size, before reading it),
// and returns when ctx is done, even while it waits on a FIFO or pipe that
// never delivers.
func Read(ctx context.Context, path string) ([]byte, os.FileMode, error) {
	f, err := open(ctx, path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if fi.IsDir() {
		return nil, 0, &os.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	}
	if fi.Mode().IsRegular() && fi.Size() > MaxSize {
		return nil, 0, &TooLargeError{Path: path, Size: fi.Size()}
	}
	// A read blocked on a pipe wakes up at a deadline; files that can't have
	// one (regular files, most devices) never block for long.
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	src, tooLarge, err := readCapped(f, fi)
	switch {
	case ctx.Err() != nil:
		return nil, 0, fmt.Errorf("read %s: %w", path, context.Cause(ctx))
	case tooLarge:
		return nil, 0, &TooLargeError{Path: path, Size: -1}
	case err != nil:
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return src, fi.Mode(), nil
}

// readCapped reads f to its end, or stops with tooLarge past MaxSize. A stream
// of unknown size is read in chunks and joined once, so that no buffer grows by
// doubling: /dev/zero costs MaxSize of memory, not three times that.
func readCapped(f *os.File, fi os.FileInfo) (src []byte, tooLarge bool, err error) {
	if fi.Mode().IsRegular() && fi.Size() > 0 {
		// bytes.MinRead of room past the size: ReadFrom grows a buffer with less
		// free room than that, and would copy the whole file to read its EOF.
		buf := bytes.NewBuffer(make([]byte, 0, fi.Size()+bytes.MinRead))
		_, err := buf.ReadFrom(io.LimitReader(f, MaxSize+1))
		if buf.Len() > MaxSize {
			return nil, true, nil
		}
		return buf.Bytes(), false, err
	}
	const chunk = 1 << 20
	var chunks [][]byte
	total := 0
	for {
		c := make([]byte, chunk)
		n, err := io.ReadFull(f, c)
		chunks = append(chunks, c[:n])
		total += n
		if total > MaxSize {
			return nil, true, nil
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return bytes.Join(chunks, nil), false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}
