package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/wgnet/wgnet/internal/inputfile"
)

// MaxFileSize is the most check reads of one input (inputfile.MaxSize).
const MaxFileSize = inputfile.MaxSize

// ReadFile reads an input of check, a config or a spec, and returns its
// permission bits as well, through inputfile.Read: it refuses a directory and
// anything over MaxFileSize, and returns when ctx is done, even while it waits
// on a FIFO or pipe that never delivers.
func ReadFile(ctx context.Context, path string) ([]byte, os.FileMode, error) {
	src, mode, err := inputfile.Read(ctx, path)
	var big *inputfile.TooLargeError
	switch {
	case errors.As(err, &big) && big.Size >= 0:
		return nil, 0, fmt.Errorf("read %s: %d bytes, more than the %d MiB an input may have", path, big.Size, MaxFileSize>>20)
	case errors.As(err, &big):
		return nil, 0, fmt.Errorf("read %s: more than the %d MiB an input may have (not a config file?)", path, MaxFileSize>>20)
	case errors.Is(err, syscall.EISDIR):
		return nil, 0, fmt.Errorf("read %s: is a directory, want a config file", path)
	}
	return src, mode, err
}
