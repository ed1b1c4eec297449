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
