// Package intent is the typed description of what one host's WireGuard interface
// should be: its key (inline, or a file on the host), port, MTU, addresses, peers,
// the subnets routed behind it, forwarding per family, wgnet's firewall rules and
// the user's own hooks as opaque commands. It is the exchange type between the
// compiler (which emits it), wg-quick files (one rendering of it, and one way to
// read it: see FromConfig), the data plane (up, sync) and the lab.
//
// Nothing here is shell text that another package parses back: the reader in
// wgquick.go is the only place in wgnet that recognises the hook forms wgnet
// writes (forwarding sysctls, `wg set %i private-key PATH`).
//
// It imports only wgconf and wgkey; it must not import spec, compile, the data
// plane or the lab.
package intent

import (
	"net/netip"
	"slices"

	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Host is what one host's interface should be.
type Host struct {
	// Name is the host's name in its network (or the config's label); it is not
	// the interface name, which the caller chooses.
	Name string
	// Comments explain the rendered file (the compiler's header first).
	Comments []string

	// PrivateKey is the interface's key when wgnet holds it; zero when KeyFile
	// names it, or when the key is set by other means.
	PrivateKey wgkey.Private
	// KeyFile is the path, on the host, of a file holding the private key: data,
	// never shell. It satisfies wgkey.ValidPath.
	KeyFile string

	// ListenPort is nil when wg may pick one.
	ListenPort *uint16
	FwMark     uint32
	MTU        int // 0: automatic, as wg-quick works it out
	Addresses  []netip.Prefix
	Table      string // wg-quick's Table: "" (auto), off, main, or a number
	DNS        []string
	SaveConfig bool

	// Peers are the interface's peers, as WireGuard takes them.
	Peers []wgconf.Peer

	// Routes are the subnets routed behind this host (from the spec): they are
	// reached through it, not through its tunnel.
	Routes []netip.Prefix
	// Forward says in which families the host relays packets that arrive on the
	// tunnel (a hub, or a host with routed subnets).
	Forward Forwarding
	// Firewall is what wgnet's own nftables table for the interface holds.
	Firewall Firewall
	// HostFirewall is the user's opt-in to opening the host's own forward
	// firewall (Docker's DOCKER-USER, iptables' FORWARD) for overlay traffic:
	// "" (leave it alone), "auto", "docker" or "iptables"; see package dockerfw.
	HostFirewall string

	// Hooks are the user's own commands, run by `bash -c` as wg-quick runs them,
	// with %i replaced by the interface name. wgnet never looks inside them.
	Hooks Hooks

	// Pos is where the host was read from (a wg-quick file); zero otherwise.
	Pos wgconf.Pos
}

// Forwarding is IP forwarding from the WireGuard interface, per family. wgnet
// turns it on as narrowly as the kernel allows and restores it on down.
type Forwarding struct {
	V4, V6 bool
}

// Any reports whether the host forwards in some family.
func (f Forwarding) Any() bool { return f.V4 || f.V6 }

// Firewall is the content of wgnet's nftables table for the interface.
type Firewall struct {
	// ClampMSS clamps the TCP MSS of forwarded connections to the route's MTU.
	ClampMSS bool
	// Filter is the segmentation policy for traffic arriving over the tunnel.
	Filter Filter
}

// Empty reports whether the table would hold nothing.
func (f Firewall) Empty() bool { return !f.ClampMSS && !f.Filter.Enabled }

// Hooks are wg-quick's PreUp, PostUp, PreDown and PostDown commands.
type Hooks struct {
	PreUp, PostUp, PreDown, PostDown []string
}

// Clone returns a deep copy of h.
func (h *Host) Clone() *Host {
	c := *h
	c.Comments = slices.Clone(h.Comments)
	if h.ListenPort != nil {
		p := *h.ListenPort
		c.ListenPort = &p
	}
	c.Addresses = slices.Clone(h.Addresses)
	c.DNS = slices.Clone(h.DNS)
	c.Peers = make([]wgconf.Peer, len(h.Peers))
	for i, p := range h.Peers {
		c.Peers[i] = p
		c.Peers[i].AllowedIPs = slices.Clone(p.AllowedIPs)
		c.Peers[i].Comments = slices.Clone(p.Comments)
		if p.Endpoint != nil {
			e := *p.Endpoint
			c.Peers[i].Endpoint = &e
		}
	}
	c.Routes = slices.Clone(h.Routes)
	c.Firewall.Filter = h.Firewall.Filter.Clone()
	c.Hooks = Hooks{
		PreUp:    slices.Clone(h.Hooks.PreUp),
		PostUp:   slices.Clone(h.Hooks.PostUp),
		PreDown:  slices.Clone(h.Hooks.PreDown),
		PostDown: slices.Clone(h.Hooks.PostDown),
	}
	return &c
}

// Peer returns the peer with public key k.
func (h *Host) Peer(k wgkey.Key) (*wgconf.Peer, bool) {
	for i := range h.Peers {
		if h.Peers[i].PublicKey == k {
			return &h.Peers[i], true
		}
	}
	return nil, false
}
