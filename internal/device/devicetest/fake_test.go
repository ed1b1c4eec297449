package devicetest

import (
	"testing"

	"github.com/wgnet/wgnet/internal/device"
)

func TestFakeConformance(t *testing.T) {
	Run(t, func(t *testing.T) device.Device { return NewFake("wgfake0") })
}

// TestFakeWithoutRemovalConformance is the fake as an old wireguard-go: no
// single allowed-IP removal.
func TestFakeWithoutRemovalConformance(t *testing.T) {
	Run(t, func(t *testing.T) device.Device {
		f := NewFake("wgfake0")
		f.SetNoRemoval(true)
		return f
	})
}
