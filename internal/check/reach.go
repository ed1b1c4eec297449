package check

import (
	"net/netip"

	"github.com/wgnet/wgnet/internal/netmodel"
)

// Reach answers whether host from reaches dst, an address of host to or of a
// subnet routed behind it, and through whom, as check sees the network: the
// network model of the configs (the same code the lab's explanations ask), with
// the routed subnets check infers. It reports false when a host is not in the
// set.
func Reach(in Input, from, to string, dst netip.Addr) (netmodel.Reach, bool) {
	n := newNetwork(in)
	for _, r := range n.routedSubnets() {
		m := r.owner.m
		m.Subnets = append(m.Subnets, r.prefix)
	}
	a, b := n.byName[from], n.byName[to]
	if a == nil || b == nil {
		return netmodel.Reach{}, false
	}
	return n.model.Reach(a.idx, b.idx, dst, nil), true
}
