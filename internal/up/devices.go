package up

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wgnet/wgnet/internal/device"
)

// Devices creates and removes WireGuard interfaces. SystemDevices is the real
// one; tests use a fake that pairs devicetest.Fake with hostnettest.Fake.
type Devices interface {
	// Create makes the interface and returns a handle on it and a record of how
	// to remove it. On error nothing is left behind.
	Create(ctx context.Context, req CreateRequest) (device.Device, Created, error)
	// Remove removes an interface that Create made.
	Remove(c Created, name string) error
}

// CreateRequest asks Devices for an interface.
type CreateRequest struct {
	Name    string
	Backend string // auto, kernel or userspace
	MTU     int
}

// Created says how an interface was made, for Remove and the state file.
type Created struct {
	Backend string // device.BackendKernel or device.BackendUserspace
	PID     int    // userspace daemon
	LogFile string // userspace daemon
	// Note explains the choice of backend for the user ("no WireGuard kernel
	// module: using userspace wireguard-go").
	Note string
}

// SystemDevices makes kernel interfaces, or runs wireguard-go as a background
// daemon (this executable's hidden `_userspace` command) for userspace ones.
type SystemDevices struct {
	// StateDir holds the daemon's pid and log files.
	StateDir string
	// Executable is the wgnet binary to run as the daemon; "" means this one.
	Executable string
}

func (s *SystemDevices) stateDir() string {
	if s.StateDir == "" {
		return NetnsStateDir()
	}
	return s.StateDir
}

// Create implements Devices.
func (s *SystemDevices) Create(ctx context.Context, req CreateRequest) (device.Device, Created, error) {
	switch req.Backend {
	case BackendKernel:
		d, err := device.CreateKernel(req.Name)
		if err != nil {
			return nil, Created{}, err
		}
		return d, Created{Backend: device.BackendKernel}, nil
	case BackendUserspace:
		return s.userspace(req, "")
	case BackendAuto, "":
		d, err := device.CreateKernel(req.Name)
		if err == nil {
			return d, Created{Backend: device.BackendKernel, Note: "WireGuard kernel module"}, nil
		}
		if !errors.Is(err, device.ErrNoKernelSupport) {
			return nil, Created{}, err
		}
		return s.userspace(req, "no WireGuard kernel module: using upstream wireguard-go in the background")
	}
	return nil, Created{}, fmt.Errorf("backend %q: want auto, kernel or userspace", req.Backend)
}

func (s *SystemDevices) userspace(req CreateRequest, note string) (device.Device, Created, error) {
	exe := s.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, Created{}, fmt.Errorf("userspace %s: %w", req.Name, err)
		}
	}
	dir := s.stateDir()
	logFile := filepath.Join(dir, req.Name+".log")
	argv := []string{exe, device.DaemonCommand,
		"--mtu", strconv.Itoa(req.MTU),
		"--pid-file", filepath.Join(dir, req.Name+".pid"),
		req.Name}
	pid, err := device.Spawn(device.SpawnOptions{Argv: argv, LogFile: logFile})
	if err != nil {
		return nil, Created{}, fmt.Errorf("userspace %s: %w", req.Name, err)
	}
	c := Created{Backend: device.BackendUserspace, PID: pid, LogFile: logFile, Note: note}
	if c.Note != "" {
		c.Note += ", "
	}
	c.Note += fmt.Sprintf("pid %d, log %s", pid, logFile)
	d, err := device.Open(req.Name)
	if err != nil {
		_ = device.Stop(pid, req.Name, 0)
		return nil, Created{}, fmt.Errorf("userspace %s: %w", req.Name, err)
	}
	return d, c, nil
}

// Remove implements Devices.
func (s *SystemDevices) Remove(c Created, name string) error {
	switch c.Backend {
	case device.BackendKernel:
		return device.DeleteKernel(name)
	case device.BackendUserspace:
		if c.PID == 0 {
			// Not wgnet's daemon (an interface wg-quick made, adopted by sync):
			// delete the link like wg-quick down; the daemon exits with it.
			return device.Delete(name, 5*time.Second)
		}
		err := device.Stop(c.PID, name, 5*time.Second)
		// The daemon removes its pid file on a clean exit, not when killed.
		if rerr := os.Remove(filepath.Join(s.stateDir(), name+".pid")); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
		return err
	}
	return fmt.Errorf("remove %s: unknown backend %q", name, c.Backend)
}
