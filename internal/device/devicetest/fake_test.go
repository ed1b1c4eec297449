package devicetest

import (
	"testing"

	"github.com/wgnet/wgnet/internal/device"
)

func TestFakeConformance(t *testing.T) {
	Run(t, func(t *testing.T) device.Device { return NewFake("wgfake0") })
}
