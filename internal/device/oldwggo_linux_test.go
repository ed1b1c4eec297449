package device_test

import (
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/device/devicetest"
	"github.com/wgnet/wgnet/internal/netnstest"
)

// TestDebianWireguardGoConformance drives Debian's wireguard-go (a 2022 build, what
// stock wg-quick falls back to without the kernel module) through Open, as `wgnet
// sync` does with an interface wg-quick made. That build cannot remove single
// allowed IPs; the device must say so and refuse such a patch unapplied. Each
// device is removed with Delete, as `wgnet down` removes an adopted interface.
func TestDebianWireguardGoConformance(t *testing.T) {
	if _, err := exec.LookPath("wireguard-go"); err != nil {
		t.Skip("needs Debian's wireguard-go")
	}
	if !netnstest.InNetns(t) {
		return
	}
	devicetest.Run(t, func(t *testing.T) device.Device {
		name := "wgt" + netnstest.Unique(8)
		// In the foreground, so that the test knows its PID and can always stop it.
		cmd := exec.Command("wireguard-go", "-f", name)
		cmd.Env = append(cmd.Environ(), "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1")
		if err := cmd.Start(); err != nil {
			t.Fatalf("wireguard-go %s: %v", name, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			if err := device.Delete(name, 0); err != nil {
				t.Error(err)
			}
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				t.Errorf("wireguard-go %s still running after its interface was deleted; killing it", name)
				cmd.Process.Kill()
				<-exited
			}
		})
		var d device.Device
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if d, err = device.Open(name); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if device.RemovesAllowedIPs(d) {
			t.Errorf("Debian's wireguard-go reports that it removes single allowed IPs")
		}
		// Nor does it read single peers: asked, it must say so, not answer wrong.
		if _, err := d.(device.PeerReader).PeerStates(nil); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("PeerStates on Debian's wireguard-go: %v, want ErrUnsupported", err)
		}
		return d
	})
}
