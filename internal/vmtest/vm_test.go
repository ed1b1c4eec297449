package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cacheDir is where tests/qemu/fetch.sh unpacks Debian's kernel and busybox-static.
func cacheDir() string {
	if d := os.Getenv("WGNET_QEMU_CACHE"); d != "" {
		return d
	}
	return "/var/cache/wgnet-qemu"
}

// vmKit is what booting the test VM takes: Debian's kernel, qemu and an
// initramfs with the test binaries, built for each test that boots.
type vmKit struct {
	kernel Kernel
	qemu   string
	initrd string
}

// prepareVM finds the kernel, busybox and qemu (skipping the test, with what to
// do, when one is missing), builds the test binaries statically and packs the
// initramfs.
func prepareVM(t *testing.T) vmKit {
	t.Helper()
	if os.Getenv("WGNET_QEMU_TEST") != "1" {
		t.Skip("opt-in: set WGNET_QEMU_TEST=1 to boot Debian's kernel in qemu (tests/qemu/fetch.sh gets the kernel; see docs/kernel-vm.md)")
	}
	root := filepath.Join(cacheDir(), "root")
	k, err := FindKernel(root)
	if err != nil {
		t.Skipf("no Debian kernel unpacked (run tests/qemu/fetch.sh): %v", err)
	}
	busybox := filepath.Join(root, "bin", "busybox")
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("no static busybox unpacked (run tests/qemu/fetch.sh): %v", err)
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("needs qemu-system-x86_64 (apt-get install qemu-system-x86, or tests/qemu/fetch.sh)")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs iproute2's ip on the host: it is copied into the VM")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command to build the binaries for the VM")
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	start := time.Now()
	for _, b := range [][]string{
		{"test", "-c", "-o", filepath.Join(bin, "device.test"), "../device"},
		{"test", "-c", "-o", filepath.Join(bin, "vmtest.test"), "."},
		{"build", "-o", filepath.Join(bin, "wgnet"), "../../cmd/wgnet"},
	} {
		cmd := exec.Command(goCmd, b...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(b, " "), err, out)
		}
	}
	t.Logf("built the VM's binaries in %v", time.Since(start).Round(time.Millisecond))

	initrd := filepath.Join(dir, "initramfs.cpio")
	if err := buildInitramfs(initrd, k, busybox, ip, bin); err != nil {
		t.Fatal(err)
	}
	return vmKit{kernel: k, qemu: qemu, initrd: initrd}
}

// boot boots the VM with opts (its kernel, initrd and qemu filled in), with KVM
// when it is usable, and reports the accelerator used and how long it ran. A
// nested KVM may take the VM and never run it: it gets 20 seconds to reach /init
// (a second or two normally), then the VM is booted again under TCG, which boots
// in about 5. Each boot is bounded to 3 minutes.
func (kit vmKit) boot(t *testing.T, opts BootOptions) ([]byte, string, time.Duration, error) {
	t.Helper()
	opts.QEMU, opts.Kernel, opts.Initrd = kit.qemu, kit.kernel.Image, kit.initrd
	opts.Started = "WGNET-VM:"
	kvm, why := KVMUsable()
	if !kvm {
		t.Logf("not using KVM: %s; TCG emulation instead", why)
	}
	opts.KVM, opts.StartTimeout = kvm, 20*time.Second
	if !kvm {
		opts.StartTimeout = 60 * time.Second
	}
	out, took, err := boot(t, opts)
	if err != nil && opts.KVM && (errors.Is(err, ErrNoStart) || !strings.Contains(string(out), "WGNET-VM:")) {
		t.Logf("qemu with KVM failed before the VM started (%v); retrying with TCG emulation", err)
		opts.StartTimeout = 60 * time.Second
		opts.KVM = false
		out, took, err = boot(t, opts)
	}
	accel := "TCG"
	if opts.KVM {
		accel = "KVM"
	}
	return out, accel, took, err
}

// TestKernelVM verifies the kernel WireGuard backend in a qemu VM booting Debian's
// kernel: it builds the test binaries statically, packs them with busybox, iproute2's
// ip and the WireGuard modules into an initramfs, boots it (KVM when it can, else
// TCG) with no network device, and requires every run inside to pass: the device
// package's TestKernelConformance (the shared conformance test against
// CreateKernel) and TestGuestTwoHosts (wgnet up/show/down with the kernel backend).
func TestKernelVM(t *testing.T) {
	kit := prepareVM(t)
	out, accel, took, err := kit.boot(t, BootOptions{})
	if err != nil {
		t.Fatalf("VM (kernel %s, %s): %v; console:\n%s", kit.kernel.Version, accel, err, out)
	}
	k := kit.kernel
	res, err := ParseConsole(out)
	if err != nil {
		t.Fatalf("%v; console:\n%s", err, out)
	}
	t.Logf("VM: kernel %s, %s, booted and powered off in %v", k.Version, accel, took.Round(time.Millisecond))
	t.Logf("VM summary:\n%s", summary(out))

	want := map[string]string{
		"device-conformance": "TestKernelConformance",
		"two-hosts":          "TestGuestTwoHosts",
	}
	seen := map[string]bool{}
	for _, r := range res.Runs {
		seen[r.Name] = true
		top, ok := want[r.Name]
		switch {
		case !ok:
			t.Errorf("unexpected run %s in the VM", r.Name)
		case r.RC != 0:
			t.Errorf("%s failed in the VM (exit %d):\n%s", r.Name, r.RC, r.Output)
		case strings.Contains(r.Output, "--- SKIP: "+top):
			t.Errorf("%s: %s skipped in the VM, so the kernel backend was not verified:\n%s", r.Name, top, r.Output)
		case !strings.Contains(r.Output, "--- PASS: "+top+" "):
			t.Errorf("%s: no PASS line for %s:\n%s", r.Name, top, r.Output)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s did not run in the VM", name)
		}
	}
	if res.RC != 0 && !t.Failed() {
		t.Errorf("the VM's /init reported rc=%d; console:\n%s", res.RC, out)
	}
	if t.Failed() {
		t.Logf("full console:\n%s", out)
	}
}

// boot runs the VM, bounded to 3 minutes, and reports how long it ran.
func boot(t *testing.T, opts BootOptions) ([]byte, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := Boot(ctx, opts)
	return out, time.Since(start), err
}

// buildInitramfs packs the VM: /init, busybox, the WireGuard, veth and nf_tables
// modules with their dependencies, iproute2's ip (and wg, when the host has it) with their
// libraries, and the binaries in bin.
func buildInitramfs(path string, k Kernel, busybox, ip, bin string) error {
	var r Initramfs
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "root", "var", "etc", "sbin"} {
		r.Dir(d, 0o755)
	}
	r.HostFile("init", "testdata/init", 0o755)
	r.HostFile("bin/busybox", busybox, 0o755)
	r.Symlink("bin/sh", "busybox") // for /init's #!; /init installs the other applets
	// nf_tables: sync reads wgnet's firewall table (a host kernel would load it on
	// demand; the VM has no modprobe). crc32c_generic is libcrc32c's soft
	// dependency ("softdep=pre: crc32c"), which ModuleClosure does not follow.
	// ext4 on a virtio disk: the controller's durability test (TestControllerVMKill).
	mods, err := k.ModuleClosure("wireguard", "veth", "crc32c_generic", "nf_tables", "virtio_pci", "virtio_blk", "ext4")
	if err != nil {
		return err
	}
	for _, m := range mods {
		r.HostFile(filepath.Join("lib/modules", k.Version, m), filepath.Join(k.ModulesDir, m), 0o644)
	}
	r.File("etc/wgnet-vm/modules", 0o644, []byte(strings.Join(mods, "\n")+"\n"))

	progs := map[string]string{"ip": ip}
	if wg, err := exec.LookPath("wg"); err == nil {
		progs["wg"] = wg
	}
	for name, p := range progs {
		r.HostFile("usr/local/bin/"+name, p, 0o755)
		libs, err := SharedLibs(p)
		if err != nil {
			return err
		}
		for _, l := range libs {
			r.HostFile(l, l, 0o755)
		}
	}
	for _, b := range []string{"device.test", "vmtest.test", "wgnet"} {
		r.HostFile("usr/local/bin/"+b, filepath.Join(bin, b), 0o755)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := r.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// summaryRE picks the lines that show what the VM verified: /init's own lines, the
// tests' verdicts, and the "proof:" lines TestGuestTwoHosts logs.
var summaryRE = regexp.MustCompile(`WGNET-VM|^\s*--- (PASS|FAIL|SKIP)|^\s*(PASS|FAIL)$|: proof: `)

func summary(out []byte) string {
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, "\r")
		if summaryRE.MatchString(line) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
