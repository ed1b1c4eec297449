package lab

import (
	"fmt"
	"net/netip"
	"sort"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// newStack returns a gVisor stack like tun/netstack's: IPv4 and IPv6, TCP with SACK,
// UDP and ICMP. Forwarding starts off.
func newStack() (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        true,
	})
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("enable TCP SACK: %v", err)
	}
	return s, nil
}

func tcpipAddr(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.Unmap().AsSlice()) }

func netipAddr(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip
}

func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() || a.Is4In6() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

func protocolAddress(p netip.Prefix) tcpip.ProtocolAddress {
	return tcpip.ProtocolAddress{
		Protocol:          protoOf(p.Addr()),
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpipAddr(p.Addr()), PrefixLen: p.Bits()},
	}
}

func subnetOf(p netip.Prefix) tcpip.Subnet {
	return tcpip.AddressWithPrefix{Address: tcpipAddr(p.Addr()), PrefixLen: p.Bits()}.Subnet()
}

// route is one entry of a lab host's routing table.
type route struct {
	dst netip.Prefix
	nic tcpip.NICID
}

// setRoutes replaces the stack's table. gVisor picks the first match, so the table
// is ordered longest prefix first; on a tie the earlier entry wins, as the first
// `ip route add` of a prefix does on Linux.
// It returns the table as set.
func setRoutes(s *stack.Stack, routes []route) []route {
	sort.SliceStable(routes, func(i, j int) bool { return routes[i].dst.Bits() > routes[j].dst.Bits() })
	seen := make(map[netip.Prefix]bool)
	var table []tcpip.Route
	var out []route
	for _, r := range routes {
		p := r.dst.Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		table = append(table, tcpip.Route{Destination: subnetOf(p), NIC: r.nic})
		out = append(out, route{p, r.nic})
	}
	s.SetRouteTable(table)
	return out
}
