package api

import "net/netip"

// AgentRanges are the address ranges that are no one's on the internet
// (RFC 6890): private (RFC 1918, fc00::/7), shared (RFC 6598),
// benchmarking (RFC 2544) and documentation (RFC 5737, 3849). An agent
// takes a network's subnets and approved routes only inside them, unless
// its host's operator allowed public routes (or a full tunnel) at join:
// else a controller could route a host's traffic to 8.8.8.8, or to most of
// the internet in /8s, through a peer of its choosing. A controller warns of
// a network's routes outside them (wgnet check --controller).
var AgentRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("2001:db8::/32"),
}

// InAgentRanges reports whether all of p lies in one of AgentRanges.
func InAgentRanges(p netip.Prefix) bool {
	for _, r := range AgentRanges {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// NeverRouted are addresses no network routes through a tunnel, whatever
// its hosts allowed: "this network" (0.0.0.0/8, ::/128), link-local (where
// clouds serve their metadata, 169.254.169.254; fe80::/10), multicast and
// the reserved 240.0.0.0/4. An agent takes no route that overlaps one; a
// controller refuses such a route. Loopback is not among them: the kernel's
// local table answers 127.0.0.0/8 and ::1 before any route a tunnel adds.
// Nor are the IPv6 metadata addresses of AWS (fd00:ec2::254) and GCP
// (fd20:ce::254), inside fc00::/7 where overlay subnets live.
var NeverRouted = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"), netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/128"), netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// Unroutable returns the range of NeverRouted that p overlaps, if any.
func Unroutable(p netip.Prefix) (netip.Prefix, bool) {
	for _, r := range NeverRouted {
		if r.Overlaps(p) {
			return r, true
		}
	}
	return netip.Prefix{}, false
}
