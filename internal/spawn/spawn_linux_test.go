package spawn

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fds lists the open descriptors of pid.
func fds(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// reap kills and reaps a child that Start released (it is still ours).
func reap(t *testing.T, pid int) {
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
	})
}

// TestStartStrayDescriptors is issue 9 finding 6: `wgnet up x.conf 7>&1 | cat`
// hung because the daemon inherited fd 7 (the pipe to cat) and kept it open.
// A descriptor this process holds without close-on-exec, as one inherited
// from a shell would be, must not reach the child: it has 0, 1 and 2, plus
// the ready pipe (3) only while it starts.
func TestStartStrayDescriptors(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	stray, err := unix.Dup(int(w.Fd())) // dup(2): no close-on-exec, like an inherited fd
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(stray)
	if flags, _ := unix.FcntlInt(uintptr(stray), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Fatal("test setup: the stray descriptor is close-on-exec")
	}
	dir := t.TempDir()
	pidFile, fifo := filepath.Join(dir, "pid"), filepath.Join(dir, "go")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The shell writes its PID and blocks opening the FIFO (holding no extra
	// descriptor) until the test has looked at its descriptors; then it reports
	// ready, closes the ready pipe and waits.
	type started struct {
		pid int
		err error
	}
	res := make(chan started, 1)
	go func() {
		pid, err := Start(Options{
			Argv:    []string{"/bin/sh", "-c", "echo $$ >" + pidFile + "; read x <" + fifo + "; echo ready >&3; exec 3>&-; exec sleep 30"},
			LogFile: filepath.Join(dir, "child.log"),
			Timeout: 10 * time.Second,
		})
		res <- started{pid, err}
	}()
	var child int
	for deadline := time.Now().Add(5 * time.Second); child == 0; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			t.Fatal("the child did not start")
		}
	}
	// The shell may still hold the descriptor it saved fd 1 in while writing the
	// PID file; once blocked on the FIFO it holds only what it was given.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := fds(t, child)
		if slices.Equal(got, []int{0, 1, 2, 3}) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("descriptors while starting: %v, want [0 1 2 3] (stdin, stdout, stderr, ready pipe; the stray one was %d)", got, stray)
			break
		}
	}
	if err := os.WriteFile(fifo, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := <-res
	if s.err != nil {
		t.Fatal(s.err)
	}
	pid := s.pid
	reap(t, pid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := fds(t, pid)
		if slices.Equal(got, []int{0, 1, 2}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptors of the running child: %v, want [0 1 2] (stray was %d)", got, stray)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The consequence: with our own ends closed, the reader sees EOF although the
	// child runs on.
	w.Close()
	unix.Close(stray)
	done := make(chan error, 1)
	go func() {
		var buf [1]byte
		_, err := r.Read(buf[:])
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("read from the pipe: data, want EOF")
		}
	case <-time.After(5 * time.Second):
		t.Error("the pipe stays open while the child runs: it inherited the write end")
	}
}

// TestStartSessionAndGroup checks NewSession: a session (and group) of its own,
// or a group of its own in the caller's session.
func TestStartSessionAndGroup(t *testing.T) {
	for _, newSession := range []bool{false, true} {
		pid, err := Start(Options{Argv: []string{"/bin/sh", "-c", "echo ready >&3; exec sleep 30"}, NewSession: newSession})
		if err != nil {
			t.Fatal(err)
		}
		reap(t, pid)
		sid, _ := unix.Getsid(pid)
		mine, _ := unix.Getsid(0)
		if newSession != (sid == pid) || (!newSession && sid != mine) {
			t.Errorf("NewSession=%v: child session %d (child %d, caller's %d)", newSession, sid, pid, mine)
		}
		if pgid, _ := unix.Getpgid(pid); pgid != pid {
			t.Errorf("NewSession=%v: child process group %d, want its own (%d)", newSession, pgid, pid)
		}
		if cwd, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); cwd != "/" {
			t.Errorf("child cwd %q, want /", cwd)
		}
	}
}

func TestStartNotReady(t *testing.T) {
	log := filepath.Join(t.TempDir(), "child.log")
	_, err := Start(Options{Argv: []string{"/bin/sh", "-c", "echo cannot start >&2; exit 3"}, LogFile: log})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready: cannot start") {
		t.Errorf("error %v, want it to say the child exited, with its log", err)
	}
	start := time.Now()
	_, err = Start(Options{Argv: []string{"/bin/sh", "-c", "exec sleep 30"}, LogFile: log, Timeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not ready after 200ms") {
		t.Errorf("error %v, want a timeout", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("Start waited for the child it killed too long")
	}
}

// TestStop checks that Stop ends a matching child, leaves one that does not
// match (a recycled PID) alone, and kills one that ignores SIGTERM.
func TestStop(t *testing.T) {
	start := func(script string) int {
		pid, err := Start(Options{Argv: []string{"/bin/sh", "-c", script, "token-x"}})
		if err != nil {
			t.Fatal(err)
		}
		reap(t, pid)
		// Reap it as it exits, so that Alive does not wait on a zombie.
		go func() {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}()
		return pid
	}
	isX := func(argv []string) bool { return slices.Contains(argv, "token-x") }
	isY := func(argv []string) bool { return slices.Contains(argv, "token-y") }

	pid := start("echo ready >&3; exec 3>&-; sleep 30; : token-x")
	if err := Stop(pid, isY, time.Second); err != nil {
		t.Fatal(err)
	}
	if !Alive(pid, isX) {
		t.Fatal("Stop signalled a process that did not match")
	}
	if err := Stop(pid, isX, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if Alive(pid, isX) {
		t.Error("still alive after Stop")
	}

	pid = start("trap '' TERM; echo ready >&3; exec 3>&-; while :; do sleep 0.05; done")
	err := Stop(pid, isX, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop of a process ignoring SIGTERM: %v, want it killed", err)
	}
	for deadline := time.Now().Add(5 * time.Second); Alive(pid, isX); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still alive 5s after SIGKILL")
		}
	}
}

func TestPIDFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	p := filepath.Join(dir, "x.pid")
	if err := WritePIDFile(p, 4242); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pid file %v, %v; want mode 0600", fi, err)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", di.Mode().Perm())
	}
	if pid, err := ReadPIDFile(p); err != nil || pid != 4242 {
		t.Errorf("ReadPIDFile: %d, %v; want 4242", pid, err)
	}
	// A symbolic link is neither read through nor written through.
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("99\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pid")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPIDFile(link); err == nil {
		t.Error("ReadPIDFile followed a symbolic link")
	}
	if err := WritePIDFile(link, 4343); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "99\n" {
		t.Errorf("WritePIDFile wrote through a symbolic link: target now %q", b)
	}
	// An untrusted directory is refused.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := WritePIDFile(filepath.Join(dir, "y.pid"), 1234); err == nil {
		t.Error("WritePIDFile into a world-writable directory: no error")
	}
}
