package lab

import (
	"net/netip"

	"github.com/wgnet/wgnet/internal/intent"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// The node forwards packets itself instead of turning on gVisor's forwarding,
// whose IPv4 path reads the TTL through a header slice into memory it has just
// released (DeepCopyForForwarding un-shares the chunk); the race detector sees
// it. What a Linux host does is simple enough to do here, in the open:
//
//   - A packet for one of the host's addresses is delivered to its stack
//     (weak host model: whichever interface it came in on).
//   - Any other packet is forwarded only if the interface it came in on
//     forwards: the tunnel as the config's PostUp says, a subnet's bridge always.
//     TTL/hop limit is decremented; at 1 the packet is dropped, as ip_forward does.
//   - The route is the longest matching prefix of the host's table (connected
//     Address prefixes, AllowedIPs routes wg-quick adds, the subnets'); none: dropped.
//     A packet routed back into the tunnel meets WireGuard's cryptokey routing.

// fwdState is what the router reads for every packet; replaced whole on change.
type fwdState struct {
	local      map[netip.Addr]bool
	routes     []route // longest prefix first
	links      map[tcpip.NICID]*veth
	fwd4, fwd6 bool // on the tunnel interface
	// filter is the config's packet filter for what arrives over the tunnel
	// (nil: none), flows its connection table (filter.go).
	filter *intent.Filter
	flows  *flows
}

func (s *fwdState) lookup(dst netip.Addr) (tcpip.NICID, bool) {
	for _, r := range s.routes {
		if r.dst.Contains(dst) {
			return r.nic, true
		}
	}
	return 0, false
}

// ipDst returns the destination address of the IP packet p.
func ipDst(p []byte) (netip.Addr, bool) {
	switch {
	case len(p) >= header.IPv4MinimumSize && p[0]>>4 == 4:
		return netip.AddrFrom4([4]byte(p[16:20])), true
	case len(p) >= header.IPv6MinimumSize && p[0]>>4 == 6:
		return netip.AddrFrom16([16]byte(p[24:40])), true
	}
	return netip.Addr{}, false
}

// decTTL decrements the TTL or hop limit of p in place; false: the packet must
// not be forwarded.
func decTTL(p []byte) bool {
	switch p[0] >> 4 {
	case 4:
		h := header.IPv4(p)
		if h.TTL() <= 1 || !h.IsValid(len(p)) {
			return false
		}
		h.SetTTL(h.TTL() - 1)
		h.SetChecksum(0)
		h.SetChecksum(^h.CalculateChecksum())
		return true
	case 6:
		h := header.IPv6(p)
		if h.HopLimit() <= 1 {
			return false
		}
		h.SetHopLimit(h.HopLimit() - 1)
		return true
	}
	return false
}

// fromTunnel handles a packet WireGuard decrypted (p is only valid during the call).
func (n *Node) fromTunnel(p []byte) {
	st := n.fwd.Load()
	if st != nil && !n.admit(st, p) {
		return // the policy drops it
	}
	dst, ok := ipDst(p)
	if !ok || st == nil || st.local[dst] {
		n.tun.inject(p)
		return
	}
	if dst.Is4() && !st.fwd4 || dst.Is6() && !st.fwd6 {
		return // not forwarding: dropped, as the kernel would
	}
	n.forward(st, p, dst)
}

// fromSubnet handles a packet from a subnet's stand-in (its bridge forwards).
func (n *Node) fromSubnet(p []byte) {
	st := n.fwd.Load()
	dst, ok := ipDst(p)
	if !ok || st == nil {
		return
	}
	if st.local[dst] {
		n.tun.inject(p) // the host's addresses all sit on the tunnel NIC
		return
	}
	n.forward(st, p, dst)
}

func (n *Node) forward(st *fwdState, p []byte, dst netip.Addr) {
	nic, ok := st.lookup(dst)
	if !ok {
		return // no route to host
	}
	cp := append([]byte(nil), p...)
	if !decTTL(cp) {
		return
	}
	if nic == tunNIC {
		n.tun.send(cp)
	} else if link := st.links[nic]; link != nil {
		link.send(cp)
	}
}
