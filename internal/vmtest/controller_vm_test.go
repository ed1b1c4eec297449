package vmtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// killAfterAcks is how many acknowledged adds the host waits for before it
// kills the VM; the guest goes on writing, so the kill lands mid-burst.
const killAfterAcks = 300

// Console lines of TestGuestController, one per acknowledged add (burst) and
// per stored host (verify), and the network's revision after the reboot.
var (
	ackRE  = regexp.MustCompile(`(?m)^WGNET-ACK n=(\d+) host=(\S+) addr=(\S+)\r?$`)
	haveRE = regexp.MustCompile(`(?m)^WGNET-HAVE host=(\S+) addr=(\S+)\r?$`)
	revRE  = regexp.MustCompile(`(?m)^WGNET-REV rev=(\d+) hosts=(\d+)\r?$`)
)

// TestControllerVMKill proves that a write the controller acknowledged is on
// disk (issue 14: a 2xx means fsync'd), which a process kill cannot prove, as
// the page cache survives it. A VM with an ext4 disk runs `wgnet controller`
// on it and a burst of 1,000 adds from 8 writers; each 2xx is printed on the
// console, and after the 300th the host kills qemu with SIGKILL, so whatever
// the guest kernel had not written to the disk is lost as in a power cut. A
// second boot of the same disk starts the controller again: every
// acknowledged host must be there with its address, no address given twice,
// and the revisions dense.
func TestControllerVMKill(t *testing.T) {
	kit := prepareVM(t)
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("needs mkfs.ext4 (e2fsprogs) to make the VM's disk")
	}
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 256<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", "-L", "wgnet-vm", disk).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}

	out, accel, took, err := kit.boot(t, BootOptions{
		Append: DefaultAppend + " wgnet.mode=controller-burst",
		Drives: []string{disk},
		// The kill waits for the next line to begin, so that the last
		// acknowledged one is whole on the console.
		KillOn: "WGNET-ACK n=" + strconv.Itoa(killAfterAcks+1) + " ",
	})
	if !errors.Is(err, ErrKilled) {
		t.Fatalf("burst VM (%s): want it killed after %d acknowledged adds, got %v; console:\n%s", accel, killAfterAcks, err, out)
	}
	acked := map[string]string{}
	for _, m := range ackRE.FindAllStringSubmatch(string(out), -1) {
		acked[m[2]] = m[3]
	}
	if len(acked) < killAfterAcks {
		t.Fatalf("%d acknowledged adds on the console, want at least %d; console:\n%s", len(acked), killAfterAcks, out)
	}
	t.Logf("burst VM (%s): killed with SIGKILL after %d acknowledged adds, %v after boot", accel, len(acked), took.Round(1e6))

	out, accel, took, err = kit.boot(t, BootOptions{
		Append: DefaultAppend + " wgnet.mode=controller-verify",
		Drives: []string{disk},
	})
	if err != nil {
		t.Fatalf("verify VM (%s): %v; console:\n%s", accel, err, out)
	}
	res, err := ParseConsole(out)
	if err != nil {
		t.Fatalf("%v; console:\n%s", err, out)
	}
	if len(res.Runs) != 1 || res.Runs[0].RC != 0 {
		t.Fatalf("verify VM: runs %+v; console:\n%s", res.Runs, out)
	}
	have, byAddr := map[string]string{}, map[string]string{}
	for _, m := range haveRE.FindAllStringSubmatch(string(out), -1) {
		have[m[1]] = m[2]
		if other, dup := byAddr[m[2]]; dup {
			t.Errorf("address %s given to %s and %s", m[2], other, m[1])
		}
		byAddr[m[2]] = m[1]
	}
	lost := 0
	for name, addr := range acked {
		if have[name] != addr {
			lost++
			t.Errorf("acknowledged %s at %s; after the kill and reboot: %q", name, addr, have[name])
		}
	}
	rev := revRE.FindStringSubmatch(string(out))
	if rev == nil {
		t.Fatalf("no WGNET-REV line; console:\n%s", out)
	}
	if n, _ := strconv.Atoi(rev[2]); n != len(have) {
		t.Errorf("the controller lists %d hosts, %d HAVE lines", n, len(have))
	}
	// Revision 1 created the network; each add made one more.
	if r, _ := strconv.Atoi(rev[1]); r != 1+len(have) {
		t.Errorf("revision %d with %d hosts: not dense", r, len(have))
	}
	t.Logf("verify VM (%s, %v): %d hosts stored, %d acknowledged before the kill, %d of them lost, revision %s",
		accel, took.Round(1e6), len(have), len(acked), lost, rev[1])
	if t.Failed() {
		t.Logf("verify console:\n%s", out)
	}
}
