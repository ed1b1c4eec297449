package spawn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/trust"
)

// Start starts opts.Argv as a detached child and waits until it calls Ready.
// It returns the child's PID; the child is released (the caller does not wait
// for it). If the child exits or stays silent for the timeout, Start kills it
// and returns an error with the last lines of its log.
func Start(opts Options) (int, error) {
	if len(opts.Argv) == 0 {
		return 0, errors.New("spawn: empty command line")
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	out, offset, err := openLog(opts.LogFile)
	if err != nil {
		return 0, fmt.Errorf("spawn %s: %w", opts.Argv[0], err)
	}
	defer out.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("spawn %s: %w", opts.Argv[0], err)
	}
	defer r.Close()
	cmd := exec.Command(opts.Argv[0], opts.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out // stdin: os/exec opens /dev/null
	cmd.ExtraFiles = []*os.File{w}    // fd 3
	cmd.Env = append(withoutEnv(os.Environ(), ReadyEnv), ReadyEnv+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !opts.NewSession, Setsid: opts.NewSession}
	cmd.Dir = "/" // hold no directory (or file system) busy
	if err := closeOnExec(); err != nil {
		w.Close()
		return 0, fmt.Errorf("spawn %s: %w", opts.Argv[0], err)
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, fmt.Errorf("spawn %s: %w", opts.Argv[0], err)
	}
	w.Close()

	got := make(chan string, 1)
	go func() { // ends when the child writes a line or closes its end
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- line
	}()
	fail := func(why string) (int, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		r.Close() // ends the reader
		return 0, fmt.Errorf("%s %s%s", filepath.Base(opts.Argv[0]), why, logTail(opts.LogFile, offset))
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

// openLog opens the log file for appending, or /dev/null, and returns where
// this child's lines start.
func openLog(path string) (*os.File, int64, error) {
	if path == "" {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		return f, 0, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, 0, err
	}
	off, _ := f.Seek(0, io.SeekEnd)
	return f, off, nil
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return out
}

// closeOnExec marks every descriptor above stderr close-on-exec. Go opens all
// of its own that way; the others were inherited from whoever started wgnet
// (a shell's `7>&1`), and a child must not keep them open: a daemon holding
// the write end of the caller's pipe keeps `wgnet up ... | cat` from ever
// ending. The ready pipe is passed through ExtraFiles, which os/exec dups
// without the flag.
func closeOnExec() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Before Linux 5.11: one by one, from /proc.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		unix.CloseOnExec(fd) // a descriptor closed meanwhile is fine
	}
	return nil
}

// Ready tells the process that started this one (Start) that it is ready, on
// the descriptor ReadyEnv names, and closes it. Without ReadyEnv it does
// nothing. A parent that died meanwhile makes it return an error (EPIPE), which
// a child that must outlive its parent (the confirmation timer) ignores.
func Ready() error {
	s := os.Getenv(ReadyEnv)
	if s == "" {
		return nil
	}
	os.Unsetenv(ReadyEnv)
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return fmt.Errorf("%s=%q: not a descriptor", ReadyEnv, s)
	}
	f := os.NewFile(uintptr(fd), "ready")
	defer f.Close()
	if _, err := f.WriteString("ready\n"); err != nil {
		return fmt.Errorf("report readiness: %w", err)
	}
	return nil
}

// logTail returns ": " and the last lines logged since offset, or "".
func logTail(path string, offset int64) string {
	if path == "" {
		return ""
	}
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

// Alive reports whether pid runs, has not exited (a zombie has), and matches.
func Alive(pid int, match Match) bool {
	if pid <= 1 {
		return false
	}
	p := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(p + "/cmdline")
	if err != nil || len(b) == 0 {
		return false
	}
	if stat, err := os.ReadFile(p + "/stat"); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false // exited, not reaped yet
		}
	}
	return match(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"))
}

// Stop ends pid, if it still matches: SIGTERM, then SIGKILL after grace (0
// means 5 seconds). A process that is gone, or that is now something else,
// is left alone and is not an error.
func Stop(pid int, match Match, grace time.Duration) error {
	if grace == 0 {
		grace = 5 * time.Second
	}
	if pid <= 1 {
		return fmt.Errorf("stop: invalid pid %d", pid)
	}
	if !Alive(pid, match) {
		return nil
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("stop pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !Alive(pid, match) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !Alive(pid, match) {
		return nil
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	return fmt.Errorf("stop pid %d: still running %v after SIGTERM, killed", pid, grace)
}

// WritePIDFile writes pid to path, 0600, atomically (a symbolic link at path
// is replaced, never followed), in a directory that must be trusted
// (trust.Path) and is created 0700 if missing. Not fsync'd
// (atomicfile.WriteRuntime): a process's pid means nothing after a reboot,
// and the daemon that writes it is not ready until it is written.
func WritePIDFile(path string, pid int) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := trust.Path(dir); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return atomicfile.WriteRuntime(path, []byte(strconv.Itoa(pid)+"\n"), 0o600, 0o700)
}

// ReadPIDFile reads a PID written by WritePIDFile; the file must be trusted
// (trust.Open: not a symbolic link, owned by root or you, not writable by
// others).
func ReadPIDFile(path string) (int, error) {
	f, err := trust.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s: not a pid: %q", path, b)
	}
	return pid, nil
}
