package policy

import (
	"net/netip"
	"sync"

	"github.com/wgnet/wgnet/internal/intent"
)

// Most questions the compiler asks are about whole hosts: "may anything pass
// between this host's prefix and that one?". A host's prefix usually lies
// wholly inside or wholly outside each rule's sources and destinations, and
// then which rules can match depends on protocol and port only: the answer
// takes a pass over the rules per protocol and port class, instead of a walk
// over address classes. A prefix that a rule side cuts in part falls back to
// the exact walk (Allows).

// side is how a prefix lies in a rule's side.
type side uint8

const (
	outside side = iota
	inside
	partly
)

// membership is, per rule of Network.Filter, how a prefix lies in its
// sources and its destinations.
type membership struct {
	src, dst []side
	partial  bool // some side cuts the prefix: use the exact walk
}

// fastIndex caches memberships; its methods are safe for concurrent use.
type fastIndex struct {
	mu    sync.Mutex // guards byPfx
	byPfx map[netip.Prefix]*membership
	ports []uint16 // one port of each class of the rules' ports
}

func lies(ps []netip.Prefix, p netip.Prefix) side {
	if len(ps) == 0 {
		return inside // any
	}
	s := outside
	for _, q := range ps {
		if !q.Overlaps(p) {
			continue
		}
		if q.Bits() <= p.Bits() {
			return inside
		}
		s = partly
	}
	return s
}

func (n *Network) member(p netip.Prefix) *membership {
	x := &n.fast
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byPfx == nil {
		x.byPfx = make(map[netip.Prefix]*membership)
		x.ports = portReps(n.Filter.Rules)
	}
	if m, ok := x.byPfx[p]; ok {
		return m
	}
	m := &membership{src: make([]side, len(n.Filter.Rules)), dst: make([]side, len(n.Filter.Rules))}
	for i := range n.Filter.Rules {
		r := &n.Filter.Rules[i]
		m.src[i], m.dst[i] = lies(r.Src, p), lies(r.Dst, p)
		m.partial = m.partial || m.src[i] == partly || m.dst[i] == partly
	}
	x.byPfx[p] = m
	return m
}

// allowsPrefix reports whether the policy lets some packet pass from prefix a
// to prefix b.
func (n *Network) allowsPrefix(a, b netip.Prefix) bool {
	if a.Addr().Is4() != b.Addr().Is4() {
		return false
	}
	ma, mb := n.member(a), n.member(b)
	if ma.partial || mb.partial {
		_, ok := Allows(&n.Filter, []netip.Prefix{a}, []netip.Prefix{b})
		return ok
	}
	rules := n.Filter.Rules
	for _, proto := range []string{TCP, UDP, ICMP, Other} {
		ports := []uint16{0}
		if proto == TCP || proto == UDP {
			ports = n.fast.ports
		}
		for _, port := range ports {
			accept := n.Filter.DefaultAccept
			for i := range rules {
				if ma.src[i] == inside && mb.dst[i] == inside && protoMatch(&rules[i], proto, port) {
					accept = rules[i].Accept
					break
				}
			}
			if accept {
				return true
			}
		}
	}
	return false
}

func protoMatch(r *intent.FilterRule, proto string, port uint16) bool {
	return (r.Proto == "" || r.Proto == proto) && (len(r.Ports) == 0 || inPorts(r.Ports, port))
}
