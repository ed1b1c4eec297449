// Package spec owns the network description, wgnet.yaml: its types, loading with
// line-numbered errors, validation, comment-preserving edits, and the secrets
// directory beside it (private and preshared keys, never in the spec), and the
// lock that serialises edits of both (LockSpec).
// It imports wgkey, wgconf (for endpoint syntax), ipam (usable addresses),
// atomicfile, trust and inputfile (the capped reader) only; it must not import
// compile, lab or any data plane.
package spec

import (
	"net/netip"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// Version is the spec format version this build reads and writes.
const Version = 1

// Topology names.
const (
	TopologyHub  = "hub"
	TopologyMesh = "mesh"
)

// Defaults applied when the spec leaves a field out.
const (
	DefaultInterface  = "wg0"
	DefaultListenPort = 51820
	DefaultMTU        = 1420 // 1500-byte underlay minus 80
)

// MTUAuto is an mtu of "auto" (network or host): the rendered config has no MTU
// line, and wg-quick (or wgnet up) works it out from the route to the endpoints
// minus 80, as for a wg-quick file without one.
const MTUAuto = -1

// Spec is a whole network. Field comments give the YAML key.
type Spec struct {
	Version    int            // version
	Network    string         // network: a name, [a-z0-9][a-z0-9_.-]*
	Subnets    []netip.Prefix // subnets: overlay subnets, at most one IPv4 and one IPv6
	Interface  string         // interface: default wg0, must match ^[a-zA-Z0-9_=+.-]{1,15}$
	ListenPort int            // listen_port: default 51820
	MTU        int            // mtu: 0 = smallest host underlay_mtu minus 80, else 1420; MTUAuto = "auto"
	Topology   string         // topology: hub | mesh
	Hub        string         // hub: the hub host's name (topology hub)
	Hosts      []Host         // hosts
	// PresharedKeys lists host pairs whose peering uses a preshared key (the keys
	// themselves are in the secrets directory).
	PresharedKeys []Pair // preshared_keys: [[a, b], ...]
	// Policy is who may reach whom (policy.go); zero when the spec has none.
	Policy Policy // policy

	// Source says where the spec was read from, so that problems can name the line.
	// Added by the spec package (not a YAML key); zero for a spec built in code.
	Source Source
}

// Source records the file a spec was parsed from and the line of each field.
type Source struct {
	File string
	// Lines maps a field path as problems name it ("network", "subnets[1]",
	// "hosts[2].endpoint", "hosts[2].address[0]", "preshared_keys[0]") to its
	// 1-based line.
	Lines map[string]int
}

// Host is one server of the network.
type Host struct {
	Name string // name
	// Endpoint is where others reach this host: "host:port" or "[v6]:port"; empty
	// when the host can't be dialled (behind NAT).
	Endpoint  string       // endpoint
	Addresses []netip.Addr // address: overlay address(es), one per subnet family
	// AddressBits holds the prefix length of an address written with one
	// ("10.8.0.2/32"): its rendered Address keeps that length. An address
	// without one (the usual) takes its overlay subnet's. Nil when none has one.
	AddressBits map[netip.Addr]int
	// AddressElsewhere (assign_address: false) leaves the addresses out of the
	// rendered config and off the interface: something else assigns them, as
	// for a `wg showconf` file. Peers still route the addresses to the host,
	// and the host may then have none.
	AddressElsewhere bool
	Routes           []netip.Prefix // routes: subnets routed behind this host (containers, sites)
	Keepalive        int            // keepalive: seconds; set for hosts behind NAT
	PublicKey        wgkey.Key      // public_key: zero = derived from the secrets directory
	ListenPort       int            // listen_port: 0 = the network's
	// RandomPort (listen_port: random) leaves ListenPort out of the rendered
	// config, so that wg picks a port when the interface is made, as for a
	// VPN client's file without one. Only for a host nobody dials (no endpoint).
	RandomPort  bool
	UnderlayMTU int // underlay_mtu: 0 = unknown (1500 assumed)
	// MTU is the host's own tunnel MTU: 0 = the network's, MTUAuto = automatic
	// (no MTU line), else the value.
	MTU int // mtu
	// DNS are the resolvers and search domains its config's DNS = line holds
	// (wg-quick hands them to resolvconf while the interface is up).
	DNS []string // dns
	// Table is wg-quick's Table: "" (auto), off, main, a number or an
	// rt_tables name.
	Table string // table
	// FwMark is the firewall mark of the tunnel's own packets; 0 = none.
	FwMark uint32 // fwmark
	// External (external: true) is a peer wgnet writes no config for: a VPN
	// provider's server, a host another tool manages. The others peer with it
	// as with any host; it needs public_key and may have no address.
	External bool // external
	// FullTunnel lists the default routes (0.0.0.0/0, ::/0) a spoke sends
	// through the hub: all its traffic of that family, as a VPN client does.
	FullTunnel []netip.Prefix // full_tunnel
	// PrivateKeyFile is set when the host keeps its own private key: the path of the
	// key on that host, read by a PostUp hook. Default when PublicKey is given
	// without a private key in the secrets directory: /etc/wireguard/IFACE.key.
	PrivateKeyFile string // private_key_file
	Hooks          Hooks  // hooks
	// Tags name the host in policy groups (tag:TAG).
	Tags []string // tags
	// HostFirewall opts in to wgnet opening the host's own forward firewall for
	// the overlay: "auto", "docker" or "iptables" (see docs/docker.md); "" or
	// "off" leaves it alone.
	HostFirewall string // host_firewall
	// Line is the line of the host's entry in the spec file (0 when not loaded from a file).
	Line int
}

// Hooks are extra wg-quick hooks carried into the host's config verbatim.
type Hooks struct {
	PreUp    []string // pre_up
	PostUp   []string // post_up
	PreDown  []string // pre_down
	PostDown []string // post_down
}

// Pair is an unordered pair of host names; Key returns them sorted.
type Pair [2]string

// Key returns the pair with names sorted, for use as a map key.
func (p Pair) Key() Pair {
	if p[1] < p[0] {
		return Pair{p[1], p[0]}
	}
	return p
}

// Secrets are the keys the spec refers to but never holds.
type Secrets struct {
	// PrivateKeys by host name; a host without one keeps its own key.
	PrivateKeys map[string]wgkey.Private
	// PresharedKeys by sorted pair.
	PresharedKeys map[Pair]wgkey.Key
}

// HostByName returns the host called name.
func (s *Spec) HostByName(name string) (*Host, bool) {
	for i := range s.Hosts {
		if s.Hosts[i].Name == name {
			return &s.Hosts[i], true
		}
	}
	return nil, false
}

// ListenPortOf returns the port h listens on.
func (s *Spec) ListenPortOf(h *Host) int {
	if h.ListenPort != 0 {
		return h.ListenPort
	}
	if s.ListenPort != 0 {
		return s.ListenPort
	}
	return DefaultListenPort
}

// InterfaceName returns the interface name, defaulted.
func (s *Spec) InterfaceName() string {
	if s.Interface != "" {
		return s.Interface
	}
	return DefaultInterface
}

// EffectiveMTU returns the network MTU: the explicit mtu (0 for "auto"), else
// the smallest host underlay_mtu minus 80, else DefaultMTU.
func (s *Spec) EffectiveMTU() int {
	if s.MTU == MTUAuto {
		return 0
	}
	if s.MTU != 0 {
		return s.MTU
	}
	min := 0
	for _, h := range s.Hosts {
		if h.UnderlayMTU != 0 && (min == 0 || h.UnderlayMTU < min) {
			min = h.UnderlayMTU
		}
	}
	if min == 0 {
		return DefaultMTU
	}
	return min - 80
}

// MTUOf returns the MTU of h's rendered config, 0 meaning automatic (no MTU
// line): its own mtu, else the network's (EffectiveMTU).
func (s *Spec) MTUOf(h *Host) int {
	switch {
	case h.MTU == MTUAuto:
		return 0
	case h.MTU != 0:
		return h.MTU
	}
	return s.EffectiveMTU()
}

// AddressPrefix returns address a of h with the prefix length its rendered
// Address carries: its own (AddressBits), else its overlay subnet's, so that
// Address = 192.168.100.10/24 gives the host a connected route to the overlay.
func (s *Spec) AddressPrefix(h *Host, a netip.Addr) netip.Prefix {
	if bits, ok := h.AddressBits[a]; ok {
		return netip.PrefixFrom(a, bits)
	}
	for _, p := range s.Subnets {
		if p.Contains(a) {
			return netip.PrefixFrom(a, p.Bits())
		}
	}
	return netip.PrefixFrom(a, a.BitLen())
}
