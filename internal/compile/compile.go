// Package compile turns a spec into every host's intent (package intent): keys,
// peers, addresses, routed subnets, forwarding and firewall as typed data, which
// the data plane applies and wg-quick files render. It is a pure function of its
// inputs: no I/O, no clock, no randomness; output is sorted and deterministic. It
// imports spec, intent, wgconf and wgkey; nothing below the command and lab
// layers imports it.
package compile

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/policy"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Header is how every compiled config names itself in its first comment, so
// that wgnet can tell its own files from others.
func Header(host, network string) string {
	return fmt.Sprintf("wgnet: host %s of network %s", host, network)
}

// DefaultPrivateKeyFile is where a host that keeps its own key holds it, unless
// the spec says otherwise.
func DefaultPrivateKeyFile(iface string) string { return "/etc/wireguard/" + iface + ".key" }

// Compile returns every host's intent, sorted by host name. The hosts share
// read-only parts (a peer's AllowedIPs and Endpoint are the same in every config
// that lists it): Clone a host before changing it. The spec should have
// passed spec validation; Compile still refuses, with every reason, what it cannot
// compile (a host with no key at all, a missing preshared key). It is Prepare
// and every host's peers (network.go).
func Compile(s *spec.Spec, sec spec.Secrets) ([]intent.Host, error) {
	n, err := Prepare(s, sec)
	if err != nil {
		return nil, err
	}
	// Each host's peers are its own: built on every core (a 1,000-host mesh
	// is a million peers).
	c := n.c
	built := make([][]wgconf.Peer, len(c.hosts))
	c.each(func(i int) { built[i] = c.peers(i) })
	out := make([]intent.Host, 0, len(c.hosts))
	for i, h := range c.hosts {
		if !h.External { // wgnet writes no config for it; the others peer with it
			hc := n.heads[i]
			hc.Peers = built[i]
			out = append(out, hc)
		}
	}
	return out, nil
}

// each calls f with the index of every host wgnet writes a config for (not
// an external one), the hosts shared out among the cores. f only reads what
// the compiler shares (the policy's index locks itself) and writes its own
// host's slot.
func (c *compiler) each(f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), len(c.hosts))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(c.hosts); i += workers {
				if !c.hosts[i].External {
					f(i)
				}
			}
		})
	}
	wg.Wait()
}

// compiler is one Compile under way: the spec, its secrets, the hosts by name, and
// what every host's config shares, worked out once.
type compiler struct {
	s     *spec.Spec
	sec   spec.Secrets
	hosts []*spec.Host // sorted by name
	pub   []wgkey.Key  // by host, as hosts
	hub   *spec.Host   // nil in a mesh
	hubAt int          // the hub's index in hosts
	psk   map[spec.Pair]bool
	// direct is what a host that peers with o directly routes to it, and
	// endpoints o's endpoint: the same in every config that lists o. By host,
	// as hosts: a million lookups in a big mesh, by index, not by name.
	direct    [][]netip.Prefix
	endpoints []*wgconf.Endpoint
	mtu       int
	viaHub    hubRoutes
	// policy is the spec's policy resolved against its hosts.
	policy *policy.Network
	errs   []error
}

// newCompiler sorts the hosts, finds every public key and the hub, and fails
// with every problem it found when one is missing.
func newCompiler(s *spec.Spec, sec spec.Secrets) (*compiler, error) {
	c := &compiler{s: s, sec: sec, hosts: make([]*spec.Host, len(s.Hosts))}
	for i := range s.Hosts {
		c.hosts[i] = &s.Hosts[i]
	}
	sort.Slice(c.hosts, func(i, j int) bool { return c.hosts[i].Name < c.hosts[j].Name })

	var errs []error
	c.pub = make([]wgkey.Key, len(c.hosts))
	for i, h := range c.hosts {
		k, err := publicKey(h, sec)
		if err != nil {
			errs = append(errs, err)
		}
		c.pub[i] = k
	}
	switch s.Topology {
	case spec.TopologyHub:
		var ok bool
		if c.hub, ok = s.HostByName(s.Hub); !ok {
			errs = append(errs, fmt.Errorf("hub %q is not a host of the network", s.Hub))
		}
		c.hubAt = slices.Index(c.hosts, c.hub)
	case spec.TopologyMesh:
	default:
		errs = append(errs, fmt.Errorf("topology %q: want hub or mesh", s.Topology))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.psk = make(map[spec.Pair]bool, len(s.PresharedKeys))
	for _, p := range s.PresharedKeys {
		c.psk[p.Key()] = true
	}
	return c, nil
}

// shared works out what every config that lists a host shares: its AllowedIPs
// when peered directly, its endpoint; and the MTU and the hub's routes.
func (c *compiler) shared() {
	c.direct = make([][]netip.Prefix, len(c.hosts))
	c.endpoints = make([]*wgconf.Endpoint, len(c.hosts))
	for i, o := range c.hosts {
		var allowed []netip.Prefix
		for _, a := range o.Addresses {
			allowed = append(allowed, netip.PrefixFrom(a, a.BitLen()))
		}
		allowed = sortPrefixes(append(allowed, o.Routes...))
		c.direct[i] = allowed[:len(allowed):len(allowed)]
		if o.Endpoint != "" {
			ep, err := wgconf.ParseEndpoint(o.Endpoint)
			if err != nil {
				c.errs = append(c.errs, fmt.Errorf("host %s: %w", o.Name, err))
			} else {
				c.endpoints[i] = &ep
			}
		}
	}
	c.mtu = c.s.EffectiveMTU() // the smallest underlay's: one pass over the hosts
	c.policy = policy.Resolve(c.s)
	if c.hub != nil {
		c.viaHub = newHubRoutes(c.s.Subnets, c.hosts)
	}
}

// iface is h's intent without its peers: name, comments, addresses, port, MTU,
// key, forwarding, firewall and hooks.
func (c *compiler) iface(h *spec.Host) intent.Host {
	s, hub := c.s, c.hub
	ih := intent.Host{Name: h.Name, Routes: clonePrefixes(h.Routes)}
	role := "mesh member"
	if hub != nil {
		role = "spoke of hub " + hub.Name
		if h.Name == hub.Name {
			role = "hub"
		}
	}
	ih.Comments = []string{fmt.Sprintf("%s (%s). Generated; edit the spec, not this file.", Header(h.Name, s.Network), role)}
	if !h.AddressElsewhere {
		for _, a := range h.Addresses {
			ih.Addresses = append(ih.Addresses, s.AddressPrefix(h, a))
		}
	}
	if !h.RandomPort {
		port := uint16(s.ListenPortOf(h))
		ih.ListenPort = &port
	}
	ih.MTU = c.mtu // the network's, worked out once
	if h.MTU != 0 {
		ih.MTU = s.MTUOf(h)
	}
	ih.DNS = slices.Clone(h.DNS)
	ih.Table = h.Table
	ih.FwMark = h.FwMark
	if k, ok := c.sec.PrivateKeys[h.Name]; ok {
		ih.PrivateKey = k
	} else {
		ih.KeyFile = h.PrivateKeyFile
		if ih.KeyFile == "" {
			ih.KeyFile = DefaultPrivateKeyFile(s.InterfaceName())
		}
	}

	// Forwarding: the hub relays between spokes; a host with routed subnets relays
	// between the tunnel and what is behind it. Where it forwards, TCP MSS is
	// clamped to the route's MTU.
	isHub := hub != nil && h.Name == hub.Name
	for _, fam := range families(s, h, isHub) {
		if fam == 4 {
			ih.Forward.V4 = true
		} else {
			ih.Forward.V6 = true
		}
	}
	ih.Firewall.ClampMSS = ih.Forward.Any()
	ih.Firewall.Filter = c.policy.HostFilter(h.Name, isHub)
	if len(h.Routes) > 0 {
		ih.Comments = append(ih.Comments, fmt.Sprintf("routes %s behind this host: the interface in front of them must forward too (Docker turns that on globally).", joinPrefixes(h.Routes)))
	}
	if h.HostFirewall != "" {
		ih.HostFirewall = h.HostFirewall
		ih.Comments = append(ih.Comments, intent.HostFirewallComment(h.HostFirewall))
	}
	ih.Hooks = intent.Hooks{
		PreUp:    slices.Clone(h.Hooks.PreUp),
		PostUp:   slices.Clone(h.Hooks.PostUp),
		PreDown:  slices.Clone(h.Hooks.PreDown),
		PostDown: slices.Clone(h.Hooks.PostDown),
	}
	return ih
}

// peers is the peer list of hosts[h]: everyone in a mesh and on the hub, the
// hub alone on a spoke (with the overlay and every other host's routes).
func (c *compiler) peers(h int) []wgconf.Peer {
	// Each peer is filled in where it stays: a wgconf.Peer is some 300 bytes,
	// and a 1,000-host mesh has a million.
	peers := make([]wgconf.Peer, 0, c.room(h))
	for o := range c.listed(h) {
		peers = peers[:len(peers)+1]
		if p := &peers[len(peers)-1]; !c.peer(p, h, o) {
			*p = wgconf.Peer{}
			peers = peers[:len(peers)-1]
		}
	}
	return peers
}

// room is how many peers at most the config of hosts[h] lists.
func (c *compiler) room(h int) int {
	if c.hub == nil || h == c.hubAt {
		return max(len(c.hosts)-1, 0)
	}
	return 1
}

// listed yields, in order, the index of every host the config of hosts[h]
// has a place for (lists): on a spoke, the hub alone, without a walk over
// every host.
func (c *compiler) listed(h int) iter.Seq[int] {
	return func(yield func(int) bool) {
		if c.hub != nil && h != c.hubAt {
			yield(c.hubAt)
			return
		}
		for o := range c.hosts {
			if c.hosts[o].Name != c.hosts[h].Name && !yield(o) {
				return
			}
		}
	}
}

// lists reports whether the config of hosts[h] has a place for hosts[o],
// before the policy is asked: everyone else in a mesh and on the hub, the hub
// alone on a spoke.
func (c *compiler) lists(h, o int) bool {
	if c.hosts[o].Name == c.hosts[h].Name {
		return false
	}
	return c.hub == nil || h == c.hubAt || o == c.hubAt
}

// peer fills in p, the entry of hosts[o] in the config of hosts[h] (which
// lists it), and reports whether there is one: in a mesh with a policy, none
// when the two never talk.
func (c *compiler) peer(p *wgconf.Peer, h, o int) bool {
	hh, oh, hub := c.hosts[h], c.hosts[o], c.hub
	p.Name, p.PublicKey, p.PersistentKeepalive, p.Endpoint = oh.Name, c.pub[o], hh.Keepalive, c.endpoints[o]
	if len(c.psk) > 0 { // else no pair to build and hash per peer
		if pair := (spec.Pair{hh.Name, oh.Name}).Key(); c.psk[pair] {
			p.PresharedKey = c.sec.PresharedKeys[pair] // Prepare said which are missing
		}
	}
	if hub != nil && h != c.hubAt {
		// A spoke reaches the whole overlay and every other host's subnets
		// through the hub.
		p.AllowedIPs = c.viaHub.without(hh)
		p.Comments = []string{"hub: the overlay and every other host's routed subnets"}
		if len(hh.FullTunnel) > 0 {
			p.AllowedIPs = fullTunnel(hh.FullTunnel, p.AllowedIPs)
			p.Comments = []string{"hub: all traffic (full tunnel " + joinPrefixes(hh.FullTunnel) + ")"}
		}
	} else {
		p.AllowedIPs = c.direct[o]
	}
	if oh.External {
		p.Comments = append(p.Comments, intent.ExternalPeerComment())
	}
	if hub == nil && c.policy.Present {
		// A mesh peer carries only the prefixes the policy lets talk with
		// this host in some direction; none: the two never talk, no peer.
		if p.AllowedIPs = c.talking(hh, p.AllowedIPs); len(p.AllowedIPs) == 0 {
			return false
		}
	}
	return true
}

// pairErrors is an error for each preshared key missing from the secrets
// whose pair peers (before the policy is asked), said once per pair, by the
// host of the pair that comes first (if wgnet writes its config), in the
// order of the hosts and their peers.
func (c *compiler) pairErrors() []error {
	var missing []spec.Pair
	for pair := range c.psk {
		if _, ok := c.sec.PresharedKeys[pair]; ok {
			continue
		}
		h := slices.IndexFunc(c.hosts, func(x *spec.Host) bool { return x.Name == pair[0] })
		o := slices.IndexFunc(c.hosts, func(x *spec.Host) bool { return x.Name == pair[1] })
		if h >= 0 && o >= 0 && !c.hosts[h].External && c.lists(h, o) {
			missing = append(missing, pair)
		}
	}
	slices.SortFunc(missing, func(a, b spec.Pair) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	errs := make([]error, len(missing))
	for i, pair := range missing {
		errs[i] = fmt.Errorf("preshared key for %s+%s is missing from the secrets (`wgnet set %s --preshared-with %s` makes one)", pair[0], pair[1], pair[0], pair[1])
	}
	return errs
}

// talking returns the prefixes of allowed (a peer's) with which the policy lets
// h's prefixes exchange some packet, in either direction.
func (c *compiler) talking(h *spec.Host, allowed []netip.Prefix) []netip.Prefix {
	own := c.policy.Hosts[h.Name]
	var out []netip.Prefix
	for _, p := range allowed {
		if c.policy.CanTalk(own, []netip.Prefix{p}) {
			out = append(out, p)
		}
	}
	if len(out) == len(allowed) {
		return allowed // shared, as without a policy
	}
	return out
}

func publicKey(h *spec.Host, sec spec.Secrets) (wgkey.Key, error) {
	priv, hasPriv := sec.PrivateKeys[h.Name]
	switch {
	case hasPriv && !h.PublicKey.IsZero() && priv.Public() != h.PublicKey:
		return wgkey.Key{}, fmt.Errorf("host %s: public_key %s does not match the private key in the secrets (which gives %s)", h.Name, h.PublicKey, priv.Public())
	case hasPriv:
		return priv.Public(), nil
	case !h.PublicKey.IsZero():
		return h.PublicKey, nil
	}
	return wgkey.Key{}, fmt.Errorf("host %s: no public_key in the spec and no private key in the secrets", h.Name)
}

// fullTunnel returns what a full-tunnel spoke routes to the hub: its default
// routes, and of the hub's usual prefixes (viaHub) those of a family no
// default route covers.
func fullTunnel(defaults, viaHub []netip.Prefix) []netip.Prefix {
	out := slices.Clone(defaults)
	for _, p := range viaHub {
		if !slices.ContainsFunc(defaults, func(d netip.Prefix) bool { return d.Addr().Is4() == p.Addr().Is4() }) {
			out = append(out, p)
		}
	}
	return sortPrefixes(out)
}

// families returns the IP families (4, 6) in which h must forward.
func families(s *spec.Spec, h *spec.Host, isHub bool) []int {
	var v4, v6 bool
	if isHub {
		for _, p := range s.Subnets {
			v4 = v4 || p.Addr().Is4()
			v6 = v6 || p.Addr().Is6()
		}
	}
	for _, r := range h.Routes {
		v4 = v4 || r.Addr().Is4()
		v6 = v6 || r.Addr().Is6()
	}
	var f []int
	if v4 {
		f = append(f, 4)
	}
	if v6 {
		f = append(f, 6)
	}
	return f
}

// hubRoutes is what every spoke routes to the hub: the overlay and every host's
// routed subnets, sorted once; a spoke's own subnets are left out of its copy.
type hubRoutes struct {
	all []netip.Prefix
	// sources counts, for each prefix, the subnets and hosts that bring it, so
	// that a spoke leaves out only what it alone brings.
	sources map[netip.Prefix]int
}

func newHubRoutes(subnets []netip.Prefix, hosts []*spec.Host) hubRoutes {
	r := hubRoutes{sources: make(map[netip.Prefix]int)}
	add := func(ps []netip.Prefix) {
		seen := make(map[netip.Prefix]bool, len(ps))
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				r.sources[p]++
				r.all = append(r.all, p)
			}
		}
	}
	add(subnets)
	for _, h := range hosts {
		add(h.Routes)
	}
	r.all = sortPrefixes(r.all)
	r.all = r.all[:len(r.all):len(r.all)]
	return r
}

// without returns the hub's AllowedIPs as spoke h sees them: shared when h
// routes nothing of its own, else a copy without what only h brings.
func (r hubRoutes) without(h *spec.Host) []netip.Prefix {
	own := make(map[netip.Prefix]bool, len(h.Routes))
	for _, p := range h.Routes {
		if r.sources[p] == 1 {
			own[p] = true
		}
	}
	if len(own) == 0 {
		return r.all
	}
	out := make([]netip.Prefix, 0, len(r.all)-len(own))
	for _, p := range r.all {
		if !own[p] {
			out = append(out, p)
		}
	}
	return out
}

func clonePrefixes(p []netip.Prefix) []netip.Prefix { return append([]netip.Prefix(nil), p...) }

// sortPrefixes sorts IPv4 before IPv6, then by address and length, and drops repeats.
func sortPrefixes(p []netip.Prefix) []netip.Prefix {
	sort.Slice(p, func(i, j int) bool {
		if c := p[i].Addr().Compare(p[j].Addr()); c != 0 {
			return c < 0
		}
		return p[i].Bits() < p[j].Bits()
	})
	out := p[:0]
	for i, x := range p {
		if i == 0 || x != p[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func joinPrefixes(p []netip.Prefix) string {
	s := ""
	for i, x := range p {
		if i > 0 {
			s += ", "
		}
		s += x.String()
	}
	return s
}
