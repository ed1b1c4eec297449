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
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/store/storetest"
)

// TestGuardDefaultInParts: an agent never takes a default route however
// the controller splits it, in a whole state and in a delta onto a good one
// (the patched path), whatever its host allowed at join. A subnet of
// 0.0.0.0/0, ::/0 or 128.0.0.0/1, or an overlay address whose prefix is /0,
// /1 or wider than its subnet, refuses the state; approved routes wider than
// /8 (0.0.0.0/1 and 128.0.0.0/1) or over ranges no tunnel routes (256 /8s:
// 0/8, 169/8, 224/8 and up) are not taken, nor the peers' prefixes inside
// them, and the rest of the state is. A /8 subnet stays accepted; a public
// approved route is taken only with --allow public-routes; mapped and
// unmasked prefixes are refused always.
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
	everyAllowance := []Allowed{{}, {PublicRoutes: true}, {FullTunnel: true}, {PublicRoutes: true, FullTunnel: true}}
	cases := []struct {
		name string
		head func(*api.AgentState)
		peer []string // p00's allowed IPs
		want string   // refused so; "": taken without the peer's prefixes but 10.80.0.1/32
	}{
		{"approved /1 pair", func(s *api.AgentState) { s.ApprovedRoutes = []string{"0.0.0.0/1", "128.0.0.0/1"} },
			[]string{"0.0.0.0/1", "10.80.0.1/32", "128.0.0.0/1"}, ""},
		{"approved ::/1 pair", func(s *api.AgentState) { s.ApprovedRoutes = []string{"::/1", "8000::/1"} },
			[]string{"10.80.0.1/32", "::/1", "8000::/1"}, ""},
		{"approved 8.0.0.0/7", func(s *api.AgentState) { s.ApprovedRoutes = []string{"8.0.0.0/7"} },
			[]string{"8.0.0.0/7", "10.80.0.1/32"}, ""},
		{"subnet 0.0.0.0/0", func(s *api.AgentState) { s.Subnets = append(s.Subnets, "0.0.0.0/0") },
			[]string{"0.0.0.0/1", "128.0.0.0/1"}, "which no tunnel routes"},
		{"subnet ::/0", func(s *api.AgentState) { s.Subnets = append(s.Subnets, "::/0") },
			[]string{"::/1", "8000::/1"}, "which no tunnel routes"},
		{"subnet 128.0.0.0/1", func(s *api.AgentState) { s.Subnets = append(s.Subnets, "128.0.0.0/1") },
			[]string{"128.0.0.0/1"}, "which no tunnel routes"},
		{"subnet 8.0.0.0/7", func(s *api.AgentState) { s.Subnets = append(s.Subnets, "8.0.0.0/7") },
			[]string{"8.0.0.0/7"}, "wider than /8"},
		{"address /0", func(s *api.AgentState) { s.Addresses = []string{"10.80.255.1/0"} }, nil, "outside the network's subnets"},
		{"address /1", func(s *api.AgentState) { s.Addresses = []string{"10.80.255.1/1"} }, nil, "outside the network's subnets"},
		{"address /15", func(s *api.AgentState) { s.Addresses = []string{"10.80.255.1/15"} }, nil, "outside the network's subnets"},
	}
	only := []netip.Prefix{netip.MustParsePrefix("10.80.0.1/32")}
	for _, tc := range cases {
		next := good()
		next.Revision = 2
		tc.head(next)
		if tc.peer != nil {
			next.Peers[0].AllowedIPs = tc.peer
		}
		judge := func(how string, h *intent.Host, err error) {
			t.Helper()
			switch {
			case tc.want != "" && (!errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s, %s: %v, want refused (%s)", tc.name, how, err, tc.want)
			case tc.want == "" && (err != nil || !slices.Equal(h.Peers[0].AllowedIPs, only)):
				t.Errorf("%s, %s: %v, p00's allowed IPs %v; want %v", tc.name, how, err, allowedOf(h), only)
			}
		}
		for _, al := range everyAllowance {
			h, err := al.Intent(next, "/k", own)
			judge(fmt.Sprintf("whole state, allowed %+v", al), h, err)
			// The same as a delta onto the good state the agent holds.
			prev := hold(good())
			h0, err := heldIntent(memo{}, prev, "/k", own, al)
			if err != nil {
				t.Fatal(err)
			}
			head := *next
			head.Peers = nil
			got, err := prev.apply(&api.AgentDelta{From: 1, Revision: 2, Head: &head, Peers: []api.Peer{next.Peers[0]}})
			if err != nil {
				t.Fatal(err)
			}
			h, err = heldIntent(memo{prev, h0}, got, "/k", own, al)
			judge(fmt.Sprintf("delta, allowed %+v", al), h, err)
		}
	}
	// 256 approved /8s, a peer routing three of them: with public routes
	// allowed, the public one only (11/8); without, none.
	st := good()
	st.ApprovedRoutes = eights
	st.Peers[0].AllowedIPs = []string{"0.0.0.0/8", "10.80.0.1/32", "11.0.0.0/8", "224.0.0.0/8"}
	for al, want := range map[Allowed]int{{}: 1, {PublicRoutes: true}: 2} {
		if h, err := al.Intent(st, "/k", own); err != nil || len(h.Peers[0].AllowedIPs) != want {
			t.Errorf("256 approved /8s, allowed %+v: %v, %v; want %d taken", al, err, allowedOf(h), want)
		}
	}
	// Public address space, without --allow public-routes: the approved
	// route is not taken, nor a peer's prefix inside it (the rest of the
	// state is), in a whole state and in a delta; with it, taken (one
	// public /24, or 220 public /8s: not all of a family).
	var public8s, global6 []string
	for i := 1; i < 224; i++ {
		if i != 10 && i != 127 && i != 169 && i != 203 {
			public8s = append(public8s, fmt.Sprintf("%d.0.0.0/8", i))
		}
	}
	for i := 0x20; i < 0x40; i++ {
		global6 = append(global6, fmt.Sprintf("%x00::/8", i))
	}
	mine := []string{"10.80.0.1/32"}
	for _, ps := range [][]string{{"8.8.8.0/24"}, public8s, global6, {"2a00::/8"}} {
		st := good()
		st.ApprovedRoutes = append(slices.Clone(ps), "10.90.0.0/24")
		st.Peers[0].AllowedIPs = append(append(slices.Clone(ps), mine...), "10.90.0.0/24")
		want := []netip.Prefix{netip.MustParsePrefix("10.80.0.1/32"), netip.MustParsePrefix("10.90.0.0/24")}
		h, err := Intent(st, "/k", own)
		if err != nil || !slices.Equal(h.Peers[0].AllowedIPs, want) {
			t.Errorf("approved %v: %v, %v; want p00's allowed IPs %v", ps[:min(len(ps), 3)], err, allowedOf(h), want)
		}
		prev := hold(good())
		h0, _ := heldIntent(memo{}, prev, "/k", own, Allowed{})
		head := *st
		head.Peers = nil
		got, err := prev.apply(&api.AgentDelta{From: 1, Revision: 2, Head: &head, Peers: []api.Peer{st.Peers[0]}})
		if err != nil {
			t.Fatal(err)
		}
		if h, err := heldIntent(memo{prev, h0}, got, "/k", own, Allowed{}); err != nil || !slices.Equal(h.Peers[0].AllowedIPs, want) {
			t.Errorf("approved %v, delta: %v, %v; want p00's allowed IPs %v", ps[:min(len(ps), 3)], err, allowedOf(h), want)
		}
		if h, err := (Allowed{PublicRoutes: true}).Intent(st, "/k", own); err != nil || len(h.Peers[0].AllowedIPs) != len(ps)+2 {
			t.Errorf("approved %v with --allow public-routes: %v, %v", ps[:min(len(ps), 3)], err, allowedOf(h))
		}
	}
	// Never taken, whatever is allowed: an approved route over link-local
	// (169.254.169.254, the clouds' metadata), multicast, 0.0.0.0/8,
	// 240.0.0.0/4, fe80::/10, ff00::/8; a subnet there is refused.
	for _, r := range []string{"169.254.169.254/32", "224.0.0.0/8", "0.0.0.0/8", "240.0.0.0/8", "fe80::/64", "ff02::/16"} {
		st := good()
		st.ApprovedRoutes = []string{r}
		st.Peers[0].AllowedIPs = []string{r, "10.80.0.1/32"}
		for _, al := range []Allowed{{}, {PublicRoutes: true}, {PublicRoutes: true, FullTunnel: true}} {
			if h, err := al.Intent(st, "/k", own); err != nil || len(h.Peers[0].AllowedIPs) != 1 {
				t.Errorf("approved %s, allowed %+v: %v, %v; want taken without it", r, al, err, allowedOf(h))
			}
		}
		st = good()
		st.Subnets = append(st.Subnets, r)
		if _, err := (Allowed{PublicRoutes: true, FullTunnel: true}).Intent(st, "/k", own); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "which no tunnel routes") {
			t.Errorf("subnet %s: %v, want refused", r, err)
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
	wide := good()
	wide.Subnets = []string{"10.0.0.0/8", "fd00::/8"}
	wide.Addresses = []string{"10.80.255.1/8"}
	wide.Peers[1].AllowedIPs = []string{"10.0.0.0/8", "fd00::/8"}
	if _, err := Intent(wide, "/k", own); err != nil {
		t.Errorf("a /8 network: %v", err)
	}
	for _, rs := range [][]string{{"0.0.0.0/1", "128.0.0.0/1"}, {"0.0.0.0/7"}, {"::/1", "8000::/1"}, eights, {"169.254.169.254/32"}, {"ff02::/16"}} {
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

// allowedOf is the first peer's allowed IPs of h, for messages.
func allowedOf(h *intent.Host) []netip.Prefix {
	if h == nil || len(h.Peers) == 0 {
		return nil
	}
	return h.Peers[0].AllowedIPs
}
