package intent

import "net/netip"

// Filter is the segmentation policy compiled for one host: which packets that
// arrive over the tunnel it accepts, for itself and its routed subnets (input),
// and which it relays between peers or into its routed subnets (forward). It
// never looks at traffic that does not enter through the WireGuard interface.
//
// Rules are tried in order; the first that matches decides, and Default decides
// when none does. Replies to accepted connections and ICMP errors related to
// them always pass (the filter is stateful), so path-MTU discovery keeps working.
// A zero Filter (Enabled false) filters nothing: today's behaviour, no policy.
type Filter struct {
	Enabled bool
	Rules   []FilterRule
	// DefaultAccept is the verdict when no rule matches.
	DefaultAccept bool
}

// FilterRule is one compiled policy rule, as the data plane and the lab apply it.
type FilterRule struct {
	// Accept: allow; otherwise drop.
	Accept bool
	// Src and Dst are the packet's source and destination prefixes; empty means
	// any address (of either family).
	Src, Dst []netip.Prefix
	// Proto is "" (any), "tcp", "udp" or "icmp" (ICMP for IPv4, ICMPv6 for IPv6).
	Proto string
	// Ports are destination port ranges (tcp and udp only); empty means any port.
	Ports []PortRange
	// Origin names the spec rule this came from ("policy.rules[2]: allow app ->
	// db tcp 5432"), for plans, explain and the lab's report.
	Origin string
}

// PortRange is an inclusive range of ports, From <= To.
type PortRange struct {
	From, To uint16
}

// Clone returns a deep copy of f.
func (f Filter) Clone() Filter {
	c := f
	if f.Rules != nil {
		c.Rules = make([]FilterRule, len(f.Rules))
		for i, r := range f.Rules {
			r.Src = append([]netip.Prefix(nil), r.Src...)
			r.Dst = append([]netip.Prefix(nil), r.Dst...)
			r.Ports = append([]PortRange(nil), r.Ports...)
			c.Rules[i] = r
		}
	}
	return c
}
