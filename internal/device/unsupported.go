//go:build !linux

package device

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// The userspace and kernel backends are Linux-only for now; elsewhere only Open
// and List (wgctrl) work.

var errUnsupported = errors.New("not supported on this operating system")

const (
	DefaultMTU    = 1420
	DaemonCommand = "_userspace"
)

type UserspaceOptions struct {
	MTU    int
	UAPI   bool
	Logger *slog.Logger
}

type DaemonOptions struct {
	Name    string
	MTU     int
	PIDFile string
	Logger  *slog.Logger
}

type SpawnOptions struct {
	Argv    []string
	LogFile string
	Timeout time.Duration
}

func CreateKernel(name string) (Device, error)                { return nil, errUnsupported }
func DeleteKernel(name string) error                          { return errUnsupported }
func RunDaemon(ctx context.Context, opts DaemonOptions) error { return errUnsupported }
func Spawn(opts SpawnOptions) (int, error)                    { return 0, errUnsupported }
func Stop(pid int, name string, timeout time.Duration) error  { return errUnsupported }
func Delete(name string, timeout time.Duration) error         { return errUnsupported }

// isKernelLink is true where wgnet has no way to tell: Open asks wgctrl first.
func isKernelLink(name string) bool { return true }
