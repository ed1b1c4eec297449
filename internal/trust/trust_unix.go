//go:build unix

package trust

import (
	"errors"
	"io/fs"
	"syscall"
)

// noFollow makes open fail on a symbolic link; O_NONBLOCK keeps a FIFO planted
// where a file should be from hanging the open.
const noFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
