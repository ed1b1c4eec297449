package controller

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/store"
)

// This file converts at the edge: api wire types <-> store types, and store
// types -> the spec the offline packages validate and compile.

func toAPINetwork(n store.Network) api.Network {
	out := api.Network{Name: n.Name, Topology: n.Topology, Hub: n.Hub, Revision: n.Revision, Subnets: []string{}}
	for _, p := range n.Subnets {
		out.Subnets = append(out.Subnets, p.String())
	}
	return out
}

func toAPIHost(h store.Host) api.Host {
	out := api.Host{Name: h.Name, PublicKey: h.PublicKey.String(), Endpoint: h.Endpoint, Keepalive: h.Keepalive, Hub: h.Hub, Tags: h.Tags,
		Settings: api.Settings{MTU: mtuText(h.MTU), DNS: h.DNS, Table: h.Table, FwMark: h.FwMark, External: h.External,
			NoAddress: h.AddressElsewhere, RandomPort: h.RandomPort}}
	for _, a := range h.Addresses {
		if bits, ok := h.AddressBits[a]; ok {
			out.Addresses = append(out.Addresses, netip.PrefixFrom(a, bits).String())
		} else {
			out.Addresses = append(out.Addresses, a.String())
		}
	}
	for _, p := range h.FullTunnel {
		out.FullTunnel = append(out.FullTunnel, p.String())
	}
	for _, p := range h.Routes {
		out.Routes = append(out.Routes, p.String())
	}
	for _, p := range h.PendingRoutes {
		out.PendingRoutes = append(out.PendingRoutes, p.String())
	}
	return out
}

func fromAPIHost(in api.Host) (store.Host, error) {
	h := store.Host{Name: in.Name, Endpoint: in.Endpoint, Keepalive: in.Keepalive, Hub: in.Hub, Tags: in.Tags,
		Settings: store.Settings{DNS: in.DNS, Table: in.Table, FwMark: in.FwMark, External: in.External,
			AddressElsewhere: in.NoAddress, RandomPort: in.RandomPort}}
	var err error
	if h.PublicKey, err = parsePublicKey(in.PublicKey); err != nil {
		return h, err
	}
	if h.Addresses, h.AddressBits, err = parseHostAddrs("addresses", in.Addresses); err != nil {
		return h, err
	}
	if h.MTU, err = parseMTU(in.MTU); err != nil {
		return h, err
	}
	if h.FullTunnel, err = parsePrefixes("full_tunnel", in.FullTunnel); err != nil {
		return h, err
	}
	h.Routes, err = parseRoutes("routes", in.Routes)
	return h, err
}

// parseHostAddrs reads a host's addresses, each alone or with its own
// prefix length ("10.8.0.2/32", kept in the bits returned).
func parseHostAddrs(field string, in []string) ([]netip.Addr, map[netip.Addr]int, error) {
	var out []netip.Addr
	var bits map[netip.Addr]int
	for _, s := range in {
		if !strings.Contains(s, "/") {
			a, err := parseAddrs(field, []string{s})
			if err != nil {
				return nil, nil, err
			}
			out = append(out, a...)
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, nil, badRequest{fmt.Errorf("%s: %q: not an IP address, nor one with a prefix length (10.8.0.2/32)", field, s)}
		}
		if bits == nil {
			bits = map[netip.Addr]int{}
		}
		out, bits[p.Addr()] = append(out, p.Addr()), p.Bits()
	}
	return out, bits, nil
}

// parseMTU reads a host's MTU as a spec has it: "" (the network's), a
// number, or auto (spec.MTUAuto); its range is spec validation's.
func parseMTU(s string) (int, error) {
	switch s {
	case "":
		return 0, nil
	case "auto":
		return spec.MTUAuto, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return 0, badRequest{fmt.Errorf("mtu %q: must be a number (%d-%d) or auto", s, spec.MinMTU, spec.MaxMTU)}
	}
	return v, nil
}

// mtuText is parseMTU's inverse.
func mtuText(mtu int) string {
	switch mtu {
	case 0:
		return ""
	case spec.MTUAuto:
		return "auto"
	}
	return strconv.Itoa(mtu)
}

func fromAPISetHost(in api.SetHost) (store.HostChanges, error) {
	c := store.HostChanges{Endpoint: in.Endpoint, Keepalive: in.Keepalive, Hub: in.Hub, ReplaceRoutes: in.ReplaceRoutes,
		AddTags: in.AddTags, RemoveTags: in.RemoveTags, DNS: in.DNS, Table: in.Table, FwMark: in.FwMark, External: in.External,
		AddressElsewhere: in.NoAddress, RandomPort: in.RandomPort}
	if in.MTU != nil {
		mtu, err := parseMTU(*in.MTU)
		if err != nil {
			return c, err
		}
		c.MTU = &mtu
	}
	if in.FullTunnel != nil {
		ft, err := parsePrefixes("full_tunnel", *in.FullTunnel)
		if err != nil {
			return c, err
		}
		c.FullTunnel = &ft
	}
	var err error
	if in.PublicKey != nil {
		k, err := parsePublicKey(*in.PublicKey)
		if err != nil {
			return c, err
		}
		c.PublicKey = &k
	}
	if c.Addresses, c.AddressBits, err = parseHostAddrs("addresses", in.Addresses); err != nil {
		return c, err
	}
	if c.Routes, err = parseRoutes("routes", in.Routes); err != nil {
		return c, err
	}
	c.RemoveRoutes, err = parsePrefixes("remove_routes", in.RemoveRoutes)
	return c, err
}

// toSpec is the network as a spec, for spec validation and the compiler,
// with its policy. Every host keeps its own key: the spec holds public keys
// only.
func toSpec(n store.Network, hosts []store.Host) (*spec.Spec, error) {
	s := &spec.Spec{Version: spec.Version, Network: n.Name, Subnets: n.Subnets, Topology: n.Topology, Hub: n.Hub}
	for _, h := range hosts {
		s.Hosts = append(s.Hosts, spec.Host{Name: h.Name, Endpoint: h.Endpoint, Addresses: h.Addresses,
			Routes: h.Routes, Keepalive: h.Keepalive, PublicKey: h.PublicKey, Tags: h.Tags,
			AddressBits: h.AddressBits, AddressElsewhere: h.AddressElsewhere, RandomPort: h.RandomPort, MTU: h.MTU,
			DNS: h.DNS, Table: h.Table, FwMark: h.FwMark, External: h.External, FullTunnel: h.FullTunnel})
	}
	var err error
	s.Policy, err = decodePolicy(n.Policy)
	return s, err
}
