package controller

import (
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
	out := api.Host{Name: h.Name, PublicKey: h.PublicKey.String(), Endpoint: h.Endpoint, Keepalive: h.Keepalive, Hub: h.Hub, Tags: h.Tags}
	for _, a := range h.Addresses {
		out.Addresses = append(out.Addresses, a.String())
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
	h := store.Host{Name: in.Name, Endpoint: in.Endpoint, Keepalive: in.Keepalive, Hub: in.Hub, Tags: in.Tags}
	var err error
	if h.PublicKey, err = parsePublicKey(in.PublicKey); err != nil {
		return h, err
	}
	if h.Addresses, err = parseAddrs("addresses", in.Addresses); err != nil {
		return h, err
	}
	h.Routes, err = parsePrefixes("routes", in.Routes)
	return h, err
}

func fromAPISetHost(in api.SetHost) (store.HostChanges, error) {
	c := store.HostChanges{Endpoint: in.Endpoint, Keepalive: in.Keepalive, Hub: in.Hub, ReplaceRoutes: in.ReplaceRoutes,
		AddTags: in.AddTags, RemoveTags: in.RemoveTags}
	var err error
	if in.PublicKey != nil {
		k, err := parsePublicKey(*in.PublicKey)
		if err != nil {
			return c, err
		}
		c.PublicKey = &k
	}
	if c.Addresses, err = parseAddrs("addresses", in.Addresses); err != nil {
		return c, err
	}
	if c.Routes, err = parsePrefixes("routes", in.Routes); err != nil {
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
			Routes: h.Routes, Keepalive: h.Keepalive, PublicKey: h.PublicKey, Tags: h.Tags})
	}
	var err error
	s.Policy, err = decodePolicy(n.Policy)
	return s, err
}
