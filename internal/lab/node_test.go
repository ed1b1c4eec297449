package lab

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// TestNodeConfigure runs two nodes by hand: they talk once configured, and a
// second Configure changes only what changed, keeping the session.
func TestNodeConfigure(t *testing.T) {
	ka, kb := mustPriv(t), mustPriv(t)
	addrs := make(map[wgkey.Key]netip.AddrPort)
	resolve := func(p wgconf.Peer) (netip.AddrPort, bool) { ap, ok := addrs[p.PublicKey]; return ap, ok }
	a, err := NewNode("a", NodeOptions{Endpoint: resolve})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewNode("b", NodeOptions{Endpoint: resolve})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, n := range []*Node{a, b} {
		if err := n.Up(); err != nil {
			t.Fatal(err)
		}
	}
	addrs[ka.Public()] = a.Addr()
	ca := &intent.Host{
		PrivateKey: ka, Addresses: prefixes("10.9.0.1/24"),
		Peers: []wgconf.Peer{{PublicKey: kb.Public(), AllowedIPs: prefixes("10.9.0.2/32", "10.8.0.0/24")}},
	}
	cb := &intent.Host{
		PrivateKey: kb, Addresses: prefixes("10.9.0.2/24"),
		Peers: []wgconf.Peer{{PublicKey: ka.Public(), AllowedIPs: prefixes("10.9.0.1/32"), Endpoint: &wgconf.Endpoint{Host: "a.example", Port: 51820}}},
	}
	if err := a.Configure(ca); err != nil {
		t.Fatal(err)
	}
	if err := b.Configure(cb); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := b.Ping(ctx, netip.MustParseAddr("10.9.0.1")); err != nil {
		t.Fatalf("b pings a: %v", err)
	}
	if _, err := a.Connect(ctx, netip.MustParseAddrPort("10.9.0.2:7")); err != nil {
		t.Fatalf("a connects to b: %v", err)
	}
	before, err := a.State()
	if err != nil {
		t.Fatal(err)
	}
	if before.PublicKey != ka.Public() || len(before.Peers) != 1 || a.Handshakes(before.Peers[0].Endpoint) != 1 {
		t.Fatalf("a's state: %+v, %d handshake(s)", before, a.Handshakes(before.Peers[0].Endpoint))
	}

	ca2 := *ca
	ca2.Peers = []wgconf.Peer{{PublicKey: kb.Public(), AllowedIPs: prefixes("10.9.0.2/32", "10.7.0.0/24")}}
	changes, err := a.Diff(&ca2)
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Peer: kb.Public(), What: "-allowed ip 10.8.0.0/24"},
		{Peer: kb.Public(), What: "+allowed ip 10.7.0.0/24"},
	}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("Diff (-want +got):\n%s", diff)
	}
	if err := a.Configure(&ca2); err != nil {
		t.Fatal(err)
	}
	after, err := a.State()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(prefixes("10.9.0.2/32", "10.7.0.0/24"), after.Peers[0].AllowedIPs, cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
		t.Errorf("allowed ips after (-want +got):\n%s", diff)
	}
	if !after.Peers[0].LastHandshake.Equal(before.Peers[0].LastHandshake) || a.Handshakes(after.Peers[0].Endpoint) != 1 {
		t.Errorf("session reset: before %+v, after %+v", before.Peers[0], after.Peers[0])
	}
	if changes, _ := a.Diff(&ca2); len(changes) != 0 {
		t.Errorf("Diff after Configure: %v", changes)
	}
}
