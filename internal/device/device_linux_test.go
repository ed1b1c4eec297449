package device_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/device/devicetest"
	"github.com/wgnet/wgnet/internal/netnstest"
)

// Each test runs in a network namespace of its own (InNetns). Interface names are
// unique per run because UAPI sockets share /var/run/wireguard across namespaces.

func TestUserspaceConformance(t *testing.T) {
	if !netnstest.InNetns(t) {
		return
	}
	devicetest.Run(t, func(t *testing.T) device.Device {
		u, err := device.NewUserspace("wgt"+netnstest.Unique(8), device.UserspaceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		return u
	})
}

// TestUAPIConformance drives an in-process userspace device through its UAPI socket
// with wgctrl, the path `wgnet up` and wg(8) take to the background daemon.
func TestUAPIConformance(t *testing.T) {
	if !netnstest.InNetns(t) {
		return
	}
	devicetest.Run(t, func(t *testing.T) device.Device {
		name := "wgt" + netnstest.Unique(8)
		u, err := device.NewUserspace(name, device.UserspaceOptions{UAPI: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		d, err := device.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	})
}

func TestKernelConformance(t *testing.T) {
	if !netnstest.InNetns(t) {
		return
	}
	probe := "wgt" + netnstest.Unique(8)
	d, err := device.CreateKernel(probe)
	if errors.Is(err, device.ErrNoKernelSupport) {
		t.Skip("kernel has no WireGuard module: kernel backend not verified here")
	}
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := device.DeleteKernel(probe); err != nil {
		t.Fatal(err)
	}
	devicetest.Run(t, func(t *testing.T) device.Device {
		name := "wgt" + netnstest.Unique(8)
		d, err := device.CreateKernel(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			d.Close()
			if err := device.DeleteKernel(name); err != nil {
				t.Error(err)
			}
		})
		return d
	})
}

// TestUserspaceOffloads checks that the TUN device has the offloads that make the
// userspace backend fast: ethtool must report tx-tcp-segmentation on.
func TestUserspaceOffloads(t *testing.T) {
	if !netnstest.InNetns(t) {
		return
	}
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("needs ethtool")
	}
	name := "wgt" + netnstest.Unique(8)
	u, err := device.NewUserspace(name, device.UserspaceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	out, err := exec.Command("ethtool", "-k", name).CombinedOutput()
	if err != nil {
		t.Fatalf("ethtool -k %s: %v: %s", name, err, out)
	}
	for _, feature := range []string{"tx-tcp-segmentation: on", "tx-tcp6-segmentation: on", "tx-udp-segmentation: on", "generic-segmentation-offload: on"} {
		if !strings.Contains(string(out), feature) {
			t.Errorf("ethtool -k %s: no %q in:\n%s", name, feature, out)
		}
	}
}
