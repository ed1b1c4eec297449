// Package importer rebuilds a spec from an existing network's wg-quick configs, one
// per host, keeping their keys and addresses, and reports everything it could not
// carry over. It is pure: callers parse the files and write the results. Who
// peers with whom comes from the network model (netmodel). It imports diag,
// spec, intent (which knows the hook lines wgnet writes), netmodel, wgconf and wgkey;
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
	if err := im.subnets(); err != nil {
		return nil, err
	}
	im.topology()
	im.interfaceName()
	if err := im.interfaces(); err != nil {
		return nil, err
	}
	im.peers()
	im.hubRoutes()
	r := im.r
	for _, h := range im.hosts {
		r.Spec.Hosts = append(r.Spec.Hosts, *h.spec)
	}
	sort.Slice(r.Spec.PresharedKeys, func(i, j int) bool {
		return r.Spec.PresharedKeys[i][0]+"+"+r.Spec.PresharedKeys[i][1] < r.Spec.PresharedKeys[j][0]+"+"+r.Spec.PresharedKeys[j][1]
	})
	return r, nil
}

// importing is one Import under way: the result so far and the hosts, one per config.
type importing struct {
	r     *Result
	hosts []*host
}

func (im *importing) note(file string, line int, format string, a ...any) {
	im.r.Notes = append(im.r.Notes, diag.Diagnostic{File: file, Line: line, Severity: diag.Warning, Code: CodeNote, Message: fmt.Sprintf(format, a...)})
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

// subnets takes the overlay subnets from the interface addresses.
func (im *importing) subnets() error {
	subnets := map[netip.Prefix]bool{}
	for _, h := range im.hosts {
		for _, a := range h.cfg.Interface.Addresses {
			if a.Bits() < a.Addr().BitLen() {
				subnets[a.Masked()] = true
			}
		}
	}
	s := im.r.Spec
	for p := range subnets {
		s.Subnets = append(s.Subnets, p)
	}
	if len(s.Subnets) == 0 {
		s.Subnets = im.hostOnlySubnets()
	}
	sort.Slice(s.Subnets, func(i, j int) bool { return s.Subnets[i].Addr().Less(s.Subnets[j].Addr()) })
	if len(s.Subnets) == 0 {
		return fmt.Errorf("import: no Address in any config (a `wg showconf` file has none): cannot tell the overlay subnet; add each host's Address (like 192.168.100.10/24)")
	}
	im.noteHostAddresses()
	return nil
}

// hostOnlySubnets guesses the overlay of a fleet whose every Address is a
// single address (/32, /128, or written without a prefix): per family, the /24
// (/64) that holds them all, else the smallest prefix that does, each guess
// noted at the first Address it covers.
func (im *importing) hostOnlySubnets() []netip.Prefix {
	var out []netip.Prefix
	for _, six := range []bool{false, true} {
		var addrs []netip.Addr
		var first *host
		for _, h := range im.hosts {
			for _, a := range h.cfg.Interface.Addresses {
				if a.Addr().Is6() == six {
					addrs = append(addrs, a.Addr())
					if first == nil {
						first = h
					}
				}
			}
		}
		if len(addrs) == 0 {
			continue
		}
		bits := 24
		if six {
			bits = 64
		}
		p := netip.PrefixFrom(addrs[0], bits).Masked()
		for _, a := range addrs {
			for !p.Contains(a) {
				p = netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()
			}
		}
		out = append(out, p)
		im.note(first.file, first.cfg.Interface.Pos.KeyLine(wgconf.KeyAddress),
			"every Address is a single address, so the files don't say the overlay subnet: taken to be %s, the smallest /%d or wider that holds them all", p, bits)
	}
	return out
}

// noteHostAddresses says, at each Address line, where the rendered config will
// differ from the file: a spec host has addresses in the overlay subnets, which
// its rendered Address carries as its prefix length.
func (im *importing) noteHostAddresses() {
	for _, h := range im.hosts {
		ic := &h.cfg.Interface
		for _, a := range ic.Addresses {
			for _, s := range im.r.Spec.Subnets {
				if s.Contains(a.Addr()) && s.Bits() != a.Bits() {
					im.note(h.file, ic.Pos.KeyLine(wgconf.KeyAddress), "Address %s becomes %s in the rendered config: a spec host's address carries the overlay subnet's prefix length (%s)",
						a, netip.PrefixFrom(a.Addr(), s.Bits()), s)
				}
			}
		}
	}
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
	if len(im.hosts) > 2 {
		for _, h := range im.hosts {
			if isHub(h, im.hosts) {
				s.Topology, s.Hub = spec.TopologyHub, h.name
				break
			}
		}
	}
}

// interfaceName finds one interface name for the network: the files' common name
// when they are IFACE.conf in per-host directories (out/s1/wg0.conf); file names
// that are host names (s1.conf) say nothing about the interface.
func (im *importing) interfaceName() {
	iface := strings.TrimSuffix(filepath.Base(im.hosts[0].file), ".conf")
	for _, h := range im.hosts {
		if strings.TrimSuffix(filepath.Base(h.file), ".conf") != iface || iface == h.name {
			iface = ""
			break
		}
	}
	if iface != "" && wgconf.ValidInterfaceName(iface) && iface != spec.DefaultInterface {
		im.r.Spec.Interface = iface
	}
}

// interfaces makes each host's spec from its [Interface], and the network's port
// and MTU from the most common ones.
func (im *importing) interfaces() error {
	ports := map[int]int{}
	mtus := map[int]int{}
	for _, h := range im.hosts {
		sh, err := im.interfaceOf(h)
		if err != nil {
			return err
		}
		if h.cfg.Interface.ListenPort != nil {
			ports[sh.ListenPort]++
		}
		mtus[h.cfg.Interface.MTU]++
		h.spec = sh
	}
	s := im.r.Spec
	s.ListenPort = mostCommon(ports, spec.DefaultListenPort)
	if mtu := mostCommon(mtus, 0); len(mtus) == 1 && mtu != 0 {
		s.MTU = mtu
	} else {
		im.noteMTUs(len(mtus) > 1)
	}
	for _, h := range im.hosts {
		if h.spec.ListenPort == s.ListenPort {
			h.spec.ListenPort = 0
		}
	}
	return nil
}

// noteMTUs says, at each host's MTU line (or its [Interface] when it has none),
// what its rendered config's MTU will be: a spec has one MTU for the network,
// and writes it (the default, 1420, when the files don't agree on one) where
// wg-quick worked it out from the route to the endpoint.
func (im *importing) noteMTUs(differ bool) {
	rendered := im.r.Spec.EffectiveMTU()
	for _, h := range im.hosts {
		ic := &h.cfg.Interface
		switch {
		case ic.MTU != 0 && ic.MTU != rendered:
			im.note(h.file, ic.Pos.KeyLine(wgconf.KeyMTU), "MTU = %d becomes %d: the spec has one MTU for the network, and the files differ (set mtu: in the spec)", ic.MTU, rendered)
		case ic.MTU == 0 && differ:
			im.note(h.file, ic.Pos.Line, "no MTU (wg-quick works it out: the route MTU to the endpoint minus 80); the rendered config says MTU = %d", rendered)
		case ic.MTU == 0:
			im.note(h.file, ic.Pos.Line, "no MTU (wg-quick works it out: the route MTU to the endpoint minus 80); the rendered config says MTU = %d (set mtu: or underlay_mtu: in the spec)", rendered)
		}
	}
}

// interfaceOf is the spec host of h's [Interface]: addresses, port, keepalive,
// hooks and key file, with a note for each setting it does not carry over.
func (im *importing) interfaceOf(h *host) (*spec.Host, error) {
	sh := &spec.Host{Name: h.name, PublicKey: h.pub}
	ic := &h.cfg.Interface
	for _, a := range ic.Addresses {
		sh.Addresses = append(sh.Addresses, a.Addr())
	}
	if ic.ListenPort != nil {
		sh.ListenPort = int(*ic.ListenPort)
	} else {
		im.note(h.file, ic.Pos.Line, "no ListenPort: wg picks a random one; the spec's default port is used instead")
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
	if len(ic.DNS) > 0 {
		im.note(h.file, ic.Pos.KeyLine(wgconf.KeyDNS), "DNS = %s not carried over: a spec has no DNS setting yet (wgnet up applies DNS = from a wg-quick file itself, through resolvconf, as wg-quick does)", strings.Join(ic.DNS, ", "))
	}
	if ic.Table != "" {
		im.note(h.file, ic.Pos.KeyLine(wgconf.KeyTable), "Table = %s not carried over", ic.Table)
	}
	if ic.FwMark != 0 {
		im.note(h.file, ic.Pos.KeyLine(wgconf.KeyFwMark), "FwMark = %d not carried over", ic.FwMark)
	}
	if ic.SaveConfig {
		im.note(h.file, ic.Pos.KeyLine(wgconf.KeySaveConfig), "SaveConfig = true not carried over: the spec is the source of truth")
	}
	return sh, nil
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
			if o == nil {
				im.note(h.file, p.Pos.KeyLine(wgconf.KeyPublicKey), "peer %s: public key %s is held by no imported host; dropped", nameOr(p), p.PublicKey)
				continue
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
// default route, and says at its line what import makes of it: a spec routes
// subnets to hosts, and has no full-tunnel client, so the /0 is left out.
func (im *importing) fullTunnel(h *host, p *wgconf.Peer, o *host, a netip.Prefix) bool {
	if a.Bits() != 0 {
		return false
	}
	how := "a full tunnel: all of " + h.name + "'s traffic goes through " + o.name
	if t := strings.ToLower(h.cfg.Interface.Table); t != "" && t != "auto" {
		how = "a default route into Table = " + h.cfg.Interface.Table
	}
	im.note(h.file, p.Pos.KeyLine(wgconf.KeyAllowedIPs),
		"peer %s: AllowedIPs %s is %s; a spec has no full-tunnel clients yet, so %s's rendered config routes only the network to %s: keep %s's own config for its full tunnel (wgnet up brings it up as wg-quick does), or add %s back to its rendered config by hand",
		o.name, a, how, h.name, o.name, h.name, a)
	return true
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
