package device

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wgnet/wgnet/internal/atomicfile"
)

// DaemonCommand is the hidden subcommand that runs a userspace device in the
// background: `wgnet _userspace [flags] NAME`. Stop checks for it before it signals
// a process, so that a recycled PID is never killed.
const DaemonCommand = "_userspace"

// readyEnv names the file descriptor on which a spawned daemon reports readiness.
const readyEnv = "WGNET_READY_FD"

// DaemonOptions configure RunDaemon.
type DaemonOptions struct {
	Name string
	MTU  int // 0 means DefaultMTU
	// PIDFile, when set, is written once the device is ready and removed on exit.
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
		if err := atomicfile.Write(opts.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600, 0o700); err != nil {
			return err
		}
		defer os.Remove(opts.PIDFile)
	}
	if err := signalReady(); err != nil {
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

func signalReady() error {
	s := os.Getenv(readyEnv)
	if s == "" {
		return nil
	}
	os.Unsetenv(readyEnv)
	fd, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", readyEnv, s, err)
	}
	f := os.NewFile(uintptr(fd), "ready")
	defer f.Close()
	if _, err := f.WriteString("ready\n"); err != nil {
		return fmt.Errorf("report readiness: %w", err)
	}
	return nil
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

// Spawn starts a daemon that outlives the caller: in a process group of its own
// (a Ctrl-C at the caller's terminal does not reach it; it should ignore SIGHUP),
// stdin from /dev/null, output to LogFile. It waits until the daemon reports
// readiness (see RunDaemon) and returns its PID, or returns the daemon's last log
// lines if it exits first.
//
// It stays in the caller's session, as upstream wireguard-go's own daemon does.
// A new session (setsid) is also a new scheduler autogroup (kernel.
// sched_autogroup_enabled, on by default), so the daemon would compete for CPU as
// a group apart from the programs whose packets it carries; on a busy 2-core
// machine that cost a quarter of its throughput (docs/benchmarks.md).
func Spawn(opts SpawnOptions) (int, error) {
	if len(opts.Argv) == 0 {
		return 0, errors.New("spawn: empty command line")
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if err := os.MkdirAll(dirOf(opts.LogFile), 0o700); err != nil {
		return 0, fmt.Errorf("spawn: %w", err)
	}
	logf, err := os.OpenFile(opts.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("spawn: %w", err)
	}
	defer logf.Close()
	start, _ := logf.Seek(0, 2)
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("spawn: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(opts.Argv[0], opts.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Env = append(os.Environ(), readyEnv+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Dir = "/" // hold no directory (or file system) busy
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, fmt.Errorf("spawn %s: %w", opts.Argv[0], err)
	}
	w.Close()

	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- line
	}()
	fail := func(why string) (int, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("userspace daemon %s%s", why, logTail(opts.LogFile, start))
	}
	select {
	case line := <-got:
		if line != "ready\n" {
			return fail("exited before it was ready")
		}
	case <-time.After(timeout):
		return fail(fmt.Sprintf("not ready after %v", timeout))
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return pid, nil
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}

// logTail returns ": " and the last lines the daemon logged since offset, or "".
func logTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) <= offset {
		return ""
	}
	b = bytes.TrimSpace(b[offset:])
	lines := strings.Split(string(b), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return ": " + strings.Join(lines, "; ")
}

// Stop ends the daemon with PID pid that runs interface name: SIGTERM, then SIGKILL
// after timeout (0 means 5 seconds). It does nothing when the process is gone, and
// refuses to signal a process that is not `... _userspace ... NAME`.
func Stop(pid int, name string, timeout time.Duration) error {
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	if pid <= 1 {
		return fmt.Errorf("stop %s: invalid pid %d", name, pid)
	}
	ok, err := isDaemon(pid, name)
	if err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	if !ok {
		return nil // gone, or the PID now belongs to something else
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("stop %s (pid %d): %w", name, pid, err)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok, _ := isDaemon(pid, name); !ok {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return fmt.Errorf("stop %s (pid %d): still running %v after SIGTERM, killed", name, pid, timeout)
}

func isDaemon(pid int, name string) (bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return false, nil
		}
		return false, err
	}
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// A zombie has exited; its parent has not reaped it yet.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false, nil
		}
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	hasCmd := false
	for _, a := range args {
		if a == DaemonCommand {
			hasCmd = true
		}
	}
	return hasCmd && args[len(args)-1] == name, nil
}
