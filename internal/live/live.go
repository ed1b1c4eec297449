// Package live diagnoses a running host: what the kernel, the firewall and the
// WireGuard device actually do, against what wgnet recorded the host should be.
// It is `wgnet check --live`. Each finding is a diag.Diagnostic located at the
// interface (File is its name, Line 0), with a stable "live-" code and a message
// that ends in the command that fixes it.
//
// It reads the host through two small interfaces: Host (sysctls, links, routes
// through a link; hostnet.HostNet and its fake satisfy it) and Prober (route
// lookups, the firewall ruleset, DF-set pings, name lookups; System on Linux),
// and the device through device.Device. It imports device, diag, hostnet and
// wgkey only; never up (the command turns the state record into Expect), spec,
// compile or the lab.
package live

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Host is what Check reads of the host's network configuration; hostnet.HostNet
// has it.
type Host interface {
	Link(name string) (hostnet.Link, error)
	Links() ([]hostnet.Link, error)
	Routes(name string, table int) ([]hostnet.Route, error)
	Sysctl(key string) (string, error)
}

// Route is the kernel's answer to `ip route get DST [mark M]`.
type Route struct {
	Dev string // "" when there is no route
	MTU int    // the route's MTU, else its device's
}

// Prober reads what package hostnet does not, and sends the probes.
type Prober interface {
	// RouteGet asks the kernel which way a packet to dst with firewall mark mark
	// would go. No route is a zero Route and no error.
	RouteGet(dst netip.Addr, mark int) (Route, error)
	// Ruleset returns the firewall as iptables-save and `nft list ruleset` print
	// it (either may be empty when the tool is missing).
	Ruleset(ctx context.Context) (Ruleset, error)
	// Ping sends one echo request of payload size bytes to dst with the
	// don't-fragment bit set and reports whether a reply came back in time.
	Ping(ctx context.Context, dst netip.Addr, size int) (bool, error)
	// LookupHost resolves a host name.
	LookupHost(ctx context.Context, host string) ([]netip.Addr, error)
}

// Ruleset is the host's firewall in the text forms of its tools.
type Ruleset struct {
	IptablesSave  string // iptables-save output
	Ip6tablesSave string // ip6tables-save output
	Nft           string // nft list ruleset
}

// Expect is what the host should be: wgnet's state record of the interface and
// the config it came from, as the command reads them.
type Expect struct {
	// Name is the WireGuard interface.
	Name string
	// Routes are the routes up added through the interface (the peers'
	// AllowedIPs that the main table must send into the tunnel).
	Routes []hostnet.Route
	// Routed are the subnets behind this host (containers, a LAN) that peers
	// reach through it. Nil: Check takes every directly connected prefix of a
	// link other than the WireGuard interface, loopback and the links towards
	// the peers' endpoints, when the interface forwards.
	Routed []netip.Prefix
	// Relay is set when the host forwards packets from the tunnel (wgnet turned
	// forwarding on for it at up: a hub, or a host with routed subnets), so the
	// interface must forward even where no routed subnet is found.
	Relay bool
	// Endpoints are the peers' endpoints as the config wrote them ("host:port"),
	// by public key: a host name there is resolved again.
	Endpoints map[wgkey.Key]string
	// Names names peers by public key (base64), for messages.
	Names map[string]string
	// KeyChanged is when the interface's private key last changed (zero: not
	// known); a handshake before it was made with the old key.
	KeyChanged time.Time
	// HostFirewall is the opt-in up recorded ("" none): where the firewall
	// drops, the fix is then a sync that re-asserts wgnet's rules.
	HostFirewall string
	// Started is when up brought the interface up; for a grace period in which
	// no handshake is not yet a problem.
	Started time.Time
}

// Options bound the probes. The zero value uses the defaults.
type Options struct {
	// Now is the time handshakes are aged against; zero: time.Now().
	Now time.Time
	// MaxProbes caps how many peers get a path MTU probe (default 64).
	MaxProbes int
	// Parallel probes at once (default 8).
	Parallel int
	// NoProbe skips the path MTU probes and the name lookups.
	NoProbe bool
}

// Codes reported by Check.
const (
	CodeForwarding     = "live-forwarding"
	CodeRPFilter       = "live-rp-filter"
	CodeForwardDrop    = "live-forward-drop"
	CodeRawDrop        = "live-docker-raw-drop"
	CodeMasquerade     = "live-docker-masquerade"
	CodeRoute          = "live-route"
	CodeEndpointLoop   = "live-endpoint-loop"
	CodeEndpointRoute  = "live-endpoint-route"
	CodeMTU            = "live-mtu"
	CodeStaleHandshake = "live-handshake"
	CodeKeyChange      = "live-handshake-key"
	CodeEndpointDNS    = "live-endpoint-dns"
	CodeNotReadable    = "live-unreadable"
)

// handshakeStale is REJECT_AFTER_TIME: a session is dead after 3 minutes
// without a new handshake.
const handshakeStale = 180 * time.Second

// grace is how long after up a peer may still be waiting for its first
// handshake (a few retries of the 5-second handshake timer).
const grace = 20 * time.Second

// checker holds one run's inputs and findings.
type checker struct {
	ctx   context.Context
	ex    Expect
	host  Host
	probe Prober
	opts  Options
	dev   *device.State
	wg    hostnet.Link
	// routed maps each routed subnet to the link in front of it.
	routed map[netip.Prefix]string
	out    diag.List
}

// Check diagnoses the interface ex.Name. It returns an error only when it
// cannot read the device or the interface's link; what it cannot read of the
// rest is a finding of code live-unreadable.
func Check(ctx context.Context, ex Expect, dev device.Device, host Host, probe Prober, opts Options) (diag.List, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.MaxProbes == 0 {
		opts.MaxProbes = 64
	}
	if opts.Parallel == 0 {
		opts.Parallel = 8
	}
	st, err := dev.State()
	if err != nil {
		return nil, fmt.Errorf("read device %s: %w", ex.Name, err)
	}
	st.Normalize()
	wg, err := host.Link(ex.Name)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", ex.Name, err)
	}
	c := &checker{ctx: ctx, ex: ex, host: host, probe: probe, opts: opts, dev: st, wg: wg}
	c.routed = c.routedLinks()
	c.endpoints()
	c.routes()
	c.forwarding()
	c.firewall()
	c.handshakes()
	if !opts.NoProbe {
		c.mtu()
		c.dns()
	}
	return c.out, nil
}

func (c *checker) add(sev diag.Severity, code, format string, a ...any) {
	c.out = append(c.out, diag.Diagnostic{File: c.ex.Name, Severity: sev, Code: code, Message: fmt.Sprintf(format, a...)})
}

// peerName is "s1" or the first characters of the key.
func (c *checker) peerName(k wgkey.Key) string {
	if n := c.ex.Names[k.String()]; n != "" {
		return fmt.Sprintf("peer %s", n)
	}
	s := k.String()
	return fmt.Sprintf("peer %s…", s[:8])
}

// sysctl reads key; a missing key is "" with ok false.
func (c *checker) sysctl(key string) (string, bool) {
	v, err := c.host.Sysctl(key)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(v), true
}

// endpoints: the route to each peer's endpoint must exist and must not go into
// the tunnel (the encrypted packets carry the device's fwmark, if any).
func (c *checker) endpoints() {
	for _, p := range c.dev.Peers {
		if !p.Endpoint.IsValid() {
			continue
		}
		ep := p.Endpoint.Addr().Unmap()
		r, err := c.probe.RouteGet(ep, c.dev.FwMark)
		if err != nil {
			c.add(diag.Warning, CodeNotReadable, "%s: route to endpoint %s: %v", c.peerName(p.PublicKey), ep, err)
			continue
		}
		switch {
		case r.Dev == "":
			c.add(diag.Error, CodeEndpointRoute, "%s: no route to its endpoint %s; fix: add one, e.g. `ip route add %s via GATEWAY`", c.peerName(p.PublicKey), ep, hostPrefix(ep))
		case r.Dev == c.ex.Name:
			c.add(diag.Error, CodeEndpointLoop, "%s: the route to its endpoint %s goes into the tunnel (dev %s), so the encrypted packets loop; fix: `ip route add %s via GATEWAY dev UPLINK` (the underlay's way out), or take the route covering it off %s", c.peerName(p.PublicKey), ep, r.Dev, hostPrefix(ep), c.ex.Name)
		}
	}
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// routes: every route up added through the interface must still be what the
// kernel picks for its prefix; with rp_filter strict on the interface, every
// AllowedIPs prefix must route back into it or replies from there are dropped.
func (c *checker) routes() {
	for _, r := range c.ex.Routes {
		if r.Table != 0 && r.Table != hostnet.TableMain {
			continue // policy-routed full tunnel: RouteGet asks the main table's way
		}
		a := probeAddr(r.Dst)
		got, err := c.probe.RouteGet(a, 0)
		if err != nil {
			c.add(diag.Warning, CodeNotReadable, "route to %s: %v", a, err)
			continue
		}
		switch {
		case got.Dev == "":
			c.add(diag.Error, CodeRoute, "route %s dev %s is gone (wgnet added it): traffic for %s does not enter the tunnel; fix: `ip route add %s dev %s`", r.Dst, c.ex.Name, r.Dst, r.Dst, c.ex.Name)
		case got.Dev != c.ex.Name:
			c.add(diag.Error, CodeRoute, "%s is in AllowedIPs but %s routes via %s, not %s (a more specific or older route wins); fix: `ip route del <the route via %s covering %s>` or `ip route replace %s dev %s`", r.Dst, a, got.Dev, c.ex.Name, got.Dev, a, r.Dst, c.ex.Name)
		}
	}
	// rp_filter: the effective value is the larger of all and the interface's.
	all, _ := c.sysctl("net/ipv4/conf/all/rp_filter")
	own, _ := c.sysctl("net/ipv4/conf/" + c.ex.Name + "/rp_filter")
	if max(all, own) != "1" {
		return
	}
	seen := map[netip.Prefix]bool{}
	for _, p := range c.dev.Peers {
		for _, pre := range p.AllowedIPs {
			if !pre.Addr().Is4() || seen[pre] || pre.Bits() == 0 {
				continue
			}
			seen[pre] = true
			a := probeAddr(pre)
			got, err := c.probe.RouteGet(a, 0)
			if err != nil || got.Dev == c.ex.Name {
				continue
			}
			how := "there is no route to it"
			if got.Dev != "" {
				how = "it routes via " + got.Dev
			}
			c.add(diag.Error, CodeRPFilter, "%s: rp_filter=1 (strict) on %s drops packets from %s (in AllowedIPs) because %s; fix: `ip route add %s dev %s`, or loose mode: `sysctl -w net.ipv4.conf.%s.rp_filter=2`",
				c.peerName(p.PublicKey), c.ex.Name, pre, how, pre, c.ex.Name, hostnet.SysctlName(c.ex.Name))
		}
	}
}

// probeAddr is the address a lookup for p asks about: its first host address
// (its only one for a /32 or /128).
func probeAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	if p.IsSingleIP() {
		return p.Addr()
	}
	return p.Addr().Next()
}

// routedLinks maps each routed subnet to the link in front of it.
func (c *checker) routedLinks() map[netip.Prefix]string {
	out := map[netip.Prefix]string{}
	if c.ex.Routed != nil {
		for _, p := range c.ex.Routed {
			r, err := c.probe.RouteGet(probeAddr(p), 0)
			if err != nil || r.Dev == "" || r.Dev == c.ex.Name {
				continue
			}
			out[p] = r.Dev
		}
		return out
	}
	// Inferred, on a host that forwards from the tunnel: connected prefixes of
	// links that are neither the tunnel, nor loopback, nor on the way to an
	// endpoint or the default route (the underlay).
	if fwd, _ := c.sysctl("net/ipv4/conf/" + c.ex.Name + "/forwarding"); !c.ex.Relay && fwd != "1" {
		return out
	}
	under := map[string]bool{c.ex.Name: true}
	var eps []netip.Addr
	for _, p := range c.dev.Peers {
		if p.Endpoint.IsValid() {
			eps = append(eps, p.Endpoint.Addr().Unmap())
			if r, err := c.probe.RouteGet(p.Endpoint.Addr().Unmap(), c.dev.FwMark); err == nil && r.Dev != "" {
				under[r.Dev] = true
			}
		}
	}
	if r, err := c.probe.RouteGet(netip.MustParseAddr("192.0.2.1"), c.dev.FwMark); err == nil && r.Dev != "" {
		under[r.Dev] = true // the default route's link (TEST-NET-1 is nowhere else)
	}
	links, err := c.host.Links()
	if err != nil {
		return out
	}
	for _, l := range links {
		if under[l.Name] || l.Type == "loopback" || l.Name == "lo" || l.Type == "wireguard" || l.Type == "tun" {
			continue
		}
		rs, err := c.host.Routes(l.Name, 0)
		if err != nil {
			continue
		}
		// A link with an endpoint on one of its networks is the underlay, even
		// when a wrong route sends the endpoint elsewhere.
		if slices.ContainsFunc(rs, func(r hostnet.Route) bool {
			return slices.ContainsFunc(eps, r.Dst.Contains)
		}) {
			continue
		}
		for _, r := range rs {
			if r.Dst.IsSingleIP() {
				continue
			}
			out[r.Dst] = l.Name
		}
	}
	return out
}

// forwarding: IPv4 forwarding is decided by the input interface: the tunnel
// for tunnel → subnet (and peer → peer on a hub), the link in front of each
// routed subnet for subnet → tunnel. IPv6 forwarding is global, or per
// interface with force_forwarding (Linux 6.17+).
func (c *checker) forwarding() {
	routed := maps.Clone(c.routed)
	if c.ex.Relay && len(routed) == 0 {
		// A hub without subnets still relays between peers.
		routed[netip.Prefix{}] = ""
	}
	if len(routed) == 0 {
		return
	}
	need4, need6 := map[string][]netip.Prefix{}, map[string][]netip.Prefix{}
	for p, dev := range routed {
		if !p.IsValid() || p.Addr().Is4() {
			need4[c.ex.Name] = append(need4[c.ex.Name], p)
		} else {
			need6[c.ex.Name] = append(need6[c.ex.Name], p)
		}
		if dev == "" {
			continue
		}
		if p.Addr().Is4() {
			need4[dev] = append(need4[dev], p)
		} else {
			need6[dev] = append(need6[dev], p)
		}
	}
	for _, dev := range sortedKeys(need4) {
		v, ok := c.sysctl("net/ipv4/conf/" + dev + "/forwarding")
		if !ok || v == "1" {
			continue
		}
		c.add(diag.Error, CodeForwarding, "IPv4 forwarding is off on %s, which %s; fix: `sysctl -w net.ipv4.conf.%s.forwarding=1`",
			dev, forwardWhy(dev, c.ex.Name, need4[dev]), hostnet.SysctlName(dev))
	}
	if all, _ := c.sysctl("net/ipv6/conf/all/forwarding"); all == "1" {
		return
	}
	for _, dev := range sortedKeys(need6) {
		if v, ok := c.sysctl("net/ipv6/conf/" + dev + "/force_forwarding"); ok && v == "1" {
			continue
		} else if ok {
			c.add(diag.Error, CodeForwarding, "IPv6 forwarding is off on %s, which %s; fix: `sysctl -w net.ipv6.conf.%s.force_forwarding=1`",
				dev, forwardWhy(dev, c.ex.Name, need6[dev]), hostnet.SysctlName(dev))
			continue
		}
		c.add(diag.Error, CodeForwarding, "IPv6 forwarding is off (net.ipv6.conf.all.forwarding=0; this kernel has no per-interface force_forwarding) and %s %s; fix: `sysctl -w net.ipv6.conf.all.forwarding=1` (and accept_ra=2 on an uplink configured by router advertisements)",
			dev, forwardWhy(dev, c.ex.Name, need6[dev]))
		return
	}
}

func forwardWhy(dev, wg string, ps []netip.Prefix) string {
	var names []string
	for _, p := range ps {
		if p.IsValid() {
			names = append(names, p.String())
		}
	}
	slices.Sort(names)
	if dev == wg {
		if len(names) == 0 {
			return "relays between peers (packets from the tunnel are forwarded only if the tunnel forwards)"
		}
		return fmt.Sprintf("packets from the tunnel to %s come in on (the input interface decides)", strings.Join(names, ", "))
	}
	return fmt.Sprintf("is in front of the routed subnet %s (packets from there into the tunnel come in on it, and the input interface decides)", strings.Join(names, ", "))
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// firewall: a FORWARD policy of DROP with no accept for the tunnel (Docker,
// ufw, firewalld), Docker 28's raw-table drop of packets to container
// addresses, and Docker's masquerade of container traffic into the tunnel.
func (c *checker) firewall() {
	routed := c.routed
	if len(routed) == 0 && !c.ex.Relay {
		return
	}
	rs, err := c.probe.Ruleset(c.ctx)
	if err != nil {
		c.add(diag.Warning, CodeNotReadable, "read the firewall: %v", err)
		return
	}
	fw := ParseRuleset(rs)
	flows := c.flows()
	for _, ch := range fw.Chains {
		dropped := fw.DroppedFlows(ch, flows)
		if len(dropped) == 0 {
			continue
		}
		var what []string
		for _, f := range dropped {
			what = append(what, f.String())
		}
		c.add(diag.Error, CodeForwardDrop, "forwarded packets %s are dropped: %s has policy %s and no accept for them; fix: %s",
			strings.Join(what, "; "), ch, ch.Policy, c.forwardFix(fw, ch))
	}
	for p, dev := range routed {
		if !p.IsValid() {
			continue
		}
		for _, d := range fw.RawDrops(p, c.ex.Name) {
			c.add(diag.Error, CodeRawDrop, "packets from the tunnel to %s (behind %s) are dropped before routing by `%s` (Docker 28+ protects containers of a nat-mode network from direct routing; no accept in DOCKER-USER passes them); fix: recreate the Docker network with `-o com.docker.network.bridge.gateway_mode_ipv4=routed` (containers keep their addresses; published ports only) or `-o com.docker.network.bridge.trusted_host_interfaces=%s`, or set `\"allow-direct-routing\": true` in daemon.json", p, dev, d.Text, c.ex.Name)
		}
		if m, ok := fw.Masquerades(p, dev); ok {
			c.add(diag.Warning, CodeMasquerade, "traffic from %s into the tunnel is masqueraded (%s), so peers see this host's address instead of the container's; fix: `host_firewall: docker` in the spec or `wgnet sync --host-firewall=docker` (wgnet puts `-t nat -I POSTROUTING -s %s -o %s -j RETURN` first)", p, m, p, c.ex.Name)
		}
	}
}

// flows are the kinds of packets the host must forward: tunnel → each routed
// subnet and back, and tunnel → tunnel on a host that relays between peers
// (else, with no routed subnet known, anything in on the tunnel).
func (c *checker) flows() []Flow {
	wg := c.ex.Name
	var out []Flow
	if c.ex.Relay && len(c.dev.Peers) >= 2 {
		out = append(out, Flow{In: wg, Out: wg})
	}
	for _, p := range slices.SortedFunc(maps.Keys(c.routed), func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) }) {
		if p.IsValid() {
			out = append(out, Flow{In: wg, Out: c.routed[p], Dst: p}, Flow{In: c.routed[p], Out: wg, Src: p})
		}
	}
	if len(out) == 0 {
		out = append(out, Flow{In: wg})
	}
	return out
}

// forwardFix says how to open ch for the tunnel: wgnet's own opt-in where
// iptables drops (it re-asserts rules Docker took away on sync), nft otherwise.
func (c *checker) forwardFix(fw *Firewall, ch *Chain) string {
	wg := c.ex.Name
	if ch.Nft {
		return fmt.Sprintf("`nft insert rule %s %s %s iifname %q accept` and the same with oifname (for firewalld: `firewall-cmd --zone=trusted --add-interface=%s`)", ch.Family, ch.Table, ch.Chain, wg, wg)
	}
	mode := "iptables"
	if fw.HasDockerUser {
		mode = "docker"
	}
	if c.ex.HostFirewall != "" {
		return fmt.Sprintf("wgnet's rules for %s (host firewall %s) are not there or not first (Docker recreated its chains?): run `wgnet sync %s` to re-assert them", wg, c.ex.HostFirewall, wg)
	}
	return fmt.Sprintf("have wgnet add its accepts: `host_firewall: %s` on this host in the spec, or `wgnet sync --host-firewall=%s` with the config (see docs/docker.md)", mode, mode)
}

// handshakes: a peer wgnet expects traffic with (keepalive set, or bytes sent)
// whose last handshake is over 3 minutes old, or never came; one whose last
// handshake predates the key change.
func (c *checker) handshakes() {
	now := c.opts.Now
	young := !c.ex.Started.IsZero() && now.Sub(c.ex.Started) < grace
	for _, p := range c.dev.Peers {
		expected := p.PersistentKeepalive > 0 || p.TxBytes > 0
		name := c.peerName(p.PublicKey)
		switch {
		case p.LastHandshake.IsZero():
			if !expected || young {
				continue
			}
			c.add(diag.Error, CodeStaleHandshake, "%s: no handshake ever (%d bytes sent, %d received): the peer does not answer (down, wrong endpoint %s, a firewall, or it lacks this host's key %s); fix on the peer, then check with `wg show %s`",
				name, p.TxBytes, p.RxBytes, endpointText(p.Endpoint), c.dev.PublicKey, c.ex.Name)
			continue
		case now.Sub(p.LastHandshake) > handshakeStale && p.PersistentKeepalive > 0:
			c.add(diag.Error, CodeStaleHandshake, "%s: last handshake %s ago, though keepalives are sent every %s: the session is dead; fix on the peer (is it up, does it reach %s?), then check with `wg show %s`",
				name, now.Sub(p.LastHandshake).Truncate(time.Second), p.PersistentKeepalive, endpointText(p.Endpoint), c.ex.Name)
			continue
		}
		if !c.ex.KeyChanged.IsZero() && p.LastHandshake.Before(c.ex.KeyChanged) && now.Sub(c.ex.KeyChanged) > grace {
			c.add(diag.Error, CodeKeyChange, "%s: last handshake %s is older than this host's key change %s: the peer has not handshaken with the new key (public %s); fix: give the peer the new public key (`wgnet render` and `wgnet sync` there)",
				name, p.LastHandshake.UTC().Format(time.RFC3339), c.ex.KeyChanged.UTC().Format(time.RFC3339), c.dev.PublicKey)
		}
	}
}

func endpointText(e netip.AddrPort) string {
	if !e.IsValid() {
		return "(none)"
	}
	return e.String()
}

// mtu probes the path to each peer with DF-set pings: a small one, then one
// that fills the tunnel's MTU. Inside the overlay when the peer has a host
// address in its AllowedIPs; else on the underlay to its endpoint with the size
// of an encrypted full packet. Only a small probe that gets through and a big
// one that does not is a finding: a peer that answers no ping is not one.
func (c *checker) mtu() {
	mtu := c.wg.MTU
	if mtu == 0 {
		return
	}
	type job struct {
		peer     device.PeerState
		dst      netip.Addr
		size     int // payload of the big probe
		target   string
		underlay bool // to the endpoint, not inside the tunnel
	}
	var jobs []job
	for _, p := range c.dev.Peers {
		if len(jobs) == c.opts.MaxProbes {
			c.add(diag.Warning, CodeNotReadable, "path MTU probed for the first %d peers only", c.opts.MaxProbes)
			break
		}
		if a, ok := overlayAddr(p.AllowedIPs); ok {
			jobs = append(jobs, job{p, a, mtu - icmpHeader(a), "overlay address " + a.String(), false})
			continue
		}
		if p.Endpoint.IsValid() {
			ep := p.Endpoint.Addr().Unmap()
			// An encrypted full packet: the tunnel's MTU plus WireGuard's
			// overhead over this underlay (60 bytes over IPv4, 80 over IPv6).
			outer := mtu + 60
			if ep.Is6() {
				outer = mtu + 80
			}
			r, err := c.probe.RouteGet(ep, c.dev.FwMark)
			if err != nil || r.Dev == "" || r.Dev == c.ex.Name {
				continue // reported by endpoints
			}
			// Static: the route to the endpoint is already too small.
			if r.MTU > 0 && r.MTU < outer {
				c.add(diag.Error, CodeMTU, "%s: the tunnel's MTU %d needs %d bytes on the way to endpoint %s, whose route has MTU %d; fix: `ip link set %s mtu %d`",
					c.peerName(p.PublicKey), mtu, outer, ep, r.MTU, c.ex.Name, r.MTU-(outer-mtu))
				continue
			}
			jobs = append(jobs, job{p, ep, outer - icmpHeader(ep), "endpoint " + ep.String(), true})
		}
	}
	res := make([]string, len(jobs))
	sem := make(chan struct{}, c.opts.Parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ok, err := c.probe.Ping(c.ctx, j.dst, 56)
			if err != nil || !ok {
				return // no answer at all: not an MTU finding
			}
			big, err := c.probe.Ping(c.ctx, j.dst, j.size)
			if err != nil || big {
				return
			}
			// Find what does fit, halving the gap (a handful of probes).
			lo, hi := 56, j.size
			for range 10 {
				if hi-lo <= 4 {
					break
				}
				mid := (lo + hi) / 2
				if ok, err := c.probe.Ping(c.ctx, j.dst, mid); err == nil && ok {
					lo = mid
				} else {
					hi = mid
				}
			}
			// The largest packet that got through, in tunnel terms: an inner
			// packet in the overlay, an encrypted one (less the overhead) on
			// the underlay.
			fits := lo + icmpHeader(j.dst)
			if j.underlay {
				fits -= j.size + icmpHeader(j.dst) - mtu
			}
			res[i] = fmt.Sprintf("%s: a %d-byte packet with don't-fragment does not get through to its %s, a %d-byte one does: the tunnel's MTU %d is too big for the path; fix: `ip link set %s mtu %d` (and MTU = %d in the spec or config, on both sides)",
				c.peerName(j.peer.PublicKey), j.size+icmpHeader(j.dst), j.target, lo+icmpHeader(j.dst), mtu, c.ex.Name, fits, fits)
		}()
	}
	wg.Wait()
	for _, m := range res {
		if m != "" {
			c.add(diag.Error, CodeMTU, "%s", m)
		}
	}
}

// icmpHeader is the IP and ICMP header around a ping's payload.
func icmpHeader(a netip.Addr) int {
	if a.Is4() {
		return 28
	}
	return 48
}

// overlayAddr is the peer's own overlay address: a single-address prefix in
// its AllowedIPs, IPv4 first.
func overlayAddr(ps []netip.Prefix) (netip.Addr, bool) {
	var v6 netip.Addr
	for _, p := range ps {
		if !p.IsSingleIP() {
			continue
		}
		if p.Addr().Is4() {
			return p.Addr(), true
		}
		if !v6.IsValid() {
			v6 = p.Addr()
		}
	}
	return v6, v6.IsValid()
}

// dns: a peer's endpoint that the config gives as a host name must still
// resolve to the address the device uses.
func (c *checker) dns() {
	for _, p := range c.dev.Peers {
		s, ok := c.ex.Endpoints[p.PublicKey]
		if !ok || !p.Endpoint.IsValid() {
			continue
		}
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			continue
		}
		h := strings.Trim(s[:i], "[]")
		if _, err := netip.ParseAddr(h); err == nil {
			continue // a literal: nothing to resolve
		}
		ctx, cancel := context.WithTimeout(c.ctx, 3*time.Second)
		addrs, err := c.probe.LookupHost(ctx, h)
		cancel()
		if err != nil {
			c.add(diag.Warning, CodeEndpointDNS, "%s: endpoint %s does not resolve now (%v); the device still sends to %s", c.peerName(p.PublicKey), s, err, p.Endpoint)
			continue
		}
		cur := p.Endpoint.Addr().Unmap()
		if slices.ContainsFunc(addrs, func(a netip.Addr) bool { return a.Unmap() == cur }) {
			continue
		}
		var fix netip.Addr
		for _, a := range addrs {
			if a.Unmap().Is4() == cur.Is4() {
				fix = a.Unmap()
				break
			}
		}
		if !fix.IsValid() && len(addrs) > 0 {
			fix = addrs[0].Unmap()
		}
		c.add(diag.Warning, CodeEndpointDNS, "%s: endpoint %s now resolves to %s, but the device sends to %s (resolved once, at up or sync); fix: `wg set %s peer %s endpoint %s`",
			c.peerName(p.PublicKey), s, joinAddrs(addrs), p.Endpoint, c.ex.Name, p.PublicKey, netip.AddrPortFrom(fix, p.Endpoint.Port()))
	}
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
