//go:build unix

package up

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockTimeout bounds the wait for another wgnet changing the same interface.
const lockTimeout = 30 * time.Second

// lockInterface takes the interface's lock (flock on StateDir/NAME.lock), waiting
// up to lockTimeout, and returns the function that releases it. The kernel
// releases it when the process dies, so a killed sync never leaves it held.
func lockInterface(dir, name string) (func(), error) {
	return lockWithin(dir, name, lockTimeout)
}

// lockWithin is lockInterface waiting at most wait (0: one try).
func lockWithin(dir, name string, wait time.Duration) (func(), error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("interface name %q: must match %s (at most 15 characters)", name, nameRE)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%s: another wgnet has been changing it for %v (lock %s): %w", name, wait, f.Name(), errLocked)
			}
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// timerReadyEnv names the file descriptor on which a spawned timer reports that
// it runs.
const timerReadyEnv = "WGNET_TIMER_READY_FD"

// spawnTimer is the default Confirm.Spawn: this executable as `TimerCommand
// --state-dir DIR --id ID NAME` in a new session (setsid: no controlling
// terminal, its own process group, so a hang-up or a kill of the caller's
// session does not reach it), stdin from /dev/null, output appended to TimerLog.
// It returns once the timer reports that it runs.
func spawnTimer(p *Pending, stateDir string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	logPath := TimerLog(stateDir, p.Name)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cmd := exec.Command(exe, TimerCommand, "--state-dir", stateDir, "--id", p.ID, p.Name)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Env = append(os.Environ(), timerReadyEnv+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, err
	}
	w.Close()
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "ready\n" {
			_ = cmd.Wait()
			return 0, fmt.Errorf("the timer exited at once; see %s", logPath)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("the timer did not start within 10s; see %s", logPath)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return pid, nil
}

func signalTimerReady() error {
	s := os.Getenv(timerReadyEnv)
	if s == "" {
		return nil
	}
	os.Unsetenv(timerReadyEnv)
	fd, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", timerReadyEnv, s, err)
	}
	f := os.NewFile(uintptr(fd), "ready")
	defer f.Close()
	_, err = f.WriteString("ready\n")
	return err
}

// timerAlive reports whether pid is still the timer with id.
func timerAlive(pid int, id string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false // exited, not reaped yet
		}
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	hasCmd, hasID := false, false
	for _, a := range args {
		hasCmd = hasCmd || a == TimerCommand
		hasID = hasID || a == id
	}
	return hasCmd && hasID
}
