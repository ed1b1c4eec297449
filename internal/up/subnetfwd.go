package up

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/wgnet/wgnet/internal/hostnet"
)

// subnetForwarding returns the sysctls that let the host forward for its routed
// subnets, by key, and a note for each subnet it can't place. The kernel decides
// whether to forward a packet by the interface it came in on, so the tunnel's own
// switch (forwardingChanges) covers tunnel → subnet, and container → tunnel needs
// forwarding on the interface in front of the subnet: net.ipv4.conf.IF.forwarding,
// for IPv6 IF's force_forwarding where the kernel has it, else the global switch.
// The interface is the one the host's main table routes the subnet through (the
// most specific route covering it, and every route inside it), never the
// WireGuard interface name. Every key wanted is returned, set or not, so that a
// sync keeps what an earlier up turned on.
func subnetForwarding(h hostnet.HostNet, name string, subnets []netip.Prefix) (map[string]string, []string, error) {
	if len(subnets) == 0 {
		return nil, nil, nil
	}
	fronts, err := subnetFronts(h, name, subnets)
	if err != nil {
		return nil, nil, err
	}
	want := map[string]string{}
	var notes []string
	for _, s := range subnets {
		devs := fronts[s.Masked()]
		if len(devs) == 0 {
			notes = append(notes, fmt.Sprintf("routed subnet %s has no route on this host yet (a container bridge made later?): forwarding in front of it stays as it is; run `wgnet sync` once the route is there", s))
			continue
		}
		for _, dev := range devs {
			if s.Addr().Is4() {
				want["net/ipv4/conf/"+dev+"/forwarding"] = "1"
				continue
			}
			ff := "net/ipv6/conf/" + dev + "/force_forwarding"
			switch _, err := h.Sysctl(ff); {
			case err == nil:
				want[ff] = "1"
			case errors.Is(err, hostnet.ErrNotFound):
				want["net/ipv6/conf/all/forwarding"] = "1"
			default:
				return nil, nil, err
			}
		}
	}
	return want, notes, nil
}

// subnetFronts returns, for each subnet, the interfaces the main table routes it
// through (other than name): those of the most specific routes that cover the
// whole subnet and those of every route inside it. A default route does not
// count: a subnet reached only through it is not behind this host.
func subnetFronts(h hostnet.HostNet, name string, subnets []netip.Prefix) (map[netip.Prefix][]string, error) {
	links, err := h.Links()
	if err != nil {
		return nil, err
	}
	var routes []hostnet.Route
	for _, l := range links {
		if l.Name == name {
			continue
		}
		rs, err := h.Routes(l.Name, 0)
		if errors.Is(err, hostnet.ErrNotFound) {
			continue // gone since Links
		}
		if err != nil {
			return nil, err
		}
		routes = append(routes, rs...)
	}
	out := map[netip.Prefix][]string{}
	for _, s := range subnets {
		s = s.Masked()
		best := -1
		var covering, inside []string
		for _, r := range routes {
			d := r.Dst.Masked()
			switch {
			case d.Bits() == 0 || d.Addr().Is4() != s.Addr().Is4():
			case d.Bits() <= s.Bits() && d.Contains(s.Addr()):
				if d.Bits() > best {
					best, covering = d.Bits(), nil
				}
				if d.Bits() == best {
					covering = append(covering, r.Dev)
				}
			case d.Bits() > s.Bits() && s.Contains(d.Addr()):
				inside = append(inside, r.Dev)
			}
		}
		devs := append(covering, inside...)
		slices.Sort(devs)
		out[s] = slices.Compact(devs)
	}
	return out, nil
}
