package policy

import (
	"net/netip"
	"slices"

	"github.com/wgnet/wgnet/internal/intent"
)

// Questions over sets of packets ("may anything pass from A to B?", "can rule 5
// ever decide?") are answered exactly by trying one packet of each class: two
// addresses that lie in the same prefixes of every rule, and two ports in the
// same ranges, get the same verdict from every rule, so one representative of
// each class stands for all of them.

// everything is the whole address space of both families.
var everything = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// reps returns one address of each class of the addresses in within (nil:
// every address), where a class is the set of prefixes of cuts that contain
// the address: for each prefix of within and each cut inside one, an address
// of it that lies in no cut further inside.
func reps(within, cuts []netip.Prefix) []netip.Addr {
	if within == nil {
		within = everything
	}
	var out []netip.Addr
	for _, w := range within {
		for _, p := range append([]netip.Prefix{w}, innerAll(w, cuts)...) {
			if a, ok := freeAddr(p, innerAll(p, cuts)); ok {
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// innerAll returns every distinct prefix of cuts strictly inside w.
func innerAll(w netip.Prefix, cuts []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cuts {
		if w.Overlaps(c) && c.Bits() > w.Bits() {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

// freeAddr returns an address of p in none of subs, if there is one.
func freeAddr(p netip.Prefix, subs []netip.Prefix) (netip.Addr, bool) {
	var in []netip.Prefix
	for _, s := range subs {
		if s.Overlaps(p) {
			if s.Bits() <= p.Bits() {
				return netip.Addr{}, false // s holds all of p
			}
			in = append(in, s)
		}
	}
	if len(in) == 0 {
		return p.Addr(), true
	}
	lo, hi := halves(p)
	if a, ok := freeAddr(lo, in); ok {
		return a, true
	}
	return freeAddr(hi, in)
}

// halves splits p into its two halves.
func halves(p netip.Prefix) (lo, hi netip.Prefix) {
	bits := p.Bits() + 1
	lo = netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().AsSlice()
	i := p.Bits() / 8
	b[i] |= 0x80 >> (p.Bits() % 8)
	a, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(a, bits)
}

// portReps returns one port of each class of the ports of ranges.
func portReps(rules []intent.FilterRule) []uint16 {
	out := []uint16{0}
	for _, r := range rules {
		for _, pr := range r.Ports {
			out = append(out, pr.From)
			if pr.To < 65535 {
				out = append(out, pr.To+1)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// cuts returns every prefix the rules use, plus extra.
func cuts(rules []intent.FilterRule, extra ...[]netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, r := range rules {
		out = append(out, r.Src...)
		out = append(out, r.Dst...)
	}
	for _, e := range extra {
		out = append(out, e...)
	}
	return out
}

// packets calls fn with one packet of each class from src to dst (nil: every
// address) until fn returns true, and reports whether it did.
func packets(rules []intent.FilterRule, src, dst []netip.Prefix, fn func(Packet) bool) bool {
	c := cuts(rules, src, dst)
	ports := portReps(rules)
	for _, s := range reps(src, c) {
		for _, d := range reps(dst, c) {
			if s.Is4() != d.Is4() {
				continue
			}
			for _, proto := range []string{TCP, UDP, ICMP, Other} {
				ps := []uint16{0}
				if proto == TCP || proto == UDP {
					ps = ports
				}
				for _, port := range ps {
					if fn(Packet{Src: s, Dst: d, Proto: proto, Port: port}) {
						return true
					}
				}
			}
		}
	}
	return false
}

// Allows reports whether f lets some packet from src to dst pass (nil: every
// address), and one such packet.
func Allows(f *intent.Filter, src, dst []netip.Prefix) (Packet, bool) {
	var found Packet
	ok := packets(f.Rules, src, dst, func(p Packet) bool {
		if Eval(f, p).Accept {
			found = p
			return true
		}
		return false
	})
	return found, ok
}

// CanTalk reports whether the policy lets some packet pass between a and b,
// in either direction.
func (n *Network) CanTalk(a, b []netip.Prefix) bool {
	if !n.Present {
		return true
	}
	for _, p := range a {
		for _, q := range b {
			if n.allowsPrefix(p, q) || n.allowsPrefix(q, p) {
				return true
			}
		}
	}
	return false
}

// Reaches reports whether the policy lets some packet pass from a to b.
func (n *Network) Reaches(a, b []netip.Prefix) bool {
	if !n.Present {
		return true
	}
	for _, p := range a {
		for _, q := range b {
			if n.allowsPrefix(p, q) {
				return true
			}
		}
	}
	return false
}
