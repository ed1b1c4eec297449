package check

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// checkAllowedIPsPairwise is checkAllowedIPs as it was before prefixset: every
// two AllowedIPs entries of a config compared, O(n²). Kept as the obvious
// version the fast one must agree with, and as the benchmark's baseline.
func (n *network) checkAllowedIPsPairwise(owned []routed) {
	type key struct {
		prefix netip.Prefix
		owner  *host
	}
	isOwned := map[key]bool{}
	for _, r := range owned {
		isOwned[key{r.prefix, r.owner}] = true
	}
	ownedBy := func(q netip.Prefix, h *host) bool { return isOwned[key{q, h}] }
	for _, h := range n.hosts {
		var es []entry
		for _, p := range h.peers {
			if p.self {
				continue // wg ignores it
			}
			for i, q := range p.p.AllowedIPs {
				es = append(es, entry{p, q.Masked(), p.aipLine(i), 0})
			}
		}
		samePeer := func(a, b entry) bool {
			return a.p == b.p || a.p.p.PublicKey == b.p.p.PublicKey // dup-peer's
		}
		routeOverlap := func(a, b entry) bool {
			return a.p.to != nil && b.p.to != nil && a.p.to != b.p.to &&
				ownedBy(a.q, a.p.to) && ownedBy(b.q, b.p.to)
		}
		done := map[netip.Prefix]bool{}
		for i, e := range es {
			if done[e.q] {
				continue
			}
			var same []entry
			for _, o := range es[i+1:] {
				if o.q == e.q && !samePeer(e, o) && !routeOverlap(e, o) &&
					!slices.ContainsFunc(same, func(s entry) bool { return samePeer(s, o) }) {
					same = append(same, o)
				}
			}
			for _, o := range es[i+1:] {
				if o.q == e.q && !samePeer(e, o) {
					h.dups[e.q] = true
				}
			}
			if len(same) > 0 {
				done[e.q] = true
				last := same[len(same)-1]
				losers := []string{e.p.label()}
				for _, s := range same[:len(same)-1] {
					losers = append(losers, s.p.label())
				}
				n.report(CodeDupAllowedIP, h.file, last.line, []*host{h},
					"%s is in AllowedIPs of %s and %s: wg keeps it only on the last one set, %s, silently (`wg show` gives the other no route for it); remove it from all but one",
					e.q, strings.Join(losers, ", "), last.p.label(), last.p.label())
			}
		}
		for i, a := range es {
			for _, b := range es[i+1:] {
				if a.q == b.q || !a.q.Overlaps(b.q) || samePeer(a, b) || routeOverlap(a, b) ||
					a.q.Bits() == 0 || b.q.Bits() == 0 { // default routes: default-route's

					continue
				}
				long, short := a, b
				if b.q.Bits() > a.q.Bits() {
					long, short = b, a
				}
				n.report(CodeOverlapAllowedIP, h.file, b.line, []*host{h},
					"%s of %s overlaps %s of %s: %s gets %s (longest prefix), %s the rest of %s",
					b.q, b.p.label(), a.q, a.p.label(), long.p.label(), long.q, short.p.label(), short.q)
			}
		}
	}
}

// lookupLinear is host.lookup as it was before prefixset: every entry scanned.
func (h *host) lookupLinear(a netip.Addr) (*peer, netip.Prefix) {
	var best *peer
	var bestQ netip.Prefix
	for _, p := range h.peers {
		if p.self {
			continue // wg ignores it
		}
		for _, q := range p.p.AllowedIPs {
			q = q.Masked()
			if q.Contains(a) && (best == nil || q.Bits() >= bestQ.Bits()) {
				best, bestQ = p, q
			}
		}
	}
	return best, bestQ
}

// randomNetwork builds n hosts whose peers (some with the host's own key, some
// twice, some unknown) have AllowedIPs from a small space, so that prefixes
// repeat, nest and overlap often.
func randomNetwork(r *rand.Rand, n int) []*wgconf.Config {
	key := func(i int) wgkey.Private { return testPriv(fmt.Sprint("r", i)) }
	prefix := func() netip.Prefix {
		a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(256))})
		if r.IntN(5) == 0 {
			return netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 15: byte(r.IntN(256))}), 120+r.IntN(9))
		}
		bits := 22 + r.IntN(11)
		if r.IntN(15) == 0 {
			bits = r.IntN(22)
		}
		return netip.PrefixFrom(a, bits)
	}
	cfgs := make([]*wgconf.Config, n)
	for i := range cfgs {
		c := &wgconf.Config{Name: fmt.Sprint("r", i)}
		c.Interface.PrivateKey = key(i)
		c.Interface.Addresses = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(256))}), 22)}
		for k := r.IntN(2 * n); k > 0; k-- {
			p := wgconf.Peer{PublicKey: key(r.IntN(n + 2)).Public()}
			for m := r.IntN(6); m > 0; m-- {
				p.AllowedIPs = append(p.AllowedIPs, prefix())
			}
			if r.IntN(3) == 0 {
				p.Endpoint = &wgconf.Endpoint{Host: prefix().Addr().String(), Port: 51820}
			}
			c.Peers = append(c.Peers, p)
		}
		cfgs[i] = c
	}
	return cfgs
}

// TestAgainstPairwise checks the prefixset versions of the AllowedIPs checks
// and of the routing lookup against the obvious ones on random networks: the
// same findings (codes, lines, messages) and the same routes.
func TestAgainstPairwise(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 12))
	for round := 0; round < 300; round++ {
		cfgs := randomNetwork(r, 1+r.IntN(6))
		fast, slow := newNetwork(Input{Configs: cfgs}), newNetwork(Input{Configs: cfgs})
		owned := fast.routedSubnets()
		fast.findings = nil
		fast.checkAllowedIPs(owned)
		slow.checkAllowedIPsPairwise(slow.routedSubnets())
		slow.findings = slices.DeleteFunc(slow.findings, func(f diag.Diagnostic) bool {
			return f.Code != CodeDupAllowedIP && f.Code != CodeOverlapAllowedIP
		})
		if diff := cmp.Diff(sortFindings(slow.findings), sortFindings(fast.findings), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round %d: findings (-pairwise +prefixset):\n%s", round, diff)
		}
		for i, h := range fast.hosts {
			if diff := cmp.Diff(slow.hosts[i].dups, h.dups); diff != "" {
				t.Fatalf("round %d: %s: dups (-pairwise +prefixset):\n%s", round, h.name, diff)
			}
			for k := 0; k < 50; k++ {
				a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(256))})
				if k%5 == 0 {
					a = netip.AddrFrom16([16]byte{0xfd, 15: byte(r.IntN(256))})
				}
				gp, gq := h.lookup(a)
				wp, wq := h.lookupLinear(a)
				if gp != wp || gq != wq {
					t.Fatalf("round %d: %s: lookup(%s) = %v %s, want %v %s", round, h.name, a, gp, gq, wp, wq)
				}
			}
		}
	}
}
