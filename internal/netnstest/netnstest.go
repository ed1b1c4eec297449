// Package netnstest gives tests isolated Linux network namespaces: fresh namespaces
// with unique names, deleted when the test ends; veth links joining two of them
// (never the root namespace); commands run inside with `ip netns exec`; and InNetns,
// which re-runs a test in a namespace of its own. Tests that use it need root and
// skip otherwise.
//
// It is for tests only and imports nothing of wgnet.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// StrictEnv names the variable CI sets: under WGNET_TEST_STRICT=1 a test that
// would skip for lack of root or a tool fails instead, since CI runs as root
// with every tool installed.
const StrictEnv = "WGNET_TEST_STRICT"

// Needs skips the test for the reason given ("needs root: ...", "needs wg ..."),
// or fails it under WGNET_TEST_STRICT=1.
func Needs(t testing.TB, format string, a ...any) {
	t.Helper()
	if os.Getenv(StrictEnv) == "1" {
		t.Fatalf(format+" (%s=1: CI runs as root with every tool, so this test must run)", append(a, StrictEnv)...)
	}
	t.Skipf(format, a...)
}

// NeedsTool skips (or, under WGNET_TEST_STRICT=1, fails) the test unless every
// named command is on PATH; pkg names the Debian package(s) that bring them.
func NeedsTool(t testing.TB, pkg string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			Needs(t, "needs %s (Debian package %s)", tool, pkg)
		}
	}
}

// RequireRoot skips (or, under WGNET_TEST_STRICT=1, fails) the test unless it
// runs as root with iproute2's ip.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Needs(t, "needs root: creates network namespaces")
	}
	NeedsTool(t, "iproute2", "ip")
}

// Unique returns n random hex characters, for names that must not collide with
// another test run (namespace names, interface names, UAPI socket names).
func Unique(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)[:n]
}

// NS is a network namespace created by New.
type NS struct {
	Name string
}

// New creates a namespace called "wgt-" + a random part + "-" + label, with
// loopback up, and deletes it when the test ends, after stopping every
// process still running in it (StopAll), however the test ended.
func New(t testing.TB, label string) *NS {
	t.Helper()
	RequireRoot(t)
	ns := &NS{Name: "wgt-" + Unique(6) + "-" + label}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns.Name, err, out)
	}
	t.Cleanup(func() {
		if left := ns.StopAll(); len(left) > 0 {
			t.Logf("namespace %s: stopped what the test left running in it: %s", ns.Name, strings.Join(left, "; "))
		}
		if out, err := exec.Command("ip", "netns", "delete", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", ns.Name, err, out)
		}
	})
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// stopGrace is how long StopAll waits after SIGTERM before SIGKILL.
const stopGrace = 3 * time.Second

// StopAll stops every process in the namespace (as `ip netns pids` finds
// them: those whose network namespace it is), by PID: SIGTERM, then SIGKILL
// to those still there after stopGrace. It returns "PID (command line)" of
// each it signalled. A test that fails half-way leaves the daemons it
// started there (a userspace WireGuard, wg-quick's wireguard-go, a
// confirmation timer); deleting the namespace does not stop them, and they
// would go on holding their UAPI sockets. Nothing outside the namespace is
// touched: every PID signalled is listed by `ip netns pids` right before.
func (ns *NS) StopAll() []string {
	var stopped []string
	deadline := time.Now().Add(stopGrace)
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
		pids := ns.PIDs()
		if len(pids) == 0 {
			return stopped
		}
		if sig == unix.SIGKILL {
			for len(pids) > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				pids = ns.PIDs()
			}
		}
		for _, pid := range pids {
			if sig == unix.SIGTERM {
				stopped = append(stopped, fmt.Sprintf("%d (%s)", pid, cmdline(pid)))
			}
			_ = unix.Kill(pid, sig)
		}
	}
	// SIGKILL is delivered on the way: wait until the kernel has it done.
	for end := time.Now().Add(time.Second); len(ns.PIDs()) > 0 && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	return stopped
}

// PIDs lists the live processes in the namespace (zombies left out: they
// are gone but for their parent's wait).
func (ns *NS) PIDs() []int {
	out, err := exec.Command("ip", "netns", "pids", ns.Name).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// cmdline is a process's command line, for the log.
func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// Command returns a command that runs argv inside the namespace.
func (ns *NS) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name}, argv...)...)
}

// Try runs argv inside the namespace (bounded to 30 seconds) and returns its
// combined output.
func (ns *NS) Try(argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ns.Command(ctx, argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s: %w: %s", ns.Name, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Run is Try that fails the test on error.
func (ns *NS) Run(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := ns.Try(argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Veth joins namespace a (interface aIf) and b (interface bIf) with a veth pair,
// created inside a and moved straight into b, so that no end ever exists in the
// root namespace. Both ends are set up.
func Veth(t testing.TB, a *NS, aIf string, b *NS, bIf string) {
	t.Helper()
	a.Run(t, "ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	a.Run(t, "ip", "link", "set", aIf, "up")
	b.Run(t, "ip", "link", "set", bIf, "up")
}

// Sysctl sets key (dotted, as sysctl(8) takes it) to value inside the namespace.
func (ns *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	ns.Run(t, "sysctl", "-q", "-w", key+"="+value)
}

const childEnv = "WGNET_NETNSTEST_CHILD"

// InNetns runs the calling top-level test again, in a child process inside a fresh
// network namespace, and reports whether the caller is that child. The usual form:
//
//	if !netnstest.InNetns(t) {
//		return // the child ran the test
//	}
//
// The child's output is logged; its failure fails the test.
func InNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("InNetns works for top-level tests only, not %s", t.Name())
	}
	ns := New(t, "t")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := ns.Command(ctx, os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns.Name, out)
	if err != nil {
		t.Fatalf("test in namespace %s: %v", ns.Name, err)
	}
	if strings.Contains(string(out), "--- SKIP: "+t.Name()) {
		t.Skip("skipped in the namespace")
	}
	return false
}

// Do runs fn with the calling goroutine's thread inside the namespace, and
// returns fn's error. A socket fn opens stays in the namespace after Do returns,
// so a test can listen or dial there from its own process:
//
//	ns.Do(func() error { ln, err = net.Listen("tcp", ":5432"); return err })
func (ns *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns.Name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns.Name, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays in the wrong namespace: keep it locked, so that it
		// dies with the goroutine rather than serve another.
		return errors.Join(ferr, fmt.Errorf("setns back from %s: %w", ns.Name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Serve hands every connection ln accepts to handle, in the background, and
// closes ln when the test ends.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
}
