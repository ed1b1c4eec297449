// Package importer rebuilds a spec from an existing network's wg-quick configs, one
// per host, keeping what they say (keys, addresses with their prefix lengths,
// ports, MTUs, DNS, Table, FwMark, hooks, full tunnels, peers no file is for),
// and reports at file:line everything it could not carry over: having compiled
// the spec, every difference between a host's rendered config and its file that
// no other note explains. It is pure: callers parse the files and write the results. Who
// peers with whom comes from the network model (netmodel). It imports diag,
// spec, compile (to compare what it renders with each file), intent (which
// knows the hook lines wgnet writes), netmodel, wgconf and wgkey;
// it must not import any data plane.
package importer

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netmodel"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// CodeNote is the code of every note: something import could not carry over,
// or a guess it had to make. Notes are warnings; the command prints them as
// "FILE:LINE: MESSAGE" (diag.Diagnostic.Located).
const CodeNote = "import-note"

// Result is an imported network.
type Result struct {
	Spec    *spec.Spec
	Secrets spec.Secrets
	Notes   diag.List // each with code CodeNote
}

type host struct {
	name string
	cfg  *wgconf.Config
	file string
	pub  wgkey.Key
	spec *spec.Host
	m    *netmodel.Host // its place in the network model
	// addrs are its addresses with their prefix lengths: the file's Address,
	// or for a file without one (elsewhere), what its peers route to it alone.
	addrs     []netip.Prefix
	elsewhere bool
	// external is a peer no imported file is for (a VPN provider's server):
	// cfg is empty, seenIn and seenPeer say where it was first listed, and
	// dropped is set when it can't be a host of the spec (a mesh host not
	// every other host lists).
	external, dropped bool
	seenIn            *host
	seenPeer          int
}

// Import rebuilds the network that configs describe. configs[i] belongs to the host
// names[i]; network names the spec. The configs must have parsed without error.
func Import(network string, names []string, configs []*wgconf.Config) (*Result, error) {
	if len(configs) == 0 {
		return nil, fmt.Errorf("import: no configs")
	}
	if len(names) != len(configs) {
		return nil, fmt.Errorf("import: %d names for %d configs", len(names), len(configs))
	}
	im := &importing{r: &Result{
		Spec:    &spec.Spec{Version: spec.Version, Network: network},
		Secrets: spec.Secrets{PrivateKeys: map[string]wgkey.Private{}, PresharedKeys: map[spec.Pair]wgkey.Key{}},
	}}
	if err := im.readHosts(names, configs); err != nil {
		return nil, err
	}
	if err := im.keyless(); err != nil {
		return nil, err
	}
	im.externals()
	im.topology()
	im.pruneExternals()
	im.addresses()
	if err := im.subnets(); err != nil {
		return nil, err
	}
	im.interfaceName()
	if err := im.interfaces(); err != nil {
		return nil, err
	}
	im.peers()
	im.hubRoutes()
	im.fixedPorts()
	r := im.r
	for _, h := range im.hosts {
		if h.dropped {
			continue
		}
		slices.SortFunc(h.spec.FullTunnel, func(a, b netip.Prefix) int { return a.Addr().BitLen() - b.Addr().BitLen() })
		r.Spec.Hosts = append(r.Spec.Hosts, *h.spec)
	}
	sort.Slice(r.Spec.PresharedKeys, func(i, j int) bool {
		return r.Spec.PresharedKeys[i][0]+"+"+r.Spec.PresharedKeys[i][1] < r.Spec.PresharedKeys[j][0]+"+"+r.Spec.PresharedKeys[j][1]
	})
	im.differences()
	return r, nil
}

// importing is one Import under way: the result so far and the hosts, one per config.
type importing struct {
	r     *Result
	hosts []*host
	// at holds the notes' messages by file and line, for noted.
	at map[fileLine][]string
}

type fileLine struct {
	file string
	line int
}

func (im *importing) note(file string, line int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	im.r.Notes = append(im.r.Notes, diag.Diagnostic{File: file, Line: line, Severity: diag.Warning, Code: CodeNote, Message: msg})
	if im.at == nil {
		im.at = map[fileLine][]string{}
	}
	im.at[fileLine{file, line}] = append(im.at[fileLine{file, line}], msg)
}

// noted reports whether a note at file:line names about.
func (im *importing) noted(file string, line int, about string) bool {
	for _, m := range im.at[fileLine{file, line}] {
		if strings.Contains(m, about) {
			return true
		}
	}
	return false
}

// readHosts makes a host of each config, with its private key when the file has it.
func (im *importing) readHosts(names []string, configs []*wgconf.Config) error {
	im.hosts = make([]*host, len(configs))
	seen := map[string]bool{}
	for i, c := range configs {
		h := &host{name: names[i], cfg: c, file: c.Interface.Pos.File}
		if h.file == "" {
			h.file = names[i]
		}
		if seen[h.name] {
			return fmt.Errorf("import: two configs for host %q", h.name)
		}
		seen[h.name] = true
		if !c.Interface.PrivateKey.IsZero() {
			h.pub = c.Interface.PrivateKey.Public()
			im.r.Secrets.PrivateKeys[h.name] = c.Interface.PrivateKey
		}
		im.hosts[i] = h
	}
	return nil
}

// keyless finds the public key of a host without a private key in its file (it
// keeps it elsewhere) from the peers that point at its address, then places
// every host in the network model.
func (im *importing) keyless() error {
	keyless := netmodel.New(inputs(im.hosts))
	for _, h := range im.hosts {
		if !h.pub.IsZero() {
			continue
		}
		k, ok := keyByAddress(h, keyless)
		if !ok {
			return fmt.Errorf("%s: no PrivateKey and no peer routes its address: its public key is unknown", h.file)
		}
		h.pub = k
		im.note(h.file, h.cfg.Interface.Pos.Line, "no PrivateKey: the host keeps its own; public key %s taken from the peers that route its address", k)
	}
	net := netmodel.New(inputs(im.hosts))
	for i, h := range im.hosts {
		h.m = net.Hosts[i]
	}
	return nil
}

// addresses takes each host's addresses from its Address line, with their
// prefix lengths; a file without one (`wg showconf` writes none) keeps none
// (assign_address: false), and the host's addresses in the spec are the
// single addresses its peers route to it, one per family.
func (im *importing) addresses() {
	for _, h := range im.hosts {
		ic := &h.cfg.Interface
		if len(ic.Addresses) > 0 || h.dropped {
			h.addrs = ic.Addresses
			continue
		}
		h.elsewhere = !h.external
		var fams [2]bool
		for _, o := range im.hosts {
			for j, p := range o.cfg.Peers {
				if o == h || peerHost(o, j, im.hosts) != h {
					continue
				}
				for _, a := range p.AllowedIPs {
					if f := fam(a.Addr()); a.IsSingleIP() && !fams[f] {
						fams[f] = true
						h.addrs = append(h.addrs, a)
					}
				}
			}
		}
		sort.Slice(h.addrs, func(i, j int) bool { return h.addrs[i].Addr().Less(h.addrs[j].Addr()) })
		if h.external {
			continue
		}
		what := "no peer routes a single address to it, so it has no overlay address in the spec"
		if len(h.addrs) > 0 {
			what = "its peers route " + joinPrefixes(h.addrs) + " to it: that is its address in the spec"
		}
		im.note(h.file, ic.Pos.Line, "no Address (a `wg showconf`-style file): the interface's addresses are set elsewhere, and the rendered config has no Address either (assign_address: false); %s", what)
	}
}

func fam(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// subnets works out the overlay subnet of each family: the prefix that the
// Address lines and the peers' AllowedIPs give most often among those that
// hold a host's address (the widest on a tie), else the /24 (/64) of the first
// address; widened until it holds every host's address, each guess noted at
// the first Address it covers.
func (im *importing) subnets() error {
	s := im.r.Spec
	for _, six := range []bool{false, true} {
		var addrs []netip.Addr
		var first *host
		counts := map[netip.Prefix]int{}
		for _, h := range im.hosts {
			for _, a := range h.addrs {
				if a.Addr().Is6() != six || h.external {
					continue
				}
				addrs = append(addrs, a.Addr())
				if first == nil {
					first = h
				}
				if !a.IsSingleIP() {
					counts[a.Masked()]++
				}
			}
		}
		if len(addrs) == 0 {
			continue
		}
		for _, h := range im.hosts {
			for _, p := range h.cfg.Peers {
				for _, a := range p.AllowedIPs {
					if a.Addr().Is6() == six && a.Bits() > 0 && !a.IsSingleIP() && slices.ContainsFunc(addrs, a.Contains) {
						counts[a.Masked()]++
					}
				}
			}
		}
		s.Subnets = append(s.Subnets, im.subnetOf(first, addrs, counts, six))
	}
	sort.Slice(s.Subnets, func(i, j int) bool { return s.Subnets[i].Addr().Less(s.Subnets[j].Addr()) })
	for _, h := range im.hosts {
		if h.external {
			// An external host's address is one inside the overlay; what
			// else its peers route to it becomes its routes.
			h.addrs = slices.DeleteFunc(h.addrs, func(a netip.Prefix) bool { return !im.inOverlay(a) })
		}
	}
	if len(s.Subnets) == 0 {
		return fmt.Errorf("import: no Address in any config, and no peer routes a single address to a host: cannot tell the overlay subnet; add each host's Address (like 192.168.100.10/24)")
	}
	return nil
}

// subnetOf picks one family's overlay subnet (see subnets).
func (im *importing) subnetOf(first *host, addrs []netip.Addr, counts map[netip.Prefix]int, six bool) netip.Prefix {
	line := first.cfg.Interface.Pos.KeyLine(wgconf.KeyAddress)
	var best netip.Prefix
	for p, n := range counts {
		if !best.IsValid() || n > counts[best] || n == counts[best] && (p.Bits() < best.Bits() || p.Bits() == best.Bits() && p.Addr().Less(best.Addr())) {
			best = p
		}
	}
	p := best
	if !p.IsValid() {
		bits := 24
		if six {
			bits = 64
		}
		p = netip.PrefixFrom(addrs[0], bits).Masked()
	}
	guess := p
	for _, a := range addrs {
		for !p.Contains(a) {
			p = netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()
		}
	}
	switch {
	case !best.IsValid():
		im.note(first.file, line, "every Address is a single address, so the files don't say the overlay subnet: taken to be %s, the smallest /%d or wider that holds them all (each Address keeps its own length)", p, guess.Bits())
	case p != best:
		im.note(first.file, line, "the hosts' addresses are not all in %s, the prefix the files give most: the overlay subnet is taken to be %s, which holds them all", best, p)
	}
	return p
}

// inOverlay reports whether p lies inside one of the overlay subnets.
func (im *importing) inOverlay(p netip.Prefix) bool {
	for _, s := range im.r.Spec.Subnets {
		if s.Overlaps(p) && s.Bits() <= p.Bits() {
			return true
		}
	}
	return false
}

// topology: one host peering with all, the others only with it, is a hub.
func (im *importing) topology() {
	s := im.r.Spec
	s.Topology = spec.TopologyMesh
	for _, h := range im.hosts {
		if isHub(h, im.hosts) && (len(im.hosts) > 2 || im.routesAllThrough(h)) {
			s.Topology, s.Hub = spec.TopologyHub, h.name
			break
		}
	}
}

// routesAllThrough reports, of a network of two, whether the other host sends
// its whole network through h: a peer for h whose AllowedIPs hold a default
// route or a prefix holding the other's own address (a VPN client and its
// server, as against two sites that route each other's LAN).
func (im *importing) routesAllThrough(h *host) bool {
	for _, o := range im.hosts {
		for j, p := range o.cfg.Peers {
			if o == h || peerHost(o, j, im.hosts) != h {
				continue
			}
			for _, a := range p.AllowedIPs {
				if a.Bits() == 0 || !a.IsSingleIP() && slices.ContainsFunc(o.cfg.Interface.Addresses, func(own netip.Prefix) bool { return a.Contains(own.Addr()) }) {
					return true
				}
			}
		}
	}
	return false
}

// interfaceName finds one interface name for the network: the files' common name
// when they are IFACE.conf in per-host directories (out/s1/wg0.conf); file names
// that are host names (s1.conf) say nothing about the interface.
func (im *importing) interfaceName() {
	iface := strings.TrimSuffix(filepath.Base(im.hosts[0].file), ".conf")
	for _, h := range im.hosts {
		if h.external {
			continue
		}
		if strings.TrimSuffix(filepath.Base(h.file), ".conf") != iface || iface == h.name {
			iface = ""
			break
		}
	}
	if iface != "" && wgconf.ValidInterfaceName(iface) && iface != spec.DefaultInterface {
		im.r.Spec.Interface = iface
	}
}

// interfaces makes each host's spec from its [Interface], and the network's
// port and MTU from the most common ones; a host whose MTU differs keeps its
// own (a number, or automatic where its file has none).
func (im *importing) interfaces() error {
	ports := map[int]int{}
	mtus := map[int]int{}
	for _, h := range im.hosts {
		if h.external {
			h.spec = &spec.Host{Name: h.name, PublicKey: h.pub, External: true}
			im.hostAddresses(h, h.spec)
			continue
		}
		sh, err := im.interfaceOf(h)
		if err != nil {
			return err
		}
		if h.cfg.Interface.ListenPort != nil {
			ports[sh.ListenPort]++
		}
		mtus[mtuOf(h)]++
		h.spec = sh
	}
	s := im.r.Spec
	s.ListenPort = mostCommon(ports, spec.DefaultListenPort)
	s.MTU = mostCommon(mtus, spec.MTUAuto)
	for _, h := range im.hosts {
		if h.external {
			continue
		}
		if h.spec.ListenPort == s.ListenPort {
			h.spec.ListenPort = 0
		}
		if m := mtuOf(h); m != s.MTU {
			h.spec.MTU = m
		}
	}
	return nil
}

// mtuOf is h's MTU as a spec says it: MTUAuto where wg-quick works it out.
func mtuOf(h *host) int {
	if h.cfg.Interface.MTU == 0 {
		return spec.MTUAuto
	}
	return h.cfg.Interface.MTU
}

// interfaceOf is the spec host of h's [Interface]: addresses, port, keepalive,
// hooks and key file, with a note for each setting it does not carry over.
func (im *importing) interfaceOf(h *host) (*spec.Host, error) {
	sh := &spec.Host{Name: h.name, PublicKey: h.pub, AddressElsewhere: h.elsewhere}
	ic := &h.cfg.Interface
	im.hostAddresses(h, sh)
	if ic.ListenPort != nil {
		sh.ListenPort = int(*ic.ListenPort)
	} else {
		sh.RandomPort = true // unless its peers dial it: fixedPorts
	}
	for _, p := range h.cfg.Peers {
		if p.PersistentKeepalive > sh.Keepalive {
			sh.Keepalive = p.PersistentKeepalive
		}
	}
	if err := refuseKeyHooks(h.file, ic); err != nil {
		return nil, err
	}
	sh.Hooks.PreUp = ic.PreUp
	sh.Hooks.PreDown = ic.PreDown
	sh.Hooks.PostDown = ic.PostDown
	// wgnet's own filter lines (a compiled policy) are typed intent, not the
	// user's hooks: they are left out, and the policy must be written again.
	filter := ownFilter(h.cfg)
	if filter {
		sh.Hooks.PreDown = slices.DeleteFunc(slices.Clone(ic.PreDown), intent.IsFilterHook)
		im.note(h.file, ic.Pos.KeyLine(wgconf.KeyPostUp), "its segmentation filter (the nft lines wgnet renders from a policy) is not carried over: write the policy section in the spec again (docs/policy.md)")
	}
	for _, l := range ic.PostUp {
		path, isKey := intent.KeyHookPath(l)
		switch {
		case filter && intent.IsFilterHook(l):
		case intent.OwnForwardingHook(l):
		case isKey:
			sh.PrivateKeyFile = path
		default:
			sh.Hooks.PostUp = append(sh.Hooks.PostUp, l)
		}
	}
	sh.DNS = slices.Clone(ic.DNS)
	sh.Table = ic.Table
	sh.FwMark = ic.FwMark
	if ic.SaveConfig {
		im.note(h.file, ic.Pos.KeyLine(wgconf.KeySaveConfig), "SaveConfig = true not carried over: the spec is the source of truth")
	}
	return sh, nil
}

// hostAddresses gives sh h's addresses, one per family (a spec host has no
// more), each keeping its prefix length where it is not the overlay subnet's.
func (im *importing) hostAddresses(h *host, sh *spec.Host) {
	var fams [2]bool
	for _, a := range h.addrs {
		if fams[fam(a.Addr())] {
			im.note(h.file, h.cfg.Interface.Pos.KeyLine(wgconf.KeyAddress), "Address %s left out: a second address of its family, and a spec host has one per family", a)
			continue
		}
		fams[fam(a.Addr())] = true
		sh.Addresses = append(sh.Addresses, a.Addr())
		if a.Bits() != subnetBits(im.r.Spec.Subnets, a.Addr()) {
			if sh.AddressBits == nil {
				sh.AddressBits = map[netip.Addr]int{}
			}
			sh.AddressBits[a.Addr()] = a.Bits()
		}
	}
}

// subnetBits is the prefix length of the subnet that holds a.
func subnetBits(subnets []netip.Prefix, a netip.Addr) int {
	for _, p := range subnets {
		if p.Contains(a) {
			return p.Bits()
		}
	}
	return a.BitLen()
}

// ownFilter reports whether c's hooks hold a filter exactly as wgnet renders it.
func ownFilter(c *wgconf.Config) bool {
	h, _ := intent.FromConfig(c)
	return h.Firewall.Filter.Enabled
}

// peers takes what peers say about each host: endpoint, routes, preshared keys.
func (im *importing) peers() {
	hub := hostByName(im.hosts, im.r.Spec.Hub)
	for _, h := range im.hosts {
		for j, p := range h.cfg.Peers {
			o := peerHost(h, j, im.hosts)
			if h.m.Peers[j].Self {
				im.note(h.file, p.Pos.KeyLine(wgconf.KeyPublicKey), "peer %s has %s's own public key: wg ignores it; dropped", nameOr(p), h.name)
				continue
			}
			if o == nil || o.dropped {
				im.note(h.file, p.Pos.KeyLine(wgconf.KeyPublicKey), "peer %s: public key %s is held by no imported host; dropped", nameOr(p), p.PublicKey)
				continue
			}
			if o.external && o.seenIn == h && o.seenPeer == j {
				im.note(h.file, p.Pos.KeyLine(wgconf.KeyPublicKey), "peer %s: public key %s is held by no imported host: kept as the external host %s (external: true), which its peers keep peering with and wgnet writes no config for", nameOr(p), p.PublicKey, o.name)
			}
			im.endpointAndPSK(h, &h.cfg.Peers[j], o)
			// Routes: what a peer routes to o beyond o's own addresses. In a hub network
			// only the hub's view of a spoke (and a spoke's view of the hub, less the
			// overlay and the other spokes' routes) says what is behind whom.
			if hub != nil && h != hub && o != hub {
				im.note(h.file, p.Pos.Line, "spoke %s peers directly with spoke %s; dropped (hub topology)", h.name, o.name)
				continue
			}
			if hub != nil && h != hub {
				continue // hub's routes are settled by hubRoutes, once every spoke's are known
			}
			for _, a := range p.AllowedIPs {
				if isOwnAddress(a, o.spec.Addresses) || im.fullTunnel(h, &p, o, a) {
					continue
				}
				if im.inOverlay(a) {
					im.note(h.file, p.Pos.KeyLine(wgconf.KeyAllowedIPs), "peer %s: AllowedIPs %s inside the overlay but not its address; dropped", o.name, a)
					continue
				}
				addRoute(o.spec, a)
			}
		}
	}
}

// fixedPorts gives a host without ListenPort that its peers dial (they have
// its Endpoint) the port they dial, with a note: a spec host that others dial
// listens on a fixed port.
func (im *importing) fixedPorts() {
	for _, h := range im.hosts {
		if !h.spec.RandomPort || h.spec.Endpoint == "" {
			continue
		}
		ep, err := wgconf.ParseEndpoint(h.spec.Endpoint)
		if err != nil {
			continue // the spec's validation says why
		}
		h.spec.RandomPort = false
		if h.spec.ListenPort = int(ep.Port); h.spec.ListenPort == im.r.Spec.ListenPort {
			h.spec.ListenPort = 0
		}
		im.note(h.file, h.cfg.Interface.Pos.Line, "no ListenPort (wg picks a random one), yet its peers dial it at %s: the rendered config has ListenPort = %d", h.spec.Endpoint, ep.Port)
	}
}

// endpointAndPSK takes o's endpoint and the pair's preshared key from h's peer p
// (the first seen wins, with a note when another differs).
func (im *importing) endpointAndPSK(h *host, p *wgconf.Peer, o *host) {
	if p.Endpoint != nil {
		ep := p.Endpoint.String()
		if o.spec.Endpoint != "" && o.spec.Endpoint != ep {
			im.note(h.file, p.Pos.KeyLine(wgconf.KeyEndpoint), "peer %s: Endpoint %s differs from %s seen elsewhere; kept the first", o.name, ep, o.spec.Endpoint)
		} else {
			o.spec.Endpoint = ep
		}
	}
	if !p.PresharedKey.IsZero() {
		pair := spec.Pair{h.name, o.name}.Key()
		if old, ok := im.r.Secrets.PresharedKeys[pair]; ok && old != p.PresharedKey {
			im.note(h.file, p.Pos.KeyLine(wgconf.KeyPresharedKey), "peer %s: PresharedKey differs from the other side's: the pair can't handshake; kept the first", o.name)
		} else if !ok {
			im.r.Secrets.PresharedKeys[pair] = p.PresharedKey
			im.r.Spec.PresharedKeys = append(im.r.Spec.PresharedKeys, pair)
		}
	}
}

// hubRoutes gives the hub what the spokes route to it, less the overlay, the
// spokes' own routes and the hub's addresses.
func (im *importing) hubRoutes() {
	hub := hostByName(im.hosts, im.r.Spec.Hub)
	if hub == nil {
		return
	}
	spokeRoutes := map[netip.Prefix]bool{}
	for _, h := range im.hosts {
		for _, rt := range h.spec.Routes {
			spokeRoutes[rt] = true
		}
	}
	for _, h := range im.hosts {
		if h == hub {
			continue
		}
		for j, p := range h.cfg.Peers {
			if peerHost(h, j, im.hosts) != hub {
				continue
			}
			for _, a := range p.AllowedIPs {
				if im.fullTunnel(h, &p, hub, a) {
					continue
				}
				if !im.inOverlay(a) && !spokeRoutes[a] && !isOwnAddress(a, hub.spec.Addresses) {
					addRoute(hub.spec, a)
				}
			}
		}
	}
}

// fullTunnel reports whether a, in AllowedIPs of h's peer p (host o), is a
// default route. A spoke's for its hub becomes its full_tunnel; any other is
// left out, and said so at its line.
func (im *importing) fullTunnel(h *host, p *wgconf.Peer, o *host, a netip.Prefix) bool {
	if a.Bits() != 0 {
		return false
	}
	s := im.r.Spec
	if s.Topology == spec.TopologyHub && o.name == s.Hub && h != o {
		if !slices.Contains(h.spec.FullTunnel, a) {
			h.spec.FullTunnel = append(h.spec.FullTunnel, a)
		}
		return true
	}
	how := "a full tunnel: all of " + h.name + "'s traffic goes through " + o.name
	if t := strings.ToLower(h.cfg.Interface.Table); t != "" && t != "auto" {
		how = "a default route into Table = " + h.cfg.Interface.Table
	}
	im.note(h.file, p.Pos.KeyLine(wgconf.KeyAllowedIPs),
		"peer %s: AllowedIPs %s is %s; a spec has full tunnels only from a spoke to its hub, so %s's rendered config routes only the network to %s: keep %s's own config for its full tunnel (wgnet up brings it up as wg-quick does), or add %s back to its rendered config by hand",
		o.name, a, how, h.name, o.name, h.name, a)
	return true
}

// joinPrefixes writes prefixes as a wg-quick list does: "a, b".
func joinPrefixes(ps []netip.Prefix) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, ", ")
}

func nameOr(p wgconf.Peer) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprintf("at line %d", p.Pos.Line)
}

func hostByName(hosts []*host, name string) *host {
	for _, h := range hosts {
		if name != "" && h.name == name {
			return h
		}
	}
	return nil
}

// inputs returns what the network model needs of hosts.
func inputs(hosts []*host) []netmodel.Input {
	ins := make([]netmodel.Input, len(hosts))
	for i, h := range hosts {
		ins[i] = netmodel.FromConfig(h.name, h.cfg)
		ins[i].Key = h.pub
	}
	return ins
}

// peerHost returns the host that h's j-th peer stands for by key (a repeated
// key stands for the host of its first peer); nil for a key no other host
// holds, and for a self-peer (wg ignores it).
func peerHost(h *host, j int, hosts []*host) *host {
	p := &h.m.Peers[j]
	if p.DupOf >= 0 {
		p = &h.m.Peers[p.DupOf]
	}
	if p.To < 0 {
		return nil
	}
	return hosts[p.To]
}

// isHub reports whether h peers with every other host of the set and they only
// with h. Peers outside the set (a laptop on the hub) don't count; they are
// reported and dropped.
func isHub(h *host, hosts []*host) bool {
	inSet := func(o *host) []*host {
		if o.external {
			return listers(o, hosts)
		}
		var out []*host
		for j := range o.m.Peers {
			if to := peerHost(o, j, hosts); to != nil {
				out = append(out, to)
			}
		}
		return out
	}
	if len(inSet(h)) != len(hosts)-1 {
		return false
	}
	for _, o := range hosts {
		if o == h {
			continue
		}
		if peers := inSet(o); len(peers) != 1 || peers[0] != h {
			return false
		}
	}
	return true
}

// listers returns the hosts whose files list o as a peer.
func listers(o *host, hosts []*host) []*host {
	var out []*host
	for _, h := range hosts {
		for j := range h.cfg.Peers {
			if h != o && peerHost(h, j, hosts) == o {
				out = append(out, h)
				break
			}
		}
	}
	return out
}

// externals makes a host of each peer whose key no imported file holds (a VPN
// provider's server, a laptop nobody exported), named after the peer's name
// comment, else FILEHOST-peerN; then places every host in the network model again.
func (im *importing) externals() {
	n := len(im.hosts)
	used := map[string]bool{}
	for _, h := range im.hosts {
		used[h.name] = true
	}
	for _, h := range im.hosts[:n] {
		for j, p := range h.cfg.Peers {
			if mp := h.m.Peers[j]; mp.To >= 0 || mp.Self || mp.DupOf >= 0 {
				continue
			}
			name := strings.ToLower(p.Name)
			if !spec.ValidName(name) || used[name] {
				name = fmt.Sprintf("%s-peer%d", h.name, j+1)
			}
			used[name] = true
			im.hosts = append(im.hosts, &host{name: name, cfg: &wgconf.Config{}, file: h.file, pub: p.PublicKey,
				external: true, seenIn: h, seenPeer: j})
		}
	}
	if len(im.hosts) == n {
		return
	}
	net := netmodel.New(inputs(im.hosts))
	for i, h := range im.hosts {
		h.m = net.Hosts[i]
	}
}

// pruneExternals drops the external hosts a spec can't hold as its files
// have them: in a hub network, one that is neither the hub nor a peer of the
// hub; in a mesh, one that not every other host lists (a mesh host peers with
// all). Their peers are dropped with a note.
func (im *importing) pruneExternals() {
	s := im.r.Spec
	hub := hostByName(im.hosts, s.Hub)
	own := 0
	for _, h := range im.hosts {
		if !h.external {
			own++
		}
	}
	for _, o := range im.hosts {
		if !o.external {
			continue
		}
		ls := listers(o, im.hosts)
		switch {
		case hub != nil:
			o.dropped = o != hub && !slices.Contains(ls, hub)
		default:
			o.dropped = len(ls) != own
		}
	}
}

// keyByAddress returns the key of the first peer, in any config, whose
// AllowedIPs hold exactly one of h's addresses.
func keyByAddress(h *host, n *netmodel.Network) (wgkey.Key, bool) {
	for _, a := range h.cfg.Interface.Addresses {
		q := netip.PrefixFrom(a.Addr(), a.Addr().BitLen())
		for _, o := range n.Hosts {
			if i, ok := o.Table.Find(q); ok {
				for _, r := range o.Table.Values(i) {
					if p := o.Peers[r.Peer]; p.AllowedIPs[r.Entry] == q {
						return p.PublicKey, true
					}
				}
			}
		}
	}
	return wgkey.Key{}, false
}

func isOwnAddress(p netip.Prefix, own []netip.Addr) bool {
	for _, a := range own {
		if p.Bits() == a.BitLen() && p.Addr() == a {
			return true
		}
	}
	return false
}

func addRoute(h *spec.Host, p netip.Prefix) {
	for _, r := range h.Routes {
		if r == p {
			return
		}
	}
	h.Routes = append(h.Routes, p)
	sort.Slice(h.Routes, func(i, j int) bool { return h.Routes[i].Addr().Less(h.Routes[j].Addr()) })
}

func mostCommon(m map[int]int, def int) int {
	best, n := def, 0
	for v, c := range m {
		if c > n || (c == n && v < best) {
			best, n = v, c
		}
	}
	return best
}

// refuseKeyHooks refuses a config whose hooks load a private key in any way but
// the plain `wg set %i private-key PATH` PostUp: such a line would become
// private_key_file, a path that is pasted into a root shell hook on every host,
// so what follows the path (`; curl ... | sh`) would run there.
func refuseKeyHooks(file string, ic *wgconf.Interface) error {
	var errs []error
	for _, hk := range []struct {
		key   string
		lines []string
	}{{wgconf.KeyPreUp, ic.PreUp}, {wgconf.KeyPostUp, ic.PostUp}, {wgconf.KeyPreDown, ic.PreDown}, {wgconf.KeyPostDown, ic.PostDown}} {
		for _, l := range hk.lines {
			if !strings.Contains(l, "private-key") {
				continue
			}
			if _, ok := intent.KeyHookPath(l); ok && hk.key == wgconf.KeyPostUp {
				continue
			}
			errs = append(errs, fmt.Errorf("%s:%d: %s = %.80q: import takes a key file only as the plain PostUp `wg set %%i private-key PATH`, PATH %s; load the key that way, or set private_key_file after import",
				file, ic.Pos.KeyLine(hk.key), hk.key, l, wgkey.PathRule))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("import: %w", errors.Join(errs...))
	}
	return nil
}
