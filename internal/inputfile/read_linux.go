package inputfile

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// open opens path for reading. A FIFO is opened without blocking (open(2)
// on a FIFO waits for a writer and no context can interrupt it), then waited
// on in the runtime's poller until a writer has written or gone, or ctx is done.
func open(ctx context.Context, path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	if fi.Mode()&os.ModeNamedPipe == 0 {
		return os.Open(path)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err == nil {
		// A non-blocking read of a FIFO nobody has opened for writing yet says
		// EOF at once; poll says nothing until a writer writes or closes.
		err = rc.Read(func(fd uintptr) bool {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, perr := unix.Poll(pfd, 0)
			return perr == nil && n > 0
		})
	}
	if ctx.Err() != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, context.Cause(ctx))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, f.SetReadDeadline(time.Time{})
}
