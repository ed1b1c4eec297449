package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/importer"
	"github.com/wgnet/wgnet/internal/spec"
)

// importToController adopts the fleet that paths describe into a new network
// of a controller: public data only. The network is created, then its hosts
// are added (the hub first); if an add fails the network is deleted again, so
// nothing half-imported stays.
func importToController(c *cobra.Command, r *remoteFlags, name string, paths []string, format string) error {
	res, err := importFiles(name, paths)
	if err != nil {
		return err
	}
	hosts, notes, err := adoptable(res)
	if err != nil {
		return err
	}
	cl, err := r.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx := c.Context()
	if _, err := cl.CreateNetwork(ctx, api.CreateNetwork{Name: name, Subnets: strs(res.Spec.Subnets), Topology: res.Spec.Topology}); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	var rev uint64
	for _, h := range hosts {
		out, err := cl.AddHost(ctx, name, h)
		if err != nil {
			undo := "deleted it again"
			if derr := cl.DeleteNetwork(ctx, name); derr != nil {
				undo = fmt.Sprintf("could not delete it again (%v): delete it with wgnet network delete %s", derr, name)
			}
			return fmt.Errorf("import: host %s: %w; network %s was created and import %s", h.Name, err, name, undo)
		}
		rev = out.Revision
	}
	notes = append(located(res.Notes), notes...)
	if format == "json" {
		return report(c.OutOrStdout(), format, map[string]any{"controller": r.controller, "network": name,
			"hosts": len(hosts), "topology": res.Spec.Topology, "revision": rev, "notes": notes}, "")
	}
	for _, n := range notes {
		fmt.Fprintln(c.ErrOrStderr(), "wgnet: import:", n)
	}
	w := c.OutOrStdout()
	fmt.Fprintf(w, "adopted %d hosts (%s) into network %s of %s at revision %d; no private or preshared key was sent\n",
		len(hosts), res.Spec.Topology, name, r.controller, rev)
	fmt.Fprintf(w, "each host joins with its own key: wgnet token create %s --host HOST, then on HOST: wgnet agent join TOKEN --key-file KEYFILE\n", name)
	return nil
}

// adoptable turns an imported spec into the hosts a controller network holds
// (the hub first), with a note for everything it cannot carry: a controller
// holds public data only and never sends hooks.
func adoptable(res *importer.Result) ([]api.Host, []string, error) {
	sp := res.Spec
	var notes []string
	note := func(format string, a ...any) { notes = append(notes, fmt.Sprintf(format, a...)) }
	if sp.Interface != "" && sp.Interface != spec.DefaultInterface {
		note("interface %s not carried: agents name the interface themselves", sp.Interface)
	}
	if sp.ListenPort != 0 && sp.ListenPort != spec.DefaultListenPort {
		note("listen port %d not carried: each agent declares its own with its endpoint", sp.ListenPort)
	}
	if len(sp.PresharedKeys) > 0 {
		note("%d preshared keys not carried: they would pass through the controller, so agent mode offers none", len(sp.PresharedKeys))
	}
	var hosts []api.Host
	for _, h := range sp.Hosts {
		if h.External && len(h.Addresses) == 0 {
			note("host %s not carried: it is external (no file of the fleet is for it) with no overlay address, and the controller would give it one", h.Name)
			continue
		}
		key := h.PublicKey
		if key.IsZero() {
			priv, ok := res.Secrets.PrivateKeys[h.Name]
			if !ok {
				return nil, nil, fmt.Errorf("import: host %s: no public key", h.Name)
			}
			key = priv.Public()
		}
		a := api.Host{Name: h.Name, PublicKey: key.String(), Endpoint: h.Endpoint, Keepalive: h.Keepalive, Tags: h.Tags,
			Addresses: hostAddrs(h), Routes: strs(h.Routes), Hub: sp.Topology == spec.TopologyHub && h.Name == sp.Hub,
			Settings: api.Settings{DNS: h.DNS, Table: h.Table, FwMark: h.FwMark, FullTunnel: strs(h.FullTunnel),
				External: h.External, NoAddress: h.AddressElsewhere, RandomPort: h.RandomPort}}
		// The network's MTU, when not the controller's, becomes each host's own.
		switch mtu := h.MTU; {
		case mtu == 0 && sp.MTU != 0 && sp.MTU != spec.DefaultMTU:
			a.MTU = strconv.Itoa(sp.MTU)
			if sp.MTU == spec.MTUAuto {
				a.MTU = "auto"
			}
		case mtu == spec.MTUAuto:
			a.MTU = "auto"
		case mtu > 0:
			a.MTU = strconv.Itoa(mtu)
		}
		hostNotes(h, note)
		if a.Hub {
			hosts = append([]api.Host{a}, hosts...)
		} else {
			hosts = append(hosts, a)
		}
	}
	return hosts, notes, nil
}

// hostNotes notes what of one host a controller network does not carry:
// hooks (never sent to a host) and what is about the host's local setup.
func hostNotes(h spec.Host, note func(string, ...any)) {
	var lost []string
	if n := len(h.Hooks.PreUp) + len(h.Hooks.PostUp) + len(h.Hooks.PreDown) + len(h.Hooks.PostDown); n > 0 {
		lost = append(lost, fmt.Sprintf("%d hooks (a controller never sends commands to hosts)", n))
	}
	if h.ListenPort != 0 {
		lost = append(lost, fmt.Sprintf("listen port %d", h.ListenPort))
	}
	if h.UnderlayMTU != 0 {
		lost = append(lost, fmt.Sprintf("underlay MTU %d", h.UnderlayMTU))
	}
	if len(lost) > 0 {
		note("host %s: not carried: %s", h.Name, strings.Join(lost, "; "))
	}
}

// hostAddrs are h's addresses as the API takes them, each with its own
// prefix length when it has one.
func hostAddrs(h spec.Host) []string {
	out := make([]string, len(h.Addresses))
	for i, a := range h.Addresses {
		out[i] = a.String()
		if bits, ok := h.AddressBits[a]; ok {
			out[i] = netip.PrefixFrom(a, bits).String()
		}
	}
	return out
}

// strs renders addresses or prefixes as strings.
func strs[T fmt.Stringer](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = v.String()
	}
	return out
}
