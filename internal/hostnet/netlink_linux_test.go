package hostnet_test

import (
	"os/exec"
	"testing"

	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/hostnet/hostnettest"
	"github.com/wgnet/wgnet/internal/netnstest"
)

func TestLinuxConformance(t *testing.T) {
	if !netnstest.InNetns(t) {
		return // ran in a namespace of its own
	}
	hostnettest.Run(t, func(t *testing.T) (hostnet.HostNet, string) {
		// The dummy module is not everywhere; a veth pair whose peer stays down
		// behaves the same for this test.
		name := "wgt" + netnstest.Unique(6)
		if out, err := exec.Command("ip", "link", "add", name, "type", "veth", "peer", "name", name+"p").CombinedOutput(); err != nil {
			t.Fatalf("ip link add: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
		return hostnet.New(), name
	})
}
