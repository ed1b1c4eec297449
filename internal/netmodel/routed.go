package netmodel

import (
	"net/netip"
	"runtime"
	"slices"
	"sync"

	"github.com/wgnet/wgnet/internal/prefixset"
)

// Routed is one AllowedIPs entry that routes a subnet: a prefix that is not a
// default route, holds no host's address and is not a single address inside an
// overlay subnet (that is a host address gone wrong, not a subnet).
type Routed struct {
	Prefix netip.Prefix // masked
	Via    int          // the host whose config has the entry
	Peer   int          // the entry's peer, an index into Via's Peers
	Entry  int          // the entry, an index into that peer's AllowedIPs
	// Owner is the host the subnet ends at: the host the peer stands for,
	// unless that host's own config sends the subnet, or parts of it, on to a
	// peer other than Via (then it relays it, as a hub does or a site
	// aggregating subnets); -1 when unknown. A wider entry in the owner's
	// config does not count (its own, more specific routes win for its own
	// subnet), nor do parts sent back to Via (that only says the two overlap).
	Owner int
}

// IsSubnet reports whether q, in some peer's AllowedIPs, routes a subnet: not a
// default route, holding no host's address, and not a single address inside an
// overlay subnet (that is a host address gone wrong).
func (n *Network) IsSubnet(q netip.Prefix) bool {
	q = q.Masked()
	if q.Bits() == 0 {
		return false
	}
	if lo, hi := n.addrs.Within(q); lo < hi {
		return false // holds a host's address
	}
	return !n.overlayAddr(q)
}

// overlayAddr reports whether q is a single address inside an overlay subnet.
func (n *Network) overlayAddr(q netip.Prefix) bool {
	return q.IsSingleIP() && slices.ContainsFunc(n.overlay, func(o netip.Prefix) bool { return o.Contains(q.Addr()) })
}

// RoutedSubnets infers which subnets sit behind which host, which configs do
// not say: it returns every AllowedIPs entry that routes a subnet, in host,
// peer and entry order, with the host it ends at. to resolves peer j of host h
// to the index of the host it stands for (-1: none); nil means by key (Peer.To).
// check and the lab both ask it.
//
// to is called from several goroutines at once: it must only read.
func (n *Network) RoutedSubnets(to func(h, peer int) int) []Routed {
	if to == nil {
		to = func(h, j int) int { return n.Hosts[h].Peers[j].To }
	}
	// Each host's entries are its own: found on every core, a run of hosts
	// each, and joined in host order.
	workers := min(runtime.GOMAXPROCS(0), len(n.Hosts))
	parts := make([][]Routed, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for hi := w * len(n.Hosts) / workers; hi < (w+1)*len(n.Hosts)/workers; hi++ {
				parts[w] = n.routedVia(parts[w], hi, to)
			}
		})
	}
	wg.Wait()
	return slices.Concat(parts...)
}

// routedVia appends to out the entries of host hi that route a subnet, in
// peer and entry order. It asks IsSubnet's question of the host's table, one
// walk along it and the sorted host addresses (prefixset.Holding), rather than
// a search for each entry: in a mesh nearly every entry holds an address.
func (n *Network) routedVia(out []Routed, hi int, to func(h, peer int) int) []Routed {
	h := n.Hosts[hi]
	t := h.Table
	holding := prefixset.Holding(t, n.addrs)
	var found []Route
	var prefix []netip.Prefix // of each found, by its Seq
	entries := 0
	for i := range t.Len() {
		vs := t.Values(i)
		entries += len(vs)
		if holding[i] {
			continue
		}
		if q := t.Prefix(i); q.Bits() != 0 && !n.overlayAddr(q) {
			for _, r := range vs {
				found = append(found, r)
				for len(prefix) <= r.Seq {
					prefix = append(prefix, netip.Prefix{})
				}
				prefix[r.Seq] = q
			}
		}
	}
	if entries != h.entries {
		return n.routedViaEntries(out, hi, to) // an invalid prefix, which the table leaves out
	}
	slices.SortFunc(found, func(a, b Route) int { return a.Seq - b.Seq }) // file order
	for _, r := range found {
		q := prefix[r.Seq]
		m := Routed{Prefix: q, Via: hi, Peer: r.Peer, Entry: r.Entry, Owner: -1}
		if o := to(hi, r.Peer); o >= 0 && !n.relays(o, q, hi, to) {
			m.Owner = o
		}
		out = append(out, m)
	}
	return out
}

// routedViaEntries is routedVia entry by entry, each asked of IsSubnet.
func (n *Network) routedViaEntries(out []Routed, hi int, to func(h, peer int) int) []Routed {
	h := n.Hosts[hi]
	for j := range h.Peers {
		for e, q := range h.Peers[j].AllowedIPs {
			q = q.Masked()
			if !n.IsSubnet(q) {
				continue
			}
			r := Routed{Prefix: q, Via: hi, Peer: j, Entry: e, Owner: -1}
			if o := to(hi, j); o >= 0 && !n.relays(o, q, hi, to) {
				r.Owner = o
			}
			out = append(out, r)
		}
	}
	return out
}

// relays reports whether host h's own config sends q, or parts of it, on to a
// peer that stands for a host other than from.
func (n *Network) relays(h int, q netip.Prefix, from int, to func(h, peer int) int) bool {
	t := n.Hosts[h].Table
	lo, hi := t.Within(q)
	for i := lo; i < hi; i++ {
		for _, r := range t.Values(i) {
			if to(h, r.Peer) != from {
				return true
			}
		}
	}
	return false
}
