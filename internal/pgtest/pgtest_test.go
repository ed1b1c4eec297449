package pgtest_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/pgtest"
)

// TestStartStop starts a cluster of its own, checks that it answers on its
// socket only, and that Stop ends its postmaster and removes its directory.
func TestStartStop(t *testing.T) {
	s := pgtest.Start(t)
	pid, err := s.PID()
	if err != nil {
		t.Fatal(err)
	}
	db := s.NewDatabase(t)
	out, err := s.Psql(db, "SELECT current_database() || ' ' || current_setting('listen_addresses') || '|' || current_setting('unix_socket_directories')")
	if err != nil {
		t.Fatalf("psql: %v: %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), db+" |"+s.Dir; got != want {
		t.Errorf("server says %q, want %q (no TCP listener, the socket in its own directory)", got, want)
	}
	if _, err := s.Psql(db, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	// pg_ctl stop -w returns when the postmaster has removed its PID file,
	// a moment before the process is gone.
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("postmaster %d still runs 5s after Stop", pid)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", s.Dir, err)
	}
}

// alive reports whether pid is a process that is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// TestReapOrphans: a cluster whose test process is gone (as after a test
// binary's timeout) is stopped and removed by the next start.
func TestReapOrphans(t *testing.T) {
	s := pgtest.Start(t)
	pid, err := s.PID()
	if err != nil {
		t.Fatal(err)
	}
	// A process that has exited stands for the dead test binary.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "owner.pid"), []byte(strconv.Itoa(dead.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	pgtest.Start(t) // reaps s
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("orphaned postmaster %d still runs", pid)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("orphaned cluster %s left: %v", s.Dir, err)
	}
}
