package spec

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/ipam"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Limits checked by Validate.
const (
	MinMTU     = 576  // the smallest IPv4 MTU (RFC 791)
	MinMTUIPv6 = 1280 // the smallest MTU IPv6 allows (RFC 8200); needed with an IPv6 subnet
	MaxMTU     = 9216 // the largest common jumbo frame
	// Overhead is what WireGuard adds to a packet over an IPv6 underlay (60 over
	// IPv4); the default MTU leaves room for it.
	Overhead = 80
)

var (
	// nameRE is the syntax of network and host names: lowercase so that they are
	// safe as file names (HOST.key) on any file system, no '+' (it joins pair names).
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	// ifaceRE is wg-quick's check for an interface name.
	ifaceRE = regexp.MustCompile(`^[a-zA-Z0-9_=+.-]{1,15}$`)
	// dockerBridge is Docker's default bridge network, present on most container hosts.
	dockerBridge = netip.MustParsePrefix("172.17.0.0/16")
)

// ValidName reports whether s is a valid network or host name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ValidInterface reports whether s is an interface name wg-quick accepts.
func ValidInterface(s string) bool { return ifaceRE.MatchString(s) }

// Validate returns nil when the spec has no errors, else one error joining a
// diag.Failure for each (warnings are not errors; see Lint).
func (s *Spec) Validate() error {
	errs, _ := s.Lint()
	return errs.Err()
}

// Lint checks the spec and returns its errors and its warnings apart, each in
// line order. They carry file and line when the spec came from Parse.
func (s *Spec) Lint() (errs, warns diag.List) {
	ps := s.lint()
	return list(ps.errs), list(ps.warns)
}

func (s *Spec) lint() *problems {
	ps := &problems{src: &s.Source}
	s.lintNetwork(ps)
	s.lintHosts(ps)
	s.lintReach(ps)
	s.lintPairs(ps)
	s.lintPolicy(ps)
	sortProblems(ps.errs)
	sortProblems(ps.warns)
	return ps
}

func (s *Spec) lintNetwork(ps *problems) {
	switch {
	case s.Version == 0:
		ps.errorf("version", CodeVersion, "missing: add \"version: %d\"", Version)
	case s.Version != Version:
		ps.errorf("version", CodeVersion, "%d: this wgnet reads version %d", s.Version, Version)
	}
	switch {
	case s.Network == "":
		ps.errorf("network", CodeNetwork, "missing: the network's name")
	case !ValidName(s.Network):
		ps.errorf("network", CodeNetwork, "%q: must be 1-63 of a-z 0-9 _ . - starting with a letter or digit", s.Network)
	}
	if len(s.Subnets) == 0 {
		ps.errorf("subnets", CodeSubnet, "at least one overlay subnet is required")
	}
	var seen [2]int // index+1 of the first subnet of each family
	for i, p := range s.Subnets {
		f := index("subnets", i)
		switch {
		case !p.IsValid():
			ps.errorf(f, CodeSubnet, "invalid prefix")
			continue
		case p.Addr().Is4In6():
			ps.errorf(f, CodeSubnet, "%q: write an IPv4 subnet in IPv4 form", p)
			continue
		case p != p.Masked():
			ps.errorf(f, CodeSubnet, "%q: host bits are set; did you mean %s?", p, p.Masked())
			continue
		case ipam.Size(p) == 0:
			ps.errorf(f, CodeSubnet, "%q: too small to hold a host address", p)
			continue
		}
		fam := family(p.Addr())
		if seen[fam] != 0 {
			ps.errorf(f, CodeSubnetFamily, "%q: a second %s subnet (first: %s); at most one IPv4 and one IPv6", p, familyName(fam), s.Subnets[seen[fam]-1])
			continue
		}
		seen[fam] = i + 1
		if p.Overlaps(dockerBridge) {
			ps.warnf(f, CodeDockerOverlap, "%q overlaps Docker's default bridge %s: hosts running Docker route it to docker0", p, dockerBridge)
		}
	}
	if s.Interface != "" && !ValidInterface(s.Interface) {
		ps.errorf("interface", CodeInterface, "%q: must be 1-15 of a-z A-Z 0-9 _ = + . - (as wg-quick requires)", s.Interface)
	}
	if s.ListenPort != 0 && !validPort(s.ListenPort) {
		ps.errorf("listen_port", CodePort, "%d: must be 1-65535", s.ListenPort)
	}
	if s.MTU != 0 && s.MTU != MTUAuto {
		switch {
		case s.MTU < MinMTU || s.MTU > MaxMTU:
			ps.errorf("mtu", CodeMTU, "%d: must be %d-%d", s.MTU, MinMTU, MaxMTU)
		case s.MTU < MinMTUIPv6 && s.hasV6():
			ps.errorf("mtu", CodeMTU, "%d: IPv6 needs at least %d and the network has an IPv6 subnet", s.MTU, MinMTUIPv6)
		}
	}
	switch s.Topology {
	case TopologyHub:
		switch {
		case s.Hub == "" && len(s.Hosts) > 0:
			ps.addAt(diag.Error, ps.line("topology"), "hub", CodeHub, "topology hub needs hub: the name of the hub host")
		case s.Hub != "":
			if _, ok := s.HostByName(s.Hub); !ok {
				ps.errorf("hub", CodeHub, "%q: no host has that name", s.Hub)
			}
		}
	case TopologyMesh:
		if s.Hub != "" {
			ps.errorf("hub", CodeHub, "%q: a hub is only for topology hub (this network is a mesh)", s.Hub)
		}
	case "":
		ps.errorf("topology", CodeTopology, "missing: hub or mesh")
	default:
		ps.errorf("topology", CodeTopology, "%q: must be hub or mesh", s.Topology)
	}
}

// hostsLint is what lintHosts remembers across hosts: names, addresses, keys and
// routes seen so far (each with the host that has it) and the smallest underlay MTU.
type hostsLint struct {
	s           *Spec
	ps          *problems
	names       map[string]int     // lowercased name → host index
	addrs       map[netip.Addr]int // overlay address → host index
	keys        map[wgkey.Key]int  // public key → host index
	routes      []hostRoute
	minUnderlay int
	minHost     int // index of the host with the smallest underlay MTU, or -1
}

// hostRoute is a routed subnet of a host and the field that declares it.
type hostRoute struct {
	p     netip.Prefix
	host  int
	field string
}

func (s *Spec) lintHosts(ps *problems) {
	l := &hostsLint{s: s, ps: ps, names: map[string]int{}, addrs: map[netip.Addr]int{}, keys: map[wgkey.Key]int{}, minHost: -1}
	for i := range s.Hosts {
		h := &s.Hosts[i]
		f := index("hosts", i)
		l.name(i, h, f)
		l.endpoint(h, f)
		l.addresses(i, h, f)
		l.routesOf(i, h, f)
		l.scalars(i, h, f)
		l.privateKeyFile(h, f)
		l.hooks(h, f)
		l.wgQuickKeys(h, f)
		l.fullTunnel(h, f)
		if h.External && h.PublicKey.IsZero() {
			ps.errorf(f+".external", CodePublicKeyNeed, "an external host needs public_key: wgnet writes no config for it and never holds its key")
		}
	}
	l.mtu()
	l.routeEndpoints()
}

func (l *hostsLint) name(i int, h *Host, f string) {
	ps := l.ps
	switch {
	case h.Name == "":
		ps.errorf(f+".name", CodeHostName, "a host name is required")
	case !ValidName(h.Name):
		ps.errorf(f+".name", CodeHostName, "%q: must be 1-63 of a-z 0-9 _ . - starting with a letter or digit", h.Name)
	}
	if h.Name != "" {
		if j, dup := l.names[strings.ToLower(h.Name)]; dup {
			ps.errorf(f+".name", CodeHostDuplicate, "%q: also the name of hosts[%d]%s", h.Name, j, l.s.at(ps, j))
		} else {
			l.names[strings.ToLower(h.Name)] = i
		}
	}
}

func (l *hostsLint) endpoint(h *Host, f string) {
	if h.Endpoint == "" {
		return
	}
	if ep, err := wgconf.ParseEndpoint(h.Endpoint); err != nil {
		msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("endpoint %q: ", h.Endpoint))
		l.ps.errorf(f+".endpoint", CodeEndpoint, "%q: %s", h.Endpoint, msg)
	} else if port := l.s.ListenPortOf(h); int(ep.Port) != port && !h.External {
		l.ps.warnf(f+".endpoint", CodeEndpointPort, "%q: port %d is not the host's listen port %d (fine only if something forwards it)", h.Endpoint, ep.Port, port)
	}
}

// addresses checks a host's overlay addresses: valid, in a subnet, one per
// family, not another host's; and, when all are good, one in every subnet.
func (l *hostsLint) addresses(i int, h *Host, f string) {
	s, ps := l.s, l.ps
	var fams [2]bool
	nerrs := len(ps.errs)
	for j, a := range h.Addresses {
		af := index(f+".address", j)
		if !a.IsValid() {
			ps.errorf(af, CodeAddress, "invalid address")
			continue
		}
		sub, ok := s.subnetFor(a)
		if !ok {
			ps.errorf(af, CodeAddress, "%q: the network has no %s subnet", a, familyName(family(a)))
			continue
		}
		if err := ipam.Check(sub, a); err != nil {
			ps.errorf(af, CodeAddress, "%q: %s", a, strings.TrimPrefix(err.Error(), a.String()+" "))
			continue
		}
		if bits, ok := h.AddressBits[a]; ok && bits == 0 {
			ps.errorf(af, CodeAddress, "%q: a /0 address claims every address; give the address alone (the subnet's length) or with its own length (/%d)", netip.PrefixFrom(a, 0), a.BitLen())
			continue
		}
		if fams[family(a)] {
			ps.errorf(af, CodeAddressFamily, "%q: a second %s address; a host has at most one per family", a, familyName(family(a)))
			continue
		}
		fams[family(a)] = true
		if k, dup := l.addrs[a]; dup {
			ps.errorf(af, CodeAddressDup, "%q: also the address of %s%s", a, s.Hosts[k].Name, s.at(ps, k))
			continue
		}
		l.addrs[a] = i
	}
	switch {
	case len(h.Addresses) == 0 && (h.AddressElsewhere || h.External):
	case len(h.Addresses) == 0:
		ps.errorf(f+".address", CodeAddressMissing, "host %s has no overlay address", h.Name)
	case len(ps.errs) == nerrs: // only when every address is good
		for _, sub := range s.overlay() {
			if !fams[family(sub.Addr())] {
				ps.warnf(f+".address", CodeAddressFamilyAbsent, "host %s has no address in the %s subnet %s", h.Name, familyName(family(sub.Addr())), sub)
			}
		}
	}
}

// routesOf checks a host's routed subnets and remembers the good ones: valid,
// masked, outside the overlay, overlapping no route seen before.
func (l *hostsLint) routesOf(i int, h *Host, f string) {
	s, ps := l.s, l.ps
	for j, p := range h.Routes {
		rf := index(f+".routes", j)
		switch {
		case !p.IsValid():
			ps.errorf(rf, CodeRoute, "invalid prefix")
			continue
		case p != p.Masked():
			ps.errorf(rf, CodeRoute, "%q: host bits are set; did you mean %s?", p, p.Masked())
			continue
		}
		if o, ok := s.overlayOverlap(p); ok {
			ps.errorf(rf, CodeRouteOverlap, "%q overlaps the overlay subnet %s", p, o)
			continue
		}
		if r, clash := l.routeOverlapping(p); clash {
			other := "another route of this host"
			if r.host != i {
				other = "a route of " + s.Hosts[r.host].Name
			}
			ps.errorf(rf, CodeRouteOverlap, "%q overlaps %s, %s%s", p, r.p, other, lineOf(ps, r.field))
			continue
		}
		l.routes = append(l.routes, hostRoute{p, i, rf})
		if p.Overlaps(dockerBridge) {
			ps.warnf(rf, CodeDockerOverlap, "%q overlaps Docker's default bridge %s: hosts running Docker route it to docker0", p, dockerBridge)
		}
	}
}

// routeOverlapping returns the first route seen so far that overlaps p.
func (l *hostsLint) routeOverlapping(p netip.Prefix) (hostRoute, bool) {
	for _, r := range l.routes {
		if r.p.Overlaps(p) {
			return r, true
		}
	}
	return hostRoute{}, false
}

// scalars checks keepalive, public key, listen port and underlay MTU.
func (l *hostsLint) scalars(i int, h *Host, f string) {
	s, ps := l.s, l.ps
	if h.Keepalive < 0 || h.Keepalive > 65535 {
		ps.errorf(f+".keepalive", CodeKeepalive, "%d: must be 0-65535 seconds (0 = off)", h.Keepalive)
	}
	if !h.PublicKey.IsZero() {
		if j, dup := l.keys[h.PublicKey]; dup {
			ps.errorf(f+".public_key", CodePublicKeyDup, "also the public key of %s%s", s.Hosts[j].Name, s.at(ps, j))
		} else {
			l.keys[h.PublicKey] = i
		}
	}
	if h.ListenPort != 0 && !validPort(h.ListenPort) {
		ps.errorf(f+".listen_port", CodePort, "%d: must be 1-65535", h.ListenPort)
	}
	if h.RandomPort && h.Endpoint != "" && !h.External {
		ps.errorf(f+".listen_port", CodePort, "\"random\": the others dial %s at its endpoint %s, so it needs a fixed port", h.Name, h.Endpoint)
	}
	if h.UnderlayMTU != 0 {
		if h.UnderlayMTU < MinMTU+Overhead || h.UnderlayMTU > 65535 {
			ps.errorf(f+".underlay_mtu", CodeUnderlayMTU, "%d: must be %d-65535", h.UnderlayMTU, MinMTU+Overhead)
		} else if l.minHost < 0 || h.UnderlayMTU < l.minUnderlay {
			l.minUnderlay, l.minHost = h.UnderlayMTU, i
		}
	}
}

func (l *hostsLint) privateKeyFile(h *Host, f string) {
	if h.PrivateKeyFile == "" {
		return
	}
	ps := l.ps
	// The path lands unquoted in a root shell hook (wg set %i private-key
	// PATH): it must be data, never a command.
	switch {
	case !strings.HasPrefix(h.PrivateKeyFile, "/"):
		ps.errorf(f+".private_key_file", CodePrivateKeyFile, "%q: must be an absolute path on the host", h.PrivateKeyFile)
	case !wgkey.ValidPath(h.PrivateKeyFile):
		ps.errorf(f+".private_key_file", CodePrivateKeyFile, "%q: must be %s", h.PrivateKeyFile, wgkey.PathRule)
	}
	if h.PublicKey.IsZero() && !h.External {
		ps.errorf(f+".private_key_file", CodePublicKeyNeed, "a host that keeps its own private key needs public_key in the spec")
	}
}

func (l *hostsLint) hooks(h *Host, f string) {
	for _, hk := range []struct {
		key  string
		cmds []string
	}{{"pre_up", h.Hooks.PreUp}, {"post_up", h.Hooks.PostUp}, {"pre_down", h.Hooks.PreDown}, {"post_down", h.Hooks.PostDown}} {
		for j, c := range hk.cmds {
			hf := index(f+".hooks."+hk.key, j)
			switch {
			case strings.TrimSpace(c) == "":
				l.ps.errorf(hf, CodeHook, "an empty command")
			case strings.ContainsAny(c, "\n\r\x00"):
				l.ps.errorf(hf, CodeHook, "%q: must be one line (wg-quick reads one command per line)", c)
			}
		}
	}
}

// tableRE is what wg-quick takes as a Table besides off, auto and main: a
// number, or a name from /etc/iproute2/rt_tables.
var tableRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// wgQuickKeys checks a host's own mtu, dns, table and fwmark.
func (l *hostsLint) wgQuickKeys(h *Host, f string) {
	ps := l.ps
	if h.MTU > 0 {
		v6 := slices.ContainsFunc(h.Addresses, netip.Addr.Is6)
		switch {
		case h.MTU < MinMTU || h.MTU > MaxMTU:
			ps.errorf(f+".mtu", CodeMTU, "%d: must be %d-%d, or auto", h.MTU, MinMTU, MaxMTU)
		case h.MTU < MinMTUIPv6 && v6:
			ps.errorf(f+".mtu", CodeMTU, "%d: IPv6 needs at least %d and the host has an IPv6 address", h.MTU, MinMTUIPv6)
		case h.UnderlayMTU != 0 && h.MTU > h.UnderlayMTU-Overhead:
			ps.warnf(f+".mtu", CodeMTUUnderlay, "%d: above %d, its underlay_mtu minus %d: large packets will be fragmented or lost", h.MTU, h.UnderlayMTU-Overhead, Overhead)
		}
	}
	for j, d := range h.DNS {
		if _, err := netip.ParseAddr(d); err != nil && !validDomain(d) {
			ps.errorf(index(f+".dns", j), CodeDNS, "%q: must be an IP address (a resolver) or a domain name (a search domain)", d)
		}
	}
	if h.Table != "" && !tableRE.MatchString(h.Table) {
		ps.errorf(f+".table", CodeTable, "%q: must be off, auto, main, a table number or a name from rt_tables", h.Table)
	}
}

// validDomain reports whether d is a domain name: dot-separated labels of
// letters, digits, '-' and '_', 253 characters at most.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(d, "."), ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return false
		}
	}
	return true
}

// fullTunnel checks a host's full_tunnel: default routes, one per family, on
// a spoke of a hub network (the hub is who it sends everything through).
func (l *hostsLint) fullTunnel(h *Host, f string) {
	s, ps := l.s, l.ps
	var fams [2]bool
	for j, p := range h.FullTunnel {
		pf := index(f+".full_tunnel", j)
		switch {
		case !p.IsValid():
			continue // reported by the decoder
		case p.Bits() != 0 || !p.Addr().IsUnspecified():
			ps.errorf(pf, CodeFullTunnel, "%q: must be a default route, 0.0.0.0/0 or ::/0 (a subnet behind the hub is one of the hub's routes)", p)
		case fams[family(p.Addr())]:
			ps.errorf(pf, CodeFullTunnel, "%q: given twice", p)
		default:
			fams[family(p.Addr())] = true
		}
	}
	if len(h.FullTunnel) > 0 && (s.Topology != TopologyHub || h.Name == s.Hub) {
		ps.errorf(f+".full_tunnel", CodeFullTunnel, "only a spoke of a hub network sends all its traffic through the hub (topology hub, and not the hub itself)")
	}
}

// mtu checks the network's MTU, explicit or derived, against the smallest underlay.
func (l *hostsLint) mtu() {
	s, ps := l.s, l.ps
	minUnderlay, minHost := l.minUnderlay, l.minHost
	switch {
	case s.MTU > 0 && minHost >= 0 && s.MTU > minUnderlay-Overhead:
		ps.warnf("mtu", CodeMTUUnderlay, "%d: above %d, the underlay MTU of %s minus %d: large packets will be fragmented or lost", s.MTU, minUnderlay-Overhead, s.Hosts[minHost].Name, Overhead)
	case s.MTU == 0 && minHost >= 0 && s.hasV6() && minUnderlay-Overhead < MinMTUIPv6:
		ps.errorf(index("hosts", minHost)+".underlay_mtu", CodeMTU, "%d: leaves an overlay MTU of %d, below the %d IPv6 needs; set mtu or drop the IPv6 subnet", minUnderlay, minUnderlay-Overhead, MinMTUIPv6)
	}
}

// routeEndpoints warns about a route that covers a host's endpoint: it would
// send the tunnel's own packets into the tunnel on every other host.
func (l *hostsLint) routeEndpoints() {
	s := l.s
	for i := range s.Hosts {
		ep, err := wgconf.ParseEndpoint(s.Hosts[i].Endpoint)
		if err != nil {
			continue
		}
		ip, ok := ep.Addr()
		if !ok {
			continue
		}
		for _, r := range l.routes {
			if r.host != i && r.p.Contains(ip.Unmap()) {
				l.ps.warnf(r.field, CodeRouteEndpoint, "%q covers the endpoint of %s (%s): its encrypted packets would be routed into the tunnel", r.p, s.Hosts[i].Name, ep)
			}
		}
	}
}

// lintReach warns about hosts that can never complete a handshake with a peer.
func (s *Spec) lintReach(ps *problems) {
	if len(s.Hosts) < 2 {
		return
	}
	var noEndpoint []int
	for i := range s.Hosts {
		if s.Hosts[i].Endpoint == "" {
			noEndpoint = append(noEndpoint, i)
		}
	}
	for _, i := range noEndpoint {
		h := &s.Hosts[i]
		f := index("hosts", i)
		if h.Keepalive == 0 {
			ps.warnf(f+".endpoint", CodeKeepaliveMissing, "host %s has no endpoint, so only it can start a handshake; if it is behind NAT, set keepalive: 25 to keep the NAT mapping open", h.Name)
		}
	}
	switch s.Topology {
	case TopologyMesh:
		// In a mesh every pair peers; two hosts without an endpoint can't.
		for k, i := range noEndpoint {
			if k == 0 {
				continue
			}
			var others []string
			for _, j := range noEndpoint[:k] {
				others = append(others, s.Hosts[j].Name)
			}
			ps.warnf(index("hosts", i)+".endpoint", CodeUnreachable, "host %s has no endpoint, nor has %s: they can't reach each other (give one an endpoint, or use topology hub)", s.Hosts[i].Name, nameList(others))
		}
	case TopologyHub:
		hub, ok := s.HostByName(s.Hub)
		if !ok || hub.Endpoint != "" {
			return
		}
		var spokes []string
		for _, i := range noEndpoint {
			if s.Hosts[i].Name != s.Hub {
				spokes = append(spokes, s.Hosts[i].Name)
			}
		}
		if len(spokes) > 0 {
			ps.warnf("hub", CodeUnreachable, "the hub %s has no endpoint, so spokes without one (%s) can't reach it", s.Hub, nameList(spokes))
		}
	}
}

func (s *Spec) lintPairs(ps *problems) {
	seen := map[Pair]int{}
	for i, p := range s.PresharedKeys {
		f := index("preshared_keys", i)
		bad := false
		for _, n := range p {
			if _, ok := s.HostByName(n); !ok {
				ps.errorf(f, CodePSKPair, "%q: no host has that name", n)
				bad = true
			}
		}
		if bad {
			continue
		}
		if p[0] == p[1] {
			ps.errorf(f, CodePSKPair, "[%s, %s]: a pair names two different hosts", p[0], p[1])
			continue
		}
		k := p.Key()
		if j, dup := seen[k]; dup {
			ps.errorf(f, CodePSKPair, "[%s, %s]: listed twice (also preshared_keys[%d]%s)", p[0], p[1], j, lineOf(ps, index("preshared_keys", j)))
			continue
		}
		seen[k] = i
		if s.Topology == TopologyHub && p[0] != s.Hub && p[1] != s.Hub && s.Hub != "" {
			ps.warnf(f, CodePSKNotPeers, "[%s, %s]: in a hub network only the hub peers with each host, so this key is never used", p[0], p[1])
		}
	}
}

// nameList joins names for a message, at most three of them.
func nameList(names []string) string {
	if len(names) > 3 {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names, ", ")
}

// at says where host i is, for messages: " (line 12)" or "".
func (s *Spec) at(ps *problems, i int) string {
	return lineOf(ps, index("hosts", i))
}

func lineOf(ps *problems, field string) string {
	if l := ps.line(field); l > 0 {
		return fmt.Sprintf(" (line %d)", l)
	}
	return ""
}

func validPort(p int) bool { return p >= 1 && p <= 65535 }

// family is 0 for IPv4, 1 for IPv6.
func family(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

func familyName(f int) string {
	if f == 0 {
		return "IPv4"
	}
	return "IPv6"
}

func (s *Spec) hasV6() bool {
	for _, p := range s.Subnets {
		if p.IsValid() && p.Addr().Is6() {
			return true
		}
	}
	return false
}

// overlay returns the subnets the rest of the checks use: the first valid subnet
// of each family, masked. Problems with the others are reported on their own.
func (s *Spec) overlay() []netip.Prefix {
	var out []netip.Prefix
	var seen [2]bool
	for _, p := range s.Subnets {
		if !p.IsValid() || p.Addr().Is4In6() || seen[family(p.Addr())] {
			continue
		}
		seen[family(p.Addr())] = true
		out = append(out, p.Masked())
	}
	return out
}

// subnetFor returns the overlay subnet of a's family.
func (s *Spec) subnetFor(a netip.Addr) (netip.Prefix, bool) {
	for _, p := range s.overlay() {
		if p.Addr().Is4() == a.Is4() {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func (s *Spec) overlayOverlap(p netip.Prefix) (netip.Prefix, bool) {
	for _, o := range s.overlay() {
		if o.Overlaps(p) {
			return o, true
		}
	}
	return netip.Prefix{}, false
}
