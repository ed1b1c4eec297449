// Package ipam owns overlay address allocation: which addresses of a subnet a host
// may use, and the deterministic choice of the next free one. It is pure (no I/O,
// no randomness) and imports nothing of wgnet; spec and the commands use it.
//
// The rules, the same for allocation and for validating a hand-written address:
//
//   - A point-to-point subnet, an IPv4 /31 (RFC 3021) or an IPv6 /127 (RFC 6164),
//     holds exactly its two addresses, network and network+1, both usable: a
//     two-host site link.
//   - Otherwise the network address (host bits all zero) is never a host address.
//     In IPv6 it is the subnet-router anycast address (RFC 4291, section 2.6.1),
//     which RFC 6164 sets aside only on a /127.
//   - In IPv4 the broadcast address (host bits all one) is never a host address;
//     a /31 has none (RFC 3021). IPv6 has no broadcast address.
//   - A /32 or /128 holds only its network address and so has no usable address.
//   - Allocation starts at the lowest usable address (network+1, so .1 in IPv4 is
//     handed out first; the network address itself on a point-to-point subnet)
//     and takes the lowest usable address not already used, so the same inputs
//     always give the same address and freed addresses are reused, lowest first.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrFull is returned by Next when the subnet has no free usable address.
var ErrFull = errors.New("no free address")

// Next returns the lowest usable address of subnet that is not in used. Addresses
// in used that lie outside subnet are ignored. It returns an error wrapping ErrFull
// when every usable address is taken, and an error for an invalid subnet.
func Next(subnet netip.Prefix, used []netip.Addr) (netip.Addr, error) {
	if !subnet.IsValid() {
		return netip.Addr{}, fmt.Errorf("allocate address: invalid subnet")
	}
	subnet = subnet.Masked()
	taken := make(map[netip.Addr]bool, len(used))
	for _, a := range used {
		taken[normalize(subnet, a)] = true
	}
	// Each step either returns or passes a used address, so this loop runs at most
	// len(used)+2 times whatever the size of the subnet.
	start := subnet.Addr().Next()
	if PointToPoint(subnet) {
		start = subnet.Addr()
	}
	for a := start; a.IsValid() && subnet.Contains(a); a = a.Next() {
		if isBroadcast(subnet, a) {
			break
		}
		if !taken[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("allocate address in %s: %w", subnet, ErrFull)
}

// Check reports why a is not a usable host address of subnet, or nil if it is.
func Check(subnet netip.Prefix, a netip.Addr) error {
	subnet = subnet.Masked()
	switch {
	case !a.IsValid():
		return errors.New("invalid address")
	case a.Zone() != "":
		return fmt.Errorf("%s: an overlay address has no zone", a)
	case !subnet.Contains(a):
		return fmt.Errorf("%s is outside %s", a, subnet)
	case a == subnet.Addr() && !PointToPoint(subnet):
		if a.Is6() {
			return fmt.Errorf("%s is the network (subnet-router anycast) address of %s", a, subnet)
		}
		return fmt.Errorf("%s is the network address of %s", a, subnet)
	case isBroadcast(subnet, a):
		return fmt.Errorf("%s is the broadcast address of %s", a, subnet)
	}
	return nil
}

// Size returns the number of usable host addresses of subnet, saturating at
// 1<<62 for large IPv6 subnets.
func Size(subnet netip.Prefix) uint64 {
	if !subnet.IsValid() {
		return 0
	}
	hostBits := subnet.Addr().BitLen() - subnet.Bits()
	if hostBits >= 62 {
		return 1 << 62
	}
	if hostBits == 1 {
		return 2 // point to point: both addresses
	}
	n := uint64(1)<<hostBits - 1 // all but the network address
	if subnet.Addr().Is4() && hostBits >= 2 {
		n-- // broadcast
	}
	return n
}

// PointToPoint reports whether subnet is a two-address point-to-point subnet, an
// IPv4 /31 (RFC 3021) or an IPv6 /127 (RFC 6164), whose network address is a
// host address too.
func PointToPoint(subnet netip.Prefix) bool {
	return subnet.IsValid() && subnet.Bits() == subnet.Addr().BitLen()-1
}

// Broadcast returns the IPv4 broadcast address of subnet, and false for IPv6 and
// for /31 and /32, which have none.
func Broadcast(subnet netip.Prefix) (netip.Addr, bool) {
	if !subnet.IsValid() || !subnet.Addr().Is4() || subnet.Bits() > 30 {
		return netip.Addr{}, false
	}
	b := subnet.Masked().Addr().As4()
	hostBits := 32 - subnet.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= uint32(1)<<hostBits - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func isBroadcast(subnet netip.Prefix, a netip.Addr) bool {
	b, ok := Broadcast(subnet)
	return ok && a == b
}

// normalize makes an IPv4-mapped IPv6 address comparable with an IPv4 subnet's.
func normalize(subnet netip.Prefix, a netip.Addr) netip.Addr {
	if subnet.Addr().Is4() && a.Is4In6() {
		return a.Unmap()
	}
	return a.WithZone("")
}
