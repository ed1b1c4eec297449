package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// MaxFileSize is the most check reads of one input: far above any real config
// (a 10,000-peer hub is about 1.5 MB), and low enough that /dev/zero or a
// runaway file is refused instead of exhausting memory.
const MaxFileSize = 64 << 20

// ReadFile reads an input of check, a config or a spec, and returns its
// permission bits as well. It refuses a directory and anything over
// MaxFileSize (a regular file by its size, before reading it), and returns
// when ctx is done, even while it waits on a FIFO or pipe that never delivers.
func ReadFile(ctx context.Context, path string) ([]byte, os.FileMode, error) {
	f, err := openInput(ctx, path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if fi.IsDir() {
		return nil, 0, fmt.Errorf("read %s: is a directory, want a config file", path)
	}
	if fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, 0, fmt.Errorf("read %s: %d bytes, more than the %d MiB an input may have", path, fi.Size(), MaxFileSize>>20)
	}
	// A read blocked on a pipe wakes up at a deadline; files that can't have
	// one (regular files, most devices) never block for long.
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	src, err := readCapped(f, fi)
	if ctx.Err() != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, context.Cause(ctx))
	}
	if errors.Is(err, errTooLarge) {
		return nil, 0, fmt.Errorf("read %s: more than the %d MiB an input may have (not a config file?)", path, MaxFileSize>>20)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return src, fi.Mode(), nil
}

var errTooLarge = errors.New("too large")

// readCapped reads f to its end, or fails with errTooLarge past MaxFileSize.
// A stream of unknown size is read in chunks and joined once, so that no
// buffer grows by doubling: /dev/zero costs MaxFileSize of memory, not three
// times that.
func readCapped(f *os.File, fi os.FileInfo) ([]byte, error) {
	if fi.Mode().IsRegular() && fi.Size() > 0 {
		buf := bytes.NewBuffer(make([]byte, 0, fi.Size()+1))
		_, err := buf.ReadFrom(io.LimitReader(f, MaxFileSize+1))
		if buf.Len() > MaxFileSize {
			return nil, errTooLarge
		}
		return buf.Bytes(), err
	}
	const chunk = 1 << 20
	var chunks [][]byte
	total := 0
	for {
		c := make([]byte, chunk)
		n, err := io.ReadFull(f, c)
		chunks = append(chunks, c[:n])
		total += n
		if total > MaxFileSize {
			return nil, errTooLarge
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return bytes.Join(chunks, nil), nil
		}
		if err != nil {
			return nil, err
		}
	}
}
