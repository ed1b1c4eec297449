package up

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// netnsHere returns the inode of the network namespace of the calling thread
// (/proc/thread-self/ns/net: a test may hold one thread in another namespace).
func netnsHere() (uint64, error) { return netnsOf("/proc/thread-self/ns/net") }

// netnsOfPID returns the inode of the network namespace process pid is in.
func netnsOfPID(pid int) (uint64, error) {
	return netnsOf("/proc/" + strconv.Itoa(pid) + "/ns/net")
}

func netnsOf(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("network namespace: %w", &os.PathError{Op: "stat", Path: path, Err: err})
	}
	return st.Ino, nil
}

// netnsName names the network namespace with inode ino for a message: "inode
// N", and the name `ip netns` knows it by, if any.
func netnsName(ino uint64) string {
	s := "inode " + strconv.FormatUint(ino, 10)
	m, _ := filepath.Glob("/run/netns/*")
	for _, p := range m {
		if got, err := netnsOf(p); err == nil && got == ino {
			return s + ", `ip netns` " + filepath.Base(p)
		}
	}
	return s
}
