package check

import (
	"cmp"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/netmodel"
	"github.com/wgnet/wgnet/internal/prefixset"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// host is one config of the network with what the checks derive from it.
type host struct {
	name  string
	file  string // where its findings go: the config's file, else its name
	cfg   *wgconf.Config
	pub   wgkey.Key // derived from PrivateKey
	keyed bool      // pub is known: from PrivateKey, or given in Input.PublicKeys
	addrs []netip.Addr
	// broken is set when the host shares its private key with another: nothing
	// said about it could be told apart from the other until the key is fixed.
	broken bool
	// incomplete is set when a bad line may have hidden one of its peers: a
	// line lost outside any known section or under an unreadable key, or a
	// [Peer] whose key did not parse and that no evidence resolved.
	incomplete bool
	// routesUnknown is set when a bad line may have hidden one of its
	// AllowedIPs: what it routes where is then not known in full.
	routesUnknown bool
	// dups are the prefixes its config has on two peers (dup-allowedip's): other
	// checks don't pile on them.
	dups  map[netip.Prefix]bool
	peers []*peer
	// idx is the host's place in network.hosts.
	idx int
	// peerFor holds, by host idx, the first of its peers that stands for that
	// host (peerOf); nil where none does.
	peerFor []*peer
	// m is the host in the network model: its peers resolved by key and its
	// routing table (every AllowedIPs entry of its peers, self-peers included,
	// in file order), for lookups and overlaps without comparing every two.
	m *netmodel.Host
	// routes is m.Table.
	routes *prefixset.Set[netmodel.Route]
}

// peerAt returns the peer of h that holds routing table entry r.
func (h *host) peerAt(r netmodel.Route) *peer { return h.peers[r.Peer] }

// peer is one [Peer] of a host, resolved to the host it stands for.
type peer struct {
	p *wgconf.Peer
	// to is the host holding the peer's public key or, when no host does, the host
	// it evidently stands for (how says by what); nil when unknown.
	to  *host
	how string // "" = by key; "name", "endpoint", "address" = a guess
	// self is set when the peer has its own host's key; dupOf points to the
	// earlier peer with the same key. Neither resolves by key.
	self  bool
	dupOf *peer
	// What checkPairs and checkEndpoints ask of every peer, read off the
	// config in one pass in file order (newNetwork) rather than in a pass of
	// their own, or pair by pair all over the heap: in a 1,000-host mesh each
	// pass that touches the million wgconf.Peer structs costs about 0.1 s.
	hasPSK, hasEndpoint   bool
	pskUnknown, epUnknown bool   // wgconf.Pos.Unknown of PresharedKey, Endpoint
	epPort                uint16 // the Endpoint's port
	// epRoute is the entry of its host's table that routes the Endpoint's
	// address (the longest prefix holding it); -1 when none does or the
	// Endpoint is no IP address.
	epRoute     int32
	noKeepalive bool // PersistentKeepalive is off, and no bad line hid it
	hasDefault  bool // a /0 in AllowedIPs
	// only4 is the address when AllowedIPs is that one IPv4 address (a
	// mesh's peers; hasOnly4 then), what checkForwarding asks.
	only4    [4]byte
	hasOnly4 bool
	// bad is set when a line of the section did not parse (Pos.Bad).
	bad bool
}

// read sets what p, a peer of h (its table built), keeps of c (see peer).
func (p *peer) read(h *host, c *wgconf.Peer) {
	p.p = c
	p.hasPSK = !c.PresharedKey.IsZero()
	p.epRoute = -1
	if e := c.Endpoint; e != nil {
		p.hasEndpoint, p.epPort = true, e.Port
		if a, ok := e.Addr(); ok {
			if i, ok := h.routes.Lookup(a.Unmap()); ok {
				p.epRoute = int32(i)
			}
		}
	}
	p.noKeepalive = c.PersistentKeepalive == 0
	p.bad = c.Pos.Bad != nil
	if p.bad {
		p.pskUnknown, p.epUnknown = c.Pos.Unknown(wgconf.KeyPresharedKey), c.Pos.Unknown(wgconf.KeyEndpoint)
		p.noKeepalive = p.noKeepalive && !c.Pos.Unknown(wgconf.KeyPersistentKeepalive)
	}
	p.hasDefault = slices.ContainsFunc(c.AllowedIPs, func(q netip.Prefix) bool { return q.Bits() == 0 })
	if len(c.AllowedIPs) == 1 && c.AllowedIPs[0].IsSingleIP() && c.AllowedIPs[0].Addr().Is4() {
		p.only4, p.hasOnly4 = c.AllowedIPs[0].Addr().As4(), true
	}
}

// onlyAddrOf reports whether p's AllowedIPs are one IPv4 address of x's.
func (p *peer) onlyAddrOf(x *host) bool {
	return p.hasOnly4 && slices.ContainsFunc(x.addrs, func(a netip.Addr) bool { return a.Is4() && a.As4() == p.only4 })
}

type network struct {
	hosts    []*host // sorted by file, then name
	model    *netmodel.Network
	byName   map[string]*host
	topology string // as given or inferred: hub, mesh or ""
	explicit bool   // topology was given
	hub      *host  // the hub, when topology is hub
	modes    map[string]os.FileMode
	findings diag.List
	apart    func(a, b string) bool // Input.Apart, never nil

	overlay []netip.Prefix // overlay subnets: masked Address prefixes shorter than one address
	// addrs holds every host's addresses, sorted, to find those in a prefix.
	addrs []hostAddr
	// endpointUnknown holds the hosts that a peer with an Endpoint that did not
	// parse stands for (nil: a peer that stands for no known host).
	endpointUnknown map[*host]bool
	// workers is how many goroutines a check may run at once (eachHost).
	workers int
}

// hostAddr is one address of a host.
type hostAddr struct {
	a netip.Addr
	h *host
}

func newNetwork(in Input) *network { return newNetworkOn(in, runtime.GOMAXPROCS(0)) }

// newNetworkOn is newNetwork with its work, and the checks' (eachHost), on up
// to workers goroutines; one runs everything in order.
func newNetworkOn(in Input, workers int) *network {
	n := &network{byName: map[string]*host{}, modes: in.Modes, apart: in.Apart, workers: workers}
	if n.apart == nil {
		n.apart = func(string, string) bool { return false }
	}
	var cfgs []*wgconf.Config
	var files []string
	for _, c := range in.Configs {
		if c != nil {
			cfgs = append(cfgs, c)
			files = append(files, c.Interface.Pos.File)
		}
	}
	derived := HostNames(files)
	// Deriving a public key is a scalar multiplication: a thousand of them
	// are worth every core.
	pubs := make([]wgkey.Key, len(cfgs))
	parallelFor(workers, len(cfgs), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			if k := cfgs[i].Interface.PrivateKey; !k.IsZero() {
				pubs[i] = k.Public()
			}
		}
	})
	for i, c := range cfgs {
		h := &host{cfg: c, name: c.Name, file: c.Interface.Pos.File, dups: map[netip.Prefix]bool{}}
		if h.name == "" {
			h.name = derived[i]
		}
		if h.name == "" {
			h.name = "config " + strconv.Itoa(i+1) // neither a name nor a file
		}
		if h.file == "" {
			h.file = h.name
		}
		if !c.Interface.PrivateKey.IsZero() {
			h.pub, h.keyed = pubs[i], true
		} else if k := in.PublicKeys[h.name]; !k.IsZero() {
			h.pub, h.keyed = k, true
		}
		for _, a := range c.Interface.Addresses {
			h.addrs = append(h.addrs, a.Addr().Unmap())
			if a.Bits() < a.Addr().BitLen() {
				m := a.Masked()
				if !slices.Contains(n.overlay, m) {
					n.overlay = append(n.overlay, m)
				}
			}
		}
		n.hosts = append(n.hosts, h)
	}
	slices.SortStableFunc(n.hosts, func(a, b *host) int {
		return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.name, b.name))
	})
	n.model = netmodel.New(modelInputs(n.hosts))
	for i, h := range n.hosts {
		h.idx = i
		h.m = n.model.Hosts[i]
		h.routes = h.m.Table
		if _, dup := n.byName[h.name]; !dup {
			n.byName[h.name] = h
		}
	}
	parallelFor(workers, len(n.hosts), func(_, lo, hi int) {
		for _, h := range n.hosts[lo:hi] {
			slab := make([]peer, len(h.cfg.Peers)) // one allocation, not one per peer
			h.peers = make([]*peer, 0, len(h.cfg.Peers))
			for j := range h.cfg.Peers {
				slab[j].read(h, &h.cfg.Peers[j])
				h.peers = append(h.peers, &slab[j])
			}
		}
	})
	n.resolve()
	n.index()
	n.markUnknown()
	n.inferTopology(in.Topology, in.Hub)
	return n
}

// modelInputs returns what the network model needs of hosts: key, addresses,
// peers and forwarding as check reads them (PreUp hooks count too).
func modelInputs(hosts []*host) []netmodel.Input {
	ins := make([]netmodel.Input, len(hosts))
	for i, h := range hosts {
		c := h.cfg
		ins[i] = netmodel.Input{Name: h.name, Addresses: c.Interface.Addresses, Peers: c.Peers, Table: c.Interface.Table}
		if h.keyed {
			ins[i].Key = h.pub
		}
		ins[i].Forward4, ins[i].Forward6 = forwards(c)
	}
	return ins
}

// index builds what the checks look things up in: each host's peers by the host
// they stand for, and the sorted addresses of all hosts.
func (n *network) index() {
	parallelFor(n.workers, len(n.hosts), func(_, lo, hi int) {
		for _, h := range n.hosts[lo:hi] {
			h.peerFor = make([]*peer, len(n.hosts))
			for _, p := range h.peers {
				if p.to != nil && h.peerFor[p.to.idx] == nil {
					h.peerFor[p.to.idx] = p
				}
			}
		}
	})
	for _, h := range n.hosts {
		for _, a := range h.addrs {
			n.addrs = append(n.addrs, hostAddr{a, h})
		}
	}
	slices.SortStableFunc(n.addrs, func(x, y hostAddr) int { return x.a.Compare(y.a) })
}

// addrsIn returns the addresses of hosts inside q, sorted.
func (n *network) addrsIn(q netip.Prefix) []hostAddr {
	q = q.Masked()
	lo, _ := slices.BinarySearchFunc(n.addrs, q.Addr(), func(x hostAddr, a netip.Addr) int { return x.a.Compare(a) })
	hi := lo
	for hi < len(n.addrs) && q.Contains(n.addrs[hi].a) {
		hi++
	}
	return n.addrs[lo:hi]
}

// markUnknown records what bad lines (wgconf.Pos.Bad) leave unknown, so that the
// checks that depend on a value that did not parse stay silent rather than
// echo the syntax error, and every other check still runs.
func (n *network) markUnknown() {
	n.endpointUnknown = map[*host]bool{}
	// The hosts each host's peers with an unknown Endpoint stand for: found
	// host by host on every core, then put together.
	dialledUnknown := make([][]*host, len(n.hosts))
	parallelFor(n.workers, len(n.hosts), func(_, lo, hi int) {
		for _, h := range n.hosts[lo:hi] {
			_, lost := h.cfg.Interface.Pos.Bad[""]
			h.incomplete = lost
			h.routesUnknown = lost
			for _, p := range h.peers {
				if !p.bad {
					continue // every line parsed: nothing unknown
				}
				pos := &p.p.Pos
				if p.to == nil && pos.Unknown(wgconf.KeyPublicKey) {
					h.incomplete = true
				}
				if !p.self && pos.Unknown(wgconf.KeyAllowedIPs) {
					h.routesUnknown = true
				}
				if pos.Unknown(wgconf.KeyEndpoint) {
					// Some host may be dialled that looks as if nobody dials it.
					dialledUnknown[h.idx] = append(dialledUnknown[h.idx], p.to)
				}
			}
		}
	})
	for _, hs := range dialledUnknown {
		for _, h := range hs {
			n.endpointUnknown[h] = true
		}
	}
}

// dialledUnknown reports whether a bad line may have hidden an Endpoint for h.
func (n *network) dialledUnknown(h *host) bool {
	return n.endpointUnknown[h] || n.endpointUnknown[nil]
}

// HostNames returns the host name of each config file, as wgconf.HostNames does.
func HostNames(files []string) []string { return wgconf.HostNames(files) }

// resolve finds the host each peer stands for: by public key (the network
// model's), or else by the evidence a wrong key leaves (the peer's name comment,
// an endpoint others use for a host, the host address its AllowedIPs cover best).
func (n *network) resolve() {
	// By key, host by host on every core.
	unresolved := make([]bool, len(n.hosts)) // by host idx: a peer is left to guess
	parallelFor(n.workers, len(n.hosts), func(_, lo, hi int) {
		for _, h := range n.hosts[lo:hi] {
			for j, p := range h.peers {
				mp := &h.m.Peers[j]
				switch {
				case mp.Self:
					p.self = true
				case mp.DupOf >= 0:
					p.dupOf = h.peers[mp.DupOf]
					unresolved[h.idx] = true
				case mp.To >= 0:
					p.to = n.hosts[mp.To]
				default:
					unresolved[h.idx] = true
				}
			}
		}
	})
	if !slices.Contains(unresolved, true) {
		return // every peer by key: nothing to guess (a million peers of a mesh)
	}
	endpoints := map[wgconf.Endpoint]*host{} // endpoint → host, nil when ambiguous
	for _, h := range n.hosts {
		for _, p := range h.peers {
			if to := p.to; to != nil {
				if e := p.p.Endpoint; e != nil {
					if prev, seen := endpoints[*e]; seen && prev != to {
						endpoints[*e] = nil
					} else {
						endpoints[*e] = to
					}
				}
			}
		}
	}
	parallelFor(n.workers, len(n.hosts), func(_, lo, hi int) {
		for _, h := range n.hosts[lo:hi] {
			if !unresolved[h.idx] {
				continue
			}
			for _, p := range h.peers {
				if p.to != nil || p.self {
					continue
				}
				p.to, p.how = n.guess(h, p.p, endpoints)
				if d := p.dupOf; d != nil && (p.to == nil || p.to == d.to) {
					p.to, p.how = d.to, "" // the same host in two sections
				}
			}
		}
	})
}

func (n *network) guess(from *host, p *wgconf.Peer, endpoints map[wgconf.Endpoint]*host) (*host, string) {
	if h, ok := n.byName[p.Name]; ok && h != from {
		return h, "name"
	}
	if p.Endpoint != nil {
		if h := endpoints[*p.Endpoint]; h != nil && h != from {
			return h, "endpoint"
		}
	}
	var best *host
	bestBits, tie := -1, false
	for _, h := range n.hosts {
		if h == from {
			continue
		}
		for _, a := range h.addrs {
			for _, q := range p.AllowedIPs {
				if !q.Masked().Contains(a) {
					continue
				}
				switch {
				case q.Bits() > bestBits:
					best, bestBits, tie = h, q.Bits(), false
				case q.Bits() == bestBits && h != best:
					tie = true
				}
			}
		}
	}
	if best == nil || tie {
		return nil, ""
	}
	return best, "address"
}

// inferTopology records the topology: as given, or a hub when one host peers with
// every other while some pair of others does not peer, or a mesh when all do.
func (n *network) inferTopology(topology, hub string) {
	n.topology, n.explicit = topology, topology != ""
	degrees := make([]int, len(n.hosts)) // by host idx
	parallelFor(n.workers, len(n.hosts), func(_, lo, hi int) {
		for _, h := range n.hosts[lo:hi] {
			for _, o := range n.hosts {
				if h != o && n.peered(h, o) {
					degrees[h.idx]++
				}
			}
		}
	})
	degree := func(h *host) int { return degrees[h.idx] }
	pickHub := func() *host {
		if h, ok := n.byName[hub]; ok {
			return h
		}
		var best *host
		for _, h := range n.hosts {
			if best == nil || degree(h) > degree(best) {
				best = h
			}
		}
		return best
	}
	if n.explicit {
		if n.topology == TopologyHub {
			n.hub = pickHub()
		}
		return
	}
	all := len(n.hosts) - 1
	full := 0
	for _, h := range n.hosts {
		if degree(h) == all {
			full++
		}
	}
	switch {
	case len(n.hosts) < 2:
	case full == len(n.hosts):
		n.topology = TopologyMesh
	case full == 1 && len(n.hosts) >= 3:
		n.topology, n.hub = TopologyHub, pickHub()
	}
}

// peerOf returns a's peer standing for b, or nil.
func (a *host) peerOf(b *host) *peer {
	if b == nil {
		return nil
	}
	return a.peerFor[b.idx]
}

// peered reports whether a or b lists the other.
func (n *network) peered(a, b *host) bool {
	return a.peerOf(b) != nil || b.peerOf(a) != nil
}

// dialled reports whether some config has an Endpoint for h.
func (n *network) dialled(h *host) bool {
	for _, o := range n.hosts {
		if p := o.peerOf(h); p != nil && p.p.Endpoint != nil {
			return true
		}
	}
	return false
}

// report adds a finding about hosts at file:line, unless one of them is broken.
func (n *network) report(code, file string, line int, hosts []*host, format string, args ...any) {
	for _, h := range hosts {
		if h != nil && h.broken {
			return
		}
	}
	c, ok := diag.Lookup(code)
	if !ok || c.By != "check" {
		panic("check: code not in diag's table: " + code) // programming error, caught by tests
	}
	n.findings = append(n.findings, diag.Diagnostic{
		File: file, Line: line, Severity: c.Severity, Code: code,
		Message: fmt.Sprintf(format, args...),
	})
}

// label names p for messages: `peer "s2" (line 12)`.
func (p *peer) label() string {
	name := p.p.Name
	if name == "" && p.to != nil && p.how == "" {
		name = p.to.name
	}
	var s string
	if name != "" {
		s = "peer " + strconv.Quote(name)
	} else {
		s = "peer " + abbrev(p.p.PublicKey)
	}
	if p.p.Pos.Line > 0 {
		s += " (line " + strconv.Itoa(p.p.Pos.Line) + ")"
	}
	return s
}

func (p *peer) line() int { return p.p.Pos.Line }

// keyLine returns the line of key in p's section, or the section's line.
func (p *peer) keyLine(key string) int { return p.p.Pos.KeyLine(key) }

// aipLine returns the line of p's i-th AllowedIPs entry.
func (p *peer) aipLine(i int) int {
	if i < len(p.p.Pos.AllowedIPs) && p.p.Pos.AllowedIPs[i] > 0 {
		return p.p.Pos.AllowedIPs[i]
	}
	return p.keyLine(wgconf.KeyAllowedIPs)
}

func (h *host) ifaceLine() int { return h.cfg.Interface.Pos.Line }

func (h *host) keyLine(key string) int { return h.cfg.Interface.Pos.KeyLine(key) }

func (h *host) addrLine(i int) int {
	pos := h.cfg.Interface.Pos
	if i < len(pos.Address) && pos.Address[i] > 0 {
		return pos.Address[i]
	}
	return pos.KeyLine(wgconf.KeyAddress)
}

// where formats file:line for messages about another file.
func where(file string, line int) string {
	if line > 0 {
		return file + ":" + strconv.Itoa(line)
	}
	return file
}

// abbrev shortens a public key for a label; messages that ask for a fix print it whole.
func abbrev(k wgkey.Key) string {
	s := k.String()
	return s[:8] + "…"
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func names(hs []*host) string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = h.name
	}
	return strings.Join(s, ", ")
}

// lookup returns the peer of h that wg sends a packet for a to, and the prefix that
// matched: the longest prefix, and the last peer set when two peers have the same one.
func (h *host) lookup(a netip.Addr) (*peer, netip.Prefix) {
	if i, q, ok := h.m.Lookup(a); ok {
		return h.peers[i], q
	}
	return nil, netip.Prefix{}
}

// hasFamily reports whether h has an address of a's family.
func (h *host) hasFamily(a netip.Addr) bool {
	for _, b := range h.addrs {
		if b.Is4() == a.Is4() {
			return true
		}
	}
	return false
}
