package device

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSpawnSessionAndGroup checks where Spawn puts the daemon: its own process
// group (a Ctrl-C at the terminal of `up` does not stop it) in the caller's
// session, which is also the caller's scheduler autogroup (see Spawn).
func TestSpawnSessionAndGroup(t *testing.T) {
	log := filepath.Join(t.TempDir(), "d.log")
	pid, err := Spawn(SpawnOptions{
		Argv:    []string{"/bin/sh", "-c", "echo ready >&3; exec sleep 30"},
		LogFile: log,
		Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		// Spawn released the child; reap it if it is ours to reap (it is: we
		// started it), so that no zombie outlives the test.
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
	})
	sid, err := unix.Getsid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if mine, _ := unix.Getsid(0); sid != mine {
		t.Errorf("daemon session %d, want the caller's %d", sid, mine)
	}
	pgid, err := unix.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid != pid {
		t.Errorf("daemon process group %d, want its own (%d)", pgid, pid)
	}
	if mine := unix.Getpgrp(); pgid == mine {
		t.Errorf("daemon shares the caller's process group %d", mine)
	}
	if _, err := os.Stat(log); err != nil {
		t.Errorf("log file: %v", err)
	}
}
