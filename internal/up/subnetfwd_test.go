package up

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/hostnet/hostnettest"
)

func TestSubnetForwarding(t *testing.T) {
	pfx := netip.MustParsePrefix
	h := hostnettest.NewFake()
	for _, l := range []string{"wg0", "br0", "eth0", "br1", "br2"} {
		h.AddLink(l, "veth", 1500)
	}
	for _, r := range []hostnet.Route{
		{Dst: pfx("10.10.1.0/24"), Dev: "br0"},
		{Dst: pfx("10.0.0.0/8"), Dev: "eth0"},              // covers 10.10.1.0/24 less specifically
		{Dst: pfx("192.168.3.0/24"), Dev: "wg0"},           // the tunnel: never counted
		{Dst: pfx("172.20.0.0/16"), Dev: "eth0"},           // covers 172.20.5.0/24
		{Dst: pfx("10.30.1.0/24"), Dev: "br1"},             // inside 10.30.0.0/16
		{Dst: pfx("10.30.2.0/24"), Dev: "br2"},             // inside 10.30.0.0/16
		{Dst: pfx("fd00:10:1::/64"), Dev: "br0"},           // v6, force_forwarding in the fake
		{Dst: pfx("192.168.4.0/24"), Dev: "br0", Table: 7}, // not main: not counted
	} {
		if err := h.AddRoute(r); err != nil {
			t.Fatal(err)
		}
	}
	want, notes, err := subnetForwarding(h, "wg0", []netip.Prefix{
		pfx("10.10.1.0/24"), pfx("172.20.5.0/24"), pfx("10.30.0.0/16"), pfx("fd00:10:1::/64"),
		pfx("192.168.3.0/24"), pfx("192.168.4.0/24"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{
		"net/ipv4/conf/br0/forwarding":       "1",
		"net/ipv4/conf/eth0/forwarding":      "1",
		"net/ipv4/conf/br1/forwarding":       "1",
		"net/ipv4/conf/br2/forwarding":       "1",
		"net/ipv6/conf/br0/force_forwarding": "1",
	}, want); diff != "" {
		t.Errorf("sysctls (-want +got):\n%s", diff)
	}
	if len(notes) != 2 {
		t.Errorf("want a note for 192.168.3.0/24 (only through the tunnel) and 192.168.4.0/24 (another table), got %q", notes)
	}
	if want, notes, err := subnetForwarding(h, "wg0", nil); want != nil || notes != nil || err != nil {
		t.Errorf("no subnets: %v %v %v", want, notes, err)
	}
}
