package up

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// slowRoutes is wg-quick's add_route as it reads: a prefix is skipped when any
// main-table route through the interface covers it, the routes added before it
// included.
func slowRoutes(p *plan, existing []netip.Prefix) []netip.Prefix {
	if p.noRoutes {
		return nil
	}
	var out []netip.Prefix
	have := slices.Clone(existing)
	for _, a := range p.allowed {
		if p.autoTable && slices.ContainsFunc(have, func(r netip.Prefix) bool {
			return r.Addr().BitLen() == a.Addr().BitLen() && r.Bits() <= a.Bits() && r.Contains(a.Addr())
		}) {
			continue
		}
		out = append(out, a)
		have = append(have, a)
	}
	return out
}

// TestRoutesAgainstSlow checks plan.routes against the obvious version on
// random allowed IPs (nested, overlapping, both families) and interface prefixes.
func TestRoutesAgainstSlow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	prefix := func() netip.Prefix {
		if r.IntN(4) == 0 {
			a := netip.AddrFrom16([16]byte{0xfd, 0, byte(r.IntN(4)), byte(r.IntN(4)), 15: byte(r.IntN(8))})
			return netip.PrefixFrom(a, []int{32, 48, 64, 128}[r.IntN(4)]).Masked()
		}
		a := netip.AddrFrom4([4]byte{10, byte(r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(8))})
		return netip.PrefixFrom(a, []int{8, 16, 24, 30, 32}[r.IntN(5)]).Masked()
	}
	for i := range 2000 {
		p := &plan{autoTable: i%5 != 0, table: 0}
		seen := map[netip.Prefix]bool{}
		for range r.IntN(30) {
			if a := prefix(); !seen[a] {
				seen[a] = true
				p.allowed = append(p.allowed, a)
			}
		}
		sortLongestFirst(p.allowed)
		var existing []netip.Prefix
		for range r.IntN(3) {
			existing = append(existing, prefix())
		}
		if got, want := p.routes(existing), slowRoutes(p, existing); !slices.Equal(got, want) {
			t.Fatalf("allowed %v, existing %v:\nroutes %v\nslow   %v", p.allowed, existing, got, want)
		}
	}
}
