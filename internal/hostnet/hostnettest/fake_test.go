package hostnettest

import (
	"testing"

	"github.com/wgnet/wgnet/internal/hostnet"
)

func TestFakeConformance(t *testing.T) {
	Run(t, func(t *testing.T) (hostnet.HostNet, string) {
		f := NewFake()
		f.AddLink("wgt0", "veth", 1500)
		return f, "wgt0"
	})
}
