package netmodel

import (
	"math/rand/v2"
	"net/netip"
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
