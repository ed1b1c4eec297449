package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCheckStopsOnSignal: SIGINT or SIGTERM stops `wgnet check` waiting on a
// FIFO that never delivers (issue 9, finding 7: it took SIGKILL).
func TestCheckStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "s1.conf")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			cmd := exec.Command(wgnetBin(t), "check", fifo)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			time.Sleep(300 * time.Millisecond) // let it block on the FIFO
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("wgnet check still waiting on the FIFO 10 s after %v", sig)
			}
			if code := cmd.ProcessState.ExitCode(); code != exitCantRun || !strings.Contains(stderr.String(), "signal received") {
				t.Errorf("exit %d, stderr %q; want %d and the cancellation", code, stderr.String(), exitCantRun)
			}
		})
	}
}

// TestCheckDevZero: an endless input is refused with a clear error and exit 2
// (issue 9, finding 8: "fatal error: out of memory"), also under a limit on
// address space where reading it whole would fail.
func TestCheckDevZero(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	const want = "wgnet: read /dev/zero: more than the 64 MiB an input may have"
	_, stderr, code := cli(t, t.TempDir(), "check", "/dev/zero")
	if code != exitCantRun || !strings.HasPrefix(stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr, exitCantRun, want)
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("no prlimit (util-linux) for the address-space limit")
	}
	// 2 GiB: the Go runtime reserves most of it up front; what is left holds
	// the 64 MiB limit but not an unbounded read.
	out, _ := exec.Command(prlimit, "--as=2147483648", wgnetBin(t), "check", "/dev/zero").CombinedOutput()
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("under prlimit --as=2GiB: %.300s", out)
	}
}
