package lab

import (
	"encoding/binary"
	"net/netip"
	"sync"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/policy"
)

// A node filters what arrives over its tunnel, for itself, its subnets and
// what it relays, with the same compiled intent.Filter a real host's nftables
// table holds, evaluated by the same code (policy.Eval), and stateful as
// conntrack is: a packet of a flow the node has seen leave into the tunnel
// (a reply) or has accepted before passes, and so does an ICMP error about
// such a flow (path-MTU discovery keeps working). Nothing else is filtered.

// maxFlows bounds a node's flow table; when full it starts again.
const maxFlows = 1 << 16

// flow is a connection's identity as conntrack has it: protocol, addresses and
// ports (for ICMP echo: the identifier as the requester's port).
type flow struct {
	proto      uint8
	src, dst   netip.Addr
	sport, dpt uint16
}

func (f flow) reverse() flow { return flow{f.proto, f.dst, f.src, f.dpt, f.sport} }

// flows is a node's connection table.
type flows struct {
	mu sync.Mutex // guards seen
	// seen holds the flows seen leaving into the tunnel and those accepted from it.
	seen map[flow]bool
}

func (t *flows) add(f flow) {
	t.mu.Lock()
	if len(t.seen) >= maxFlows || t.seen == nil {
		t.seen = make(map[flow]bool)
	}
	t.seen[f] = true
	t.mu.Unlock()
}

// known reports whether f, or the flow it answers, has been seen.
func (t *flows) known(f flow) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen[f] || t.seen[f.reverse()]
}

// IP protocol numbers.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// packetInfo is what the filter reads of a packet.
type packetInfo struct {
	flow
	// inner is, for an ICMP error, the flow of the packet it is about.
	inner    flow
	hasInner bool
}

// policyPacket is the packet as policy.Eval takes it.
func (p packetInfo) policyPacket() policy.Packet {
	pp := policy.Packet{Src: p.src, Dst: p.dst, Proto: policy.Other}
	switch p.proto {
	case protoTCP:
		pp.Proto, pp.Port = policy.TCP, p.dpt
	case protoUDP:
		pp.Proto, pp.Port = policy.UDP, p.dpt
	case protoICMP, protoICMPv6:
		pp.Proto = policy.ICMP
	}
	return pp
}

// parsePacket reads addresses, protocol and ports of the IP packet b. IPv6
// extension headers are not followed (the protocol is then "other").
func parsePacket(b []byte, inner bool) (packetInfo, bool) {
	var p packetInfo
	var l4 []byte
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return p, false
		}
		p.proto = b[9]
		p.src, p.dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		if binary.BigEndian.Uint16(b[6:8])&0x1fff == 0 { // the first fragment has the ports
			l4 = b[ihl:]
		}
	case len(b) >= 40 && b[0]>>4 == 6:
		p.proto = b[6]
		p.src, p.dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
	default:
		return p, false
	}
	switch {
	case (p.proto == protoTCP || p.proto == protoUDP) && len(l4) >= 4:
		p.sport, p.dpt = binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
	case (p.proto == protoICMP || p.proto == protoICMPv6) && len(l4) >= 8:
		typ := l4[0]
		id := binary.BigEndian.Uint16(l4[4:6])
		request := typ == 8 && p.proto == protoICMP || typ == 128 && p.proto == protoICMPv6
		reply := typ == 0 && p.proto == protoICMP || typ == 129 && p.proto == protoICMPv6
		isErr := p.proto == protoICMP && (typ == 3 || typ == 4 || typ == 5 || typ == 11 || typ == 12) ||
			p.proto == protoICMPv6 && typ >= 1 && typ <= 4
		switch {
		case request:
			p.sport = id
		case reply:
			p.dpt = id
		case isErr && !inner:
			if in, ok := parsePacket(l4[8:], true); ok {
				p.inner, p.hasInner = in.flow, true
			}
		}
	}
	return p, true
}

// admit decides whether a packet that arrived over the tunnel goes on, and
// records the flows it accepts.
func (n *Node) admit(st *fwdState, b []byte) bool {
	f := st.filter
	if f == nil || !f.Enabled {
		return true
	}
	p, ok := parsePacket(b, false)
	if !ok {
		return false
	}
	if st.flows.known(p.flow) || p.hasInner && st.flows.known(p.inner) {
		return true
	}
	if !policy.Eval(f, p.policyPacket()).Accept {
		return false
	}
	st.flows.add(p.flow)
	return true
}

// track records the flow of a packet leaving into the tunnel, so that its
// replies pass.
func (n *Node) track(b []byte) {
	st := n.fwd.Load()
	if st == nil || st.filter == nil || !st.filter.Enabled {
		return
	}
	if p, ok := parsePacket(b, false); ok {
		st.flows.add(p.flow)
	}
}

// filterOf returns the filter a config asks for, nil for none.
func filterOf(cfg *intent.Host) *intent.Filter {
	if cfg == nil || !cfg.Firewall.Filter.Enabled {
		return nil
	}
	f := cfg.Firewall.Filter.Clone()
	return &f
}
