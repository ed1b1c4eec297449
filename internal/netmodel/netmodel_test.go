package netmodel

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// slowLookup is the cryptokey lookup done the obvious way: every entry of
// every peer, the longest prefix holding a, the last one set on a tie,
// self-peers skipped.
func slowLookup(h *Host, a netip.Addr) (int, netip.Prefix, bool) {
	best, bits := -1, -1
	var bq netip.Prefix
	for i, p := range h.Input.Peers {
		if !h.Key.IsZero() && p.PublicKey == h.Key {
			continue
		}
		for _, q := range p.AllowedIPs {
			if q.Masked().Contains(a) && q.Bits() >= bits {
				best, bits, bq = i, q.Bits(), q.Masked()
			}
		}
	}
	return best, bq, best >= 0
}

// slowResolve resolves peer j of host i the obvious way.
func slowResolve(in []Input, i, j int) Peer {
	k := in[i].Peers[j].PublicKey
	p := Peer{To: -1, DupOf: -1}
	if !in[i].Key.IsZero() && k == in[i].Key {
		p.Self = true
		return p
	}
	for e := 0; e < j; e++ {
		if q := in[i].Peers[e].PublicKey; q == k && (in[i].Key.IsZero() || q != in[i].Key) {
			p.DupOf = e
			return p
		}
	}
	for o := range in {
		if !in[o].Key.IsZero() && in[o].Key == k {
			p.To = o
			return p
		}
	}
	return p
}

func randomNetwork(r *rand.Rand) []Input {
	keys := make([]wgkey.Key, 6)
	for i := range keys {
		keys[i][0], keys[i][1] = byte(i+1), 7
	}
	prefix := func() netip.Prefix {
		a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(8))})
		return netip.PrefixFrom(a, []int{0, 8, 16, 22, 24, 30, 32}[r.IntN(7)])
	}
	in := make([]Input, 1+r.IntN(5))
	for i := range in {
		if r.IntN(5) > 0 {
			in[i].Key = keys[r.IntN(len(keys))]
		}
		in[i].Addresses = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 24)}
		for range r.IntN(5) {
			var p wgconf.Peer
			p.PublicKey = keys[r.IntN(len(keys))]
			for range r.IntN(4) {
				p.AllowedIPs = append(p.AllowedIPs, prefix())
			}
			in[i].Peers = append(in[i].Peers, p)
		}
	}
	return in
}

// TestAgainstSlow checks resolution by key and the cryptokey lookup against
// the obvious versions on random networks.
func TestAgainstSlow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		in := randomNetwork(r)
		n := New(in)
		for i, h := range n.Hosts {
			for j := range h.Peers {
				want, got := slowResolve(in, i, j), h.Peers[j]
				if got.To != want.To || got.Self != want.Self || got.DupOf != want.DupOf {
					t.Fatalf("network %d host %d peer %d: got to=%d self=%v dup=%d, want to=%d self=%v dup=%d",
						iter, i, j, got.To, got.Self, got.DupOf, want.To, want.Self, want.DupOf)
				}
			}
			for range 20 {
				a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(8))})
				if r.IntN(10) == 0 {
					a = netip.AddrFrom4([4]byte{192, 168, 0, 1})
				}
				wp, wq, wok := slowLookup(h, a)
				gp, gq, gok := h.Lookup(a)
				if wp != gp || wq != gq || wok != gok {
					t.Fatalf("network %d host %d lookup %s: got %d %s %v, want %d %s %v", iter, i, a, gp, gq, gok, wp, wq, wok)
				}
			}
		}
	}
}

// TestRoutedSubnetsTable: RoutedSubnets, which asks each host's table, finds
// what asking IsSubnet entry by entry finds, in the same order, on random
// networks with host addresses (/32), overlay /31s, default routes, now and
// then an invalid prefix, and repeated entries.
func TestRoutedSubnetsTable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	total, fallbacks := 0, 0
	for iter := range 2000 {
		in := randomNetwork(r)
		for i := range in {
			if r.IntN(3) == 0 {
				in[i].Addresses = append(in[i].Addresses, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 3, byte(i)}), 31))
			}
			for j := range in[i].Peers {
				if r.IntN(20) == 0 {
					in[i].Peers[j].AllowedIPs = append(in[i].Peers[j].AllowedIPs, netip.Prefix{})
				}
			}
		}
		n := New(in)
		got := n.RoutedSubnets(nil)
		var want []Routed
		for hi := range n.Hosts {
			want = n.routedViaEntries(want, hi, func(h, j int) int { return n.Hosts[h].Peers[j].To })
		}
		if len(got) != len(want) {
			t.Fatalf("network %d: %d routed entries, want %d:\n%v\n%v", iter, len(got), len(want), got, want)
		}
		for k := range got {
			if got[k] != want[k] {
				t.Fatalf("network %d: entry %d: %+v, want %+v", iter, k, got[k], want[k])
			}
		}
		total += len(got)
		for _, h := range n.Hosts {
			if h.Table.Len() > 0 && slices.ContainsFunc(h.Input.Peers, func(p wgconf.Peer) bool { return slices.Contains(p.AllowedIPs, netip.Prefix{}) }) {
				fallbacks++
			}
		}
	}
	if total < 1000 || fallbacks < 50 {
		t.Fatalf("only %d routed entries, %d hosts with an invalid prefix: the random networks test little", total, fallbacks)
	}
}
