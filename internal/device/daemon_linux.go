package device

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/wgnet/wgnet/internal/spawn"
)

// DaemonCommand is the hidden subcommand that runs a userspace device in the
// background: `wgnet _userspace [flags] NAME`. Stop checks for it before it signals
// a process, so that a recycled PID is never killed.
const DaemonCommand = "_userspace"

// DaemonOptions configure RunDaemon.
type DaemonOptions struct {
	Name string
	MTU  int // 0 means DefaultMTU
	// PIDFile, when set, is written once the device is ready and removed on exit
	// (see spawn.WritePIDFile).
	PIDFile string
	Logger  *slog.Logger // nil discards
}

// RunDaemon is the body of the background process behind a userspace interface: it
// starts a Userspace device with its UAPI socket, tells the process that spawned it
// (see Spawn) that it is ready, and runs until ctx is done or the interface is
// deleted. Closing the device removes the TUN interface.
func RunDaemon(ctx context.Context, opts DaemonOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := NewUserspace(opts.Name, UserspaceOptions{MTU: opts.MTU, UAPI: true, Logger: log})
	if err != nil {
		return err
	}
	defer u.Close()
	if opts.PIDFile != "" {
		if err := spawn.WritePIDFile(opts.PIDFile, os.Getpid()); err != nil {
			return err
		}
		defer os.Remove(opts.PIDFile)
	}
	if err := spawn.Ready(); err != nil {
		return err
	}
	log.Info("userspace WireGuard running", "interface", opts.Name, "pid", os.Getpid())
	select {
	case <-ctx.Done():
		log.Info("stopping", "interface", opts.Name, "reason", context.Cause(ctx))
	case <-u.Wait():
		log.Info("interface went away, stopping", "interface", opts.Name)
	}
	return u.Close()
}

// SpawnOptions configure Spawn.
type SpawnOptions struct {
	// Argv is the daemon's command line; Argv[0] is the executable.
	Argv []string
	// LogFile receives the daemon's stdout and stderr (appended, 0600).
	LogFile string
	// Timeout bounds the wait for readiness; 0 means 10 seconds.
	Timeout time.Duration
}

// Spawn starts a daemon that outlives the caller (spawn.Start): in a process
// group of its own (a Ctrl-C at the caller's terminal does not reach it; it
// should ignore SIGHUP), stdin from /dev/null, output to LogFile, and no other
// descriptor but the ready pipe. It waits until the daemon reports readiness
// (see RunDaemon) and returns its PID, or returns the daemon's last log lines if
// it exits first.
//
// It stays in the caller's session, as upstream wireguard-go's own daemon does.
// A new session (setsid) is also a new scheduler autogroup (kernel.
// sched_autogroup_enabled, on by default), so the daemon would compete for CPU as
// a group apart from the programs whose packets it carries; on a busy 2-core
// machine that cost a fifth to a quarter of its throughput (docs/benchmarks.md).
func Spawn(opts SpawnOptions) (int, error) {
	pid, err := spawn.Start(spawn.Options{Argv: opts.Argv, LogFile: opts.LogFile, Timeout: opts.Timeout})
	if err != nil {
		return 0, fmt.Errorf("userspace daemon: %w", err)
	}
	return pid, nil
}

// Stop ends the daemon with PID pid that runs interface name: SIGTERM, then SIGKILL
// after timeout (0 means 5 seconds). It does nothing when the process is gone, and
// refuses to signal a process that is not `... _userspace ... NAME`.
func Stop(pid int, name string, timeout time.Duration) error {
	if err := spawn.Stop(pid, isDaemon(name), timeout); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

// isDaemon matches the command line of the daemon of interface name.
func isDaemon(name string) spawn.Match {
	return func(args []string) bool {
		return slices.Contains(args, DaemonCommand) && args[len(args)-1] == name
	}
}
