//go:build unix

package up

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/wgnet/wgnet/internal/spawn"
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
			removeTemps(dir, name)
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

// tempFiles are the patterns of the temporary files atomicfile leaves behind
// when a process writing NAME's state, pending change or daemon PID file dies
// mid-write. Each of those writers holds NAME's lock (the daemon writes its PID
// file while the up that started it waits, holding it).
var tempFiles = []string{".%s.json.tmp*", ".%s.pending.tmp*", ".%s.pid.tmp*"}

// removeTemps removes the temporary files a writer of name's files left when it
// died. The caller has just taken name's lock, so no writer is mid-write: they
// are leftovers (0600, and a state or pending file may hold a private key).
func removeTemps(dir, name string) {
	for _, pat := range tempFiles {
		m, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf(pat, name)))
		for _, f := range m {
			if fi, err := os.Lstat(f); err == nil && fi.Mode().IsRegular() {
				_ = os.Remove(f)
			}
		}
	}
}

// spawnTimer is ProcessTimer.Arm: this executable as `TimerCommand --state-dir
// DIR --id ID NAME`, started by spawn.Start in a new session (setsid: no
// controlling terminal, its own process group, so a hang-up or a kill of the
// caller's session does not reach it), output appended to TimerLog. It returns
// once the timer reports that it runs.
func spawnTimer(p *Pending, stateDir string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	pid, err := spawn.Start(spawn.Options{
		Argv:       []string{exe, TimerCommand, "--state-dir", stateDir, "--id", p.ID, p.Name},
		LogFile:    TimerLog(stateDir, p.Name),
		NewSession: true,
	})
	if err != nil {
		return 0, fmt.Errorf("confirmation timer: %w", err)
	}
	return pid, nil
}

// timerAlive reports whether pid is still the timer with id.
func timerAlive(pid int, id string) bool {
	return spawn.Alive(pid, func(args []string) bool {
		return slices.Contains(args, TimerCommand) && slices.Contains(args, id)
	})
}
