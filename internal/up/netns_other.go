//go:build !linux

package up

import (
	"errors"
	"strconv"
)

var errNoNetns = errors.New("network namespaces are a Linux feature")

func netnsHere() (uint64, error) { return 0, errNoNetns }

func netnsOfPID(pid int) (uint64, error) { return 0, errNoNetns }

func netnsName(ino uint64) string { return "inode " + strconv.FormatUint(ino, 10) }
