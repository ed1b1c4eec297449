package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/store/storetest"
)

// TestGuardDefaultInParts: without --allow full-tunnel an agent refuses a
// default route however the controller splits it (0.0.0.0/1 and
// 128.0.0.0/1 as approved routes, a subnet of 0.0.0.0/0 or ::/0 with peers
// routing its halves, an overlay address whose prefix is /0 or /1, 256
// approved /8s), even with --allow public-routes, in a whole state and in a
// delta onto a good one (the patched path); each is accepted with
// --allow full-tunnel where the peers' routes are the full tunnel's, and a
// /8 subnet stays accepted without it. Without --allow public-routes, any
// public subnet or approved route is refused (8.8.8.0/24, 220 public /8s,
// 2000::/3's /8s); mapped and unmasked prefixes are refused always.
func TestGuardDefaultInParts(t *testing.T) {
	own, other := storetest.Key(0), storetest.Key(1)
	good := func() *api.AgentState {
		st := &api.AgentState{Network: "n", Host: "me", Interface: "wg0", Revision: 1, Subnets: []string{"10.80.0.0/16", "fd80::/64"},
			Addresses: []string{"10.80.255.1/16"}}
		for i := range 40 { // enough peers for the delta to be patched in place
			st.Peers = append(st.Peers, api.Peer{Name: fmt.Sprintf("p%02d", i), PublicKey: storetest.Key(i + 2).String(),
				AllowedIPs: []string{fmt.Sprintf("10.80.0.%d/32", i+1)}})
		}
		st.Peers[0].PublicKey = other.String()
		return st
	}
	var eights []string
	for i := range 256 {
		eights = append(eights, fmt.Sprintf("%d.0.0.0/8", i))
	}
	cases := []struct {
		name  string
		head  func(*api.AgentState)
		peer  []string // p00's allowed IPs
		allow bool     // accepted with --allow full-tunnel
		want  string
	}{
		{"approved /1 pair", func(s *api.AgentState) { s.ApprovedRoutes = []string{"0.0.0.0/1", "128.0.0.0/1"} },
			[]string{"0.0.0.0/1", "128.0.0.0/1"}, true, "wider than /8"},
		{"subnet 0.0.0.0/0", func(s *api.AgentState) { s.Subnets = append(s.Subnets, "0.0.0.0/0") },
			[]string{"0.0.0.0/1", "128.0.0.0/1"}, true, "wider than /8"},
		{"subnet ::/0", func(s *api.AgentState) { s.Subnets = append(s.Subnets, "::/0") },
			[]string{"::/1", "8000::/1"}, true, "wider than /8"},
		{"256 approved /8s", func(s *api.AgentState) { s.ApprovedRoutes = eights },
			[]string{"10.80.0.1/32", "11.0.0.0/8", "200.0.0.0/8"}, true, "together cover 0.0.0.0/0"},
		{"address /0", func(s *api.AgentState) { s.Addresses = []string{"10.80.255.1/0"} }, nil, false, "outside the network's subnets"},
		{"address /1", func(s *api.AgentState) { s.Addresses = []string{"10.80.255.1/1"} }, nil, false, "outside the network's subnets"},
		{"address /15", func(s *api.AgentState) { s.Addresses = []string{"10.80.255.1/15"} }, nil, false, "outside the network's subnets"},
	}
	for _, tc := range cases {
		next := good()
		next.Revision = 2
		tc.head(next)
		if tc.peer != nil {
			next.Peers[0].AllowedIPs = tc.peer
		}
		public := Allowed{PublicRoutes: true}
		_, err := public.Intent(next, "/k", own)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s, whole state: %v, want refused (%s)", tc.name, err, tc.want)
		}
		if _, err := Intent(next, "/k", own); !errors.Is(err, ErrRefused) {
			t.Errorf("%s, whole state, public routes not allowed: %v, want refused", tc.name, err)
		}
		// The same as a delta onto the good state the agent holds.
		prev := hold(good())
		h0, err := heldIntent(memo{}, prev, "/k", own, public)
		if err != nil {
			t.Fatal(err)
		}
		head := *next
		head.Peers = nil
		d := &api.AgentDelta{From: 1, Revision: 2, Head: &head, Peers: []api.Peer{next.Peers[0]}}
		got, err := prev.apply(d)
		if err != nil {
			t.Fatal(err)
		}
		_, err = heldIntent(memo{prev, h0}, got, "/k", own, public)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s, delta: %v, want refused (%s)", tc.name, err, tc.want)
		}
		if tc.allow {
			if _, err := (Allowed{FullTunnel: true}).Intent(next, "/k", own); err != nil {
				t.Errorf("%s, with --allow full-tunnel: %v", tc.name, err)
			}
		}
	}
	// Public address space, without --allow public-routes: refused, in a
	// whole state and in a delta; accepted with it (one public /24, or 220
	// public /8s: not all of a family).
	var public8s, global6 []string
	for i := 1; i < 224; i++ {
		if i != 10 && i != 127 && i != 203 {
			public8s = append(public8s, fmt.Sprintf("%d.0.0.0/8", i))
		}
	}
	for i := 0x20; i < 0x40; i++ {
		global6 = append(global6, fmt.Sprintf("%x00::/8", i))
	}
	for _, ps := range [][]string{{"8.8.8.0/24"}, public8s, global6, {"2a00::/8"}} {
		st := good()
		st.ApprovedRoutes = ps
		st.Peers[0].AllowedIPs = append(slices.Clone(ps), "10.80.0.1/32")
		_, err := Intent(st, "/k", own)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "--allow public-routes") {
			t.Errorf("approved %v: %v, want refused (public)", ps[:min(len(ps), 3)], err)
		}
		prev := hold(good())
		h0, _ := heldIntent(memo{}, prev, "/k", own, Allowed{})
		head := *st
		head.Peers = nil
		st.Revision++
		got, err := prev.apply(&api.AgentDelta{From: 1, Revision: 2, Head: &head, Peers: []api.Peer{st.Peers[0]}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := heldIntent(memo{prev, h0}, got, "/k", own, Allowed{}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "public") {
			t.Errorf("approved %v, delta: %v, want refused (public)", ps[:min(len(ps), 3)], err)
		}
		if _, err := (Allowed{PublicRoutes: true}).Intent(st, "/k", own); err != nil {
			t.Errorf("approved %v with --allow public-routes: %v", ps[:min(len(ps), 3)], err)
		}
	}
	// Never: an IPv4-mapped IPv6 prefix (judged as IPv6, routed as IPv4 by
	// WireGuard), a route with host bits set.
	for _, tc := range []struct{ subnet, peer string }{
		{"::/8", "::ffff:8.8.8.0/120"}, {"fd00::/8", "::ffff:10.80.0.0/112"}, {"10.80.0.0/16", "10.80.0.1/24"},
	} {
		st := good()
		st.Subnets = append(st.Subnets, tc.subnet)
		st.Peers[1].AllowedIPs = []string{tc.peer}
		for _, al := range []Allowed{{}, {PublicRoutes: true, FullTunnel: true}} {
			if _, err := al.Intent(st, "/k", own); !errors.Is(err, ErrRefused) {
				t.Errorf("peer %s in %s, allowed %+v: %v, want refused", tc.peer, tc.subnet, al, err)
			}
		}
	}
	// Only the peers' routes change: a delta without a head, onto a state
	// whose approved routes already cover half of the space each, refused
	// at the head (the state before it too).
	half := good()
	half.ApprovedRoutes = []string{"0.0.0.0/1"}
	if _, err := Intent(half, "/k", own); !errors.Is(err, ErrRefused) {
		t.Errorf("approved 0.0.0.0/1: %v", err)
	}
	wide := good()
	wide.Subnets = []string{"10.0.0.0/8", "fd00::/8"}
	wide.Addresses = []string{"10.80.255.1/8"}
	wide.Peers[1].AllowedIPs = []string{"10.0.0.0/8", "fd00::/8"}
	if _, err := Intent(wide, "/k", own); err != nil {
		t.Errorf("a /8 network: %v", err)
	}
	for _, rs := range [][]string{{"0.0.0.0/1", "128.0.0.0/1"}, {"0.0.0.0/7"}, {"::/1", "8000::/1"}, eights} {
		var ps []netip.Prefix
		for _, r := range rs {
			ps = append(ps, netip.MustParsePrefix(r))
		}
		if err := CheckOwnRoutes(ps); !errors.Is(err, ErrRefused) {
			t.Errorf("asking for %v: %v", rs[:min(len(rs), 3)], err)
		}
	}
	if err := CheckOwnRoutes([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12")}); err != nil {
		t.Errorf("asking for private ranges: %v", err)
	}
}

// TestCovers: covers against counting addresses, on random sets of IPv4
// prefixes of a small space (a /24 split into prefixes of /25 to /32).
func TestCovers(t *testing.T) {
	b := netip.MustParsePrefix("192.0.2.0/24")
	covered := 0
	for seed := range uint64(300) {
		var ps []netip.Prefix
		n := 1 + int(seed%40)
		x := seed*2654435761 + 1
		for range n {
			x = x*6364136223846793005 + 1442695040888963407
			bits := 25 + int(x>>59)%8
			a := netip.AddrFrom4([4]byte{192, 0, 2, byte(x >> 40)})
			ps = append(ps, netip.PrefixFrom(a, bits).Masked())
		}
		if seed%3 == 0 { // make some cover: add the missing /32s
			have := map[netip.Addr]bool{}
			for _, p := range ps {
				for a := p.Addr(); p.Contains(a); a = a.Next() {
					have[a] = true
				}
			}
			for a := b.Addr(); b.Contains(a); a = a.Next() {
				if !have[a] && x>>62 != 0 {
					ps = append(ps, netip.PrefixFrom(a, 32))
				}
			}
		}
		count := map[netip.Addr]bool{}
		for _, p := range ps {
			for a := p.Addr(); p.Contains(a); a = a.Next() {
				count[a] = true
			}
		}
		if got, want := covers(ps, b), len(count) == 256; got != want {
			t.Fatalf("seed %d: covers(%v) = %v, want %v", seed, ps, got, want)
		}
		if len(count) == 256 {
			covered++
		}
	}
	if covered < 50 || covered > 250 {
		t.Errorf("%d of 300 sets cover the /24: the test did not exercise both answers", covered)
	}
}

// TestHeadChangeJudgesKeptPeers: a delta that changes only the head (no
// peer named) still has every kept peer judged by the new head's rules: an
// approved route withdrawn that a kept peer routes, or made the host's own
// route while a kept peer claims it, is refused, with Intent's error; the
// last intent is left as it was; a head change that touches no peer's
// rules (the MTU) is patched, and equal to Intent's.
func TestHeadChangeJudgesKeptPeers(t *testing.T) {
	own := storetest.Key(0)
	base := func() *api.AgentState {
		st := &api.AgentState{Network: "n", Host: "me", Interface: "wg0", Revision: 1, Subnets: []string{"10.80.0.0/16"},
			Addresses: []string{"10.80.255.1/16"}, ApprovedRoutes: []string{"10.90.0.0/24", "10.91.0.0/24"}}
		for i := range 50 {
			st.Peers = append(st.Peers, api.Peer{Name: fmt.Sprintf("p%02d", i), PublicKey: storetest.Key(i + 1).String(),
				AllowedIPs: []string{fmt.Sprintf("10.80.0.%d/32", i+1)}})
		}
		st.Peers[37].AllowedIPs = append(st.Peers[37].AllowedIPs, "10.90.0.0/24")
		return st
	}
	for _, tc := range []struct {
		name string
		head func(*api.AgentState)
		want string // "": accepted
	}{
		{"approved route withdrawn", func(h *api.AgentState) { h.ApprovedRoutes = []string{"10.91.0.0/24"} }, "outside the network's subnets and approved routes"},
		{"made the host's own", func(h *api.AgentState) { h.Routes = []string{"10.90.0.0/24"} }, "overlaps this host's own routed subnets"},
		{"another MTU", func(h *api.AgentState) { h.MTU = 1380 }, ""},
		{"another route approved", func(h *api.AgentState) { h.ApprovedRoutes = append(h.ApprovedRoutes, "10.92.0.0/24") }, ""},
	} {
		prev := hold(base())
		h0, err := heldIntent(memo{}, prev, "/k", own, Allowed{})
		if err != nil {
			t.Fatal(err)
		}
		keep := intentJSON(h0)
		head := base()
		head.Peers = nil
		tc.head(head)
		got, err := prev.apply(&api.AgentDelta{From: 1, Revision: 2, Head: head})
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := Intent(got.Flat(), "/k", own)
		h, err := heldIntent(memo{prev, h0}, got, "/k", own, Allowed{})
		switch {
		case fmt.Sprint(err) != fmt.Sprint(wantErr):
			t.Errorf("%s: %v, Intent says %v", tc.name, err, wantErr)
		case tc.want != "" && (!errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want refused (%s)", tc.name, err, tc.want)
		case tc.want != "" && !slices.Equal(intentJSON(h0), keep):
			t.Errorf("%s: a refused state changed the last intent", tc.name)
		case tc.want == "" && (err != nil || !reflect.DeepEqual(h, want)):
			t.Errorf("%s: %v; the intent differs from Intent's", tc.name, err)
		}
	}
}
