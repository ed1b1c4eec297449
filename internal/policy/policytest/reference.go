// Package policytest holds the naive reference of policy semantics that the
// compiled filters (package policy) and the lab's packet filter are checked
// against: it reads the spec's rules directly, packet by packet, with none of
// the compiler's resolution, narrowing or normalization.
package policytest

import (
	"math/rand/v2"
	"net/netip"
	"path"
	"slices"

	"github.com/wgnet/wgnet/internal/policy"
	"github.com/wgnet/wgnet/internal/spec"
)

// Reference returns whether the policy of s lets packet p pass, and the index
// of the deciding rule (-1: the default). Without a policy everything passes.
func Reference(s *spec.Spec, p policy.Packet) (accept bool, rule int) {
	if !s.Policy.Present {
		return true, -1
	}
	for i, r := range s.Policy.Rules {
		if r.Proto != "" && r.Proto != p.Proto {
			continue
		}
		if len(r.Ports) > 0 && !slices.ContainsFunc(r.Ports, func(pr spec.PortRange) bool { return p.Port >= pr.From && p.Port <= pr.To }) {
			continue
		}
		if in(s, r.From, p.Src) && in(s, r.To, p.Dst) {
			return r.Allow, i
		}
	}
	return s.Policy.Default != spec.Deny, -1
}

// in reports whether address a is one that term t names.
func in(s *spec.Spec, t spec.Term, a netip.Addr) bool {
	switch t.Kind {
	case spec.TermAny:
		return true
	case spec.TermPrefix:
		return t.Prefix.Contains(a)
	case spec.TermName:
		for _, g := range s.Policy.Groups {
			if g.Name == t.Name {
				return slices.ContainsFunc(g.Members, func(m spec.Term) bool { return in(s, m, a) })
			}
		}
	}
	for i := range s.Hosts {
		h := &s.Hosts[i]
		named := false
		switch t.Kind {
		case spec.TermName:
			named = h.Name == t.Name
		case spec.TermTag:
			named = slices.Contains(h.Tags, t.Name)
		case spec.TermPattern:
			named, _ = path.Match(t.Name, h.Name)
		}
		if named && owns(h, a) {
			return true
		}
	}
	return false
}

// owns reports whether a is one of h's addresses or in one of its routes.
func owns(h *spec.Host, a netip.Addr) bool {
	return slices.Contains(h.Addresses, a) || slices.ContainsFunc(h.Routes, func(r netip.Prefix) bool { return r.Contains(a) })
}

// RandomPacket returns a packet between addresses near the network's: in a
// prefix of pool (with random host bits) or, one time in ten, anywhere; both
// of one family. Its protocol is tcp, udp, icmp or other, and a tcp or udp
// port is one of ports or any.
func RandomPacket(r *rand.Rand, pool []netip.Prefix, ports []uint16) policy.Packet {
	p := policy.Packet{Src: randomAddr(r, pool), Proto: []string{policy.TCP, policy.UDP, policy.ICMP, policy.Other}[r.IntN(4)]}
	for p.Dst = randomAddr(r, pool); p.Dst.Is4() != p.Src.Is4(); {
		p.Dst = randomAddr(r, pool) // an IP packet has one family
	}
	if p.Proto == policy.TCP || p.Proto == policy.UDP {
		p.Port = uint16(r.IntN(65536))
		if i := r.IntN(len(ports) + 1); i < len(ports) {
			p.Port = ports[i]
		}
	}
	return p
}

func randomAddr(r *rand.Rand, pool []netip.Prefix) netip.Addr {
	if r.IntN(10) == 0 {
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if r.IntN(2) == 0 {
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		return netip.AddrFrom16(b)
	}
	p := pool[r.IntN(len(pool))]
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		if r.IntN(2) == 0 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
