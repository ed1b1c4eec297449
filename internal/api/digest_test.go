package api_test

import (
	"slices"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
)

// TestDigest: the wire form round-trips and refuses what is not 64 hex
// digits; the digest of a state is its head's plus its peers' in any order,
// a peer twice counts twice, and a peer or head field changed changes it;
// the revision and URLs are not part of it.
func TestDigest(t *testing.T) {
	st := &api.AgentState{Network: "n", Host: "me", Revision: 4, Subnets: []string{"10.0.0.0/24"}, Addresses: []string{"10.0.0.1/24"},
		URLs: []string{"https://ctl:7443"}, Peers: []api.Peer{
			{Name: "a", PublicKey: "ka", AllowedIPs: []string{"10.0.0.2/32"}},
			{Name: "b", PublicKey: "kb", Endpoint: "192.0.2.2:51820", AllowedIPs: []string{"10.0.0.3/32"}, Keepalive: 25},
		}}
	d := api.StateDigest(st)
	if got, err := api.ParseDigest(d.String()); err != nil || got != d || len(d.String()) != 64 {
		t.Errorf("round trip of %s: %s, %v", d, got, err)
	}
	for _, bad := range []string{"", "zz", d.String()[:62], d.String() + "00"} {
		if _, err := api.ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q) accepted", bad)
		}
	}
	sum := api.HeadDigest(st).Add(api.PeerDigest(&st.Peers[1])).Add(api.PeerDigest(&st.Peers[0]))
	if sum != d || sum.Sub(api.PeerDigest(&st.Peers[0])).Add(api.PeerDigest(&st.Peers[0])) != d {
		t.Errorf("head plus peers in another order: %s; want %s", sum, d)
	}
	other := *st
	other.Revision, other.URLs = 9, nil
	if api.StateDigest(&other) != d {
		t.Error("the revision or the URLs change the digest")
	}
	twice := other
	twice.Peers = append(slices.Clone(st.Peers), st.Peers[0])
	peer := other
	peer.Peers = slices.Clone(st.Peers)
	peer.Peers[1].Keepalive = 0
	head := other
	head.Addresses = []string{"10.0.0.9/24"}
	for name, s := range map[string]*api.AgentState{"a peer twice": &twice, "a peer's keepalive": &peer, "the head's address": &head} {
		if api.StateDigest(s) == d {
			t.Errorf("%s: the same digest", name)
		}
	}
}
