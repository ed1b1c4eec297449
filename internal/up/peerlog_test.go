package up

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/wgkey"
)

func TestPeerLog(t *testing.T) {
	pfx := netip.MustParsePrefix
	var k wgkey.Key
	k[0] = 1
	p := &Plan{Peers: []PeerChange{
		{Op: PeerUpdate, Name: "s2", AddAllowedIPs: []netip.Prefix{pfx("10.0.9.0/24")}},
		{Op: PeerUpdate, Name: "s3", RemoveAllowedIPs: []netip.Prefix{pfx("10.0.9.0/24")}},
		{Op: PeerAdd, Name: "s4", AllowedIPs: []netip.Prefix{pfx("10.99.0.4/32"), pfx("10.0.4.0/24")}},
		{Op: PeerRemove, PublicKey: k},
		{Op: PeerUpdate, Name: "s5", Endpoint: &Change[string]{Old: "192.0.2.1:51820", New: "192.0.2.2:51820"}},
	}}
	if diff := cmp.Diff([]string{
		"peer s2: +allowed ip 10.0.9.0/24",
		"peer s4: added, allowed ips 10.99.0.4/32, 10.0.4.0/24",
		"peer s5: endpoint 192.0.2.1:51820 -> 192.0.2.2:51820",
	}, p.peerLog(false)); diff != "" {
		t.Errorf("add and update (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{
		"peer s3: -allowed ip 10.0.9.0/24",
		"peer " + k.String() + ": removed",
	}, p.peerLog(true)); diff != "" {
		t.Errorf("remove (-want +got):\n%s", diff)
	}
	many := &Plan{}
	for i := 0; i < 10; i++ {
		many.Peers = append(many.Peers, PeerChange{Op: PeerRemove, Name: "h"})
	}
	if got := many.peerLog(true); len(got) != peerLogMax+1 || got[peerLogMax] != "2 more peer(s)" {
		t.Errorf("10 removed: %q", got)
	}
}
