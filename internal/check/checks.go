package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/prefixset"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// dockerBridge is the subnet of Docker's default bridge network, docker0.
var dockerBridge = netip.MustParsePrefix("172.17.0.0/16")

// checkAll runs the checks one after the other, each on every core, host by
// host (eachHost): the work is a few lookups for each of a mesh's million
// peers, spread evenly that way. The order matters: checkKeys marks the hosts
// that share a key (broken), which every report reads, and checkAllowedIPs the
// prefixes a host gives two peers (dups), which checkAddresses and
// checkForwarding read.
func (n *network) checkAll() {
	n.checkKeys()
	n.checkPairs()
	n.checkAllowedIPs(n.routedSubnets())
	n.checkAddresses()
	n.checkEndpoints()
	n.checkForwarding()
	n.checkMTU()
	n.checkModes()
	n.checkKeyHooks()
}

// checkKeys finds keys that don't identify hosts: shared private keys, peers with
// the host's own key or a key twice, and keys no host holds.
func (n *network) checkKeys() {
	first := map[[32]byte]*host{}
	for _, h := range n.hosts {
		if !h.keyed {
			continue
		}
		if o, dup := first[h.pub]; dup {
			n.report(CodeDupKey, h.file, h.keyLine(wgconf.KeyPrivateKey), []*host{o, h},
				"%s has the same private key as %s (%s): their peers can't tell them apart; generate a new one (wg genkey) and update its peers",
				h.name, o.name, where(o.file, o.keyLine(wgconf.KeyPrivateKey)))
			continue
		}
		first[h.pub] = h
	}
	// Hosts that share a key can't be told apart: what else could be said about
	// them would be guesswork until the key is fixed.
	for _, h := range n.hosts {
		if h.keyed && first[h.pub] != h {
			h.broken, first[h.pub].broken = true, true
		}
	}
	keyless := false
	for _, h := range n.hosts {
		keyless = keyless || !h.keyed
	}
	n.eachHost(func(n *network, h *host) {
		for _, p := range h.peers {
			if p.to != nil && p.how == "" && !p.self && p.dupOf == nil {
				continue // resolved by its key: none of the cases below
			}
			k := p.p.PublicKey
			switch {
			case k.IsZero():
				// the parser reported it
			case p.self:
				n.report(CodeSelfPeer, h.file, p.keyLine(wgconf.KeyPublicKey), []*host{h},
					"%s has %s's own public key: wg ignores it; remove it or put the other host's key here", p.label(), h.name)
			case p.dupOf != nil:
				also := ""
				if p.to != nil && p.to != p.dupOf.to && p.to.keyed {
					also = fmt.Sprintf("; %s, whose key is %s", n.evidence(p), p.to.pub)
				}
				n.report(CodeDupPeer, h.file, p.keyLine(wgconf.KeyPublicKey), []*host{h, p.to},
					"%s has the same public key as %s: wg merges them into one peer and the later settings win%s",
					p.label(), p.dupOf.label(), also)
			case p.how != "" && p.to.keyed:
				n.report(CodeUnknownPeerKey, h.file, p.keyLine(wgconf.KeyPublicKey), []*host{h, p.to},
					"%s: public key %s is held by no host of this set; %s, whose key is %s",
					p.label(), k, n.evidence(p), p.to.pub)
			case p.to == nil && !keyless && !intent.CommentedExternal(p.p.Comments):
				// a peer the spec calls external is meant to be outside the set
				n.report(CodePeerNotInSet, h.file, p.keyLine(wgconf.KeyPublicKey), []*host{h},
					"%s: public key %s is held by no host of this set and nothing points to one; its config is not in the set, so this peer was not cross-checked",
					p.label(), k)
			}
		}
	})
}

// evidence explains why a peer with an unknown key is probably its host.
func (n *network) evidence(p *peer) string {
	by := "address"
	switch p.how {
	case "name":
		by = "its name"
	case "endpoint":
		by = "its endpoint " + p.p.Endpoint.String()
	}
	who := p.to.name
	if len(p.to.addrs) > 0 {
		who += " (" + addrList(p.to.addrs) + ")"
	}
	return fmt.Sprintf("by %s it is probably %s", by, who)
}

// checkPairs checks each pair of hosts: both sides list each other, with the same
// preshared key and an Endpoint on at least one side, and the topology's pairs peer.
func (n *network) checkPairs() {
	n.eachHost(func(n *network, a *host) {
		for _, b := range n.hosts[a.idx+1:] {
			pa, pb := a.peerOf(b), b.peerOf(a)
			switch {
			case pa == nil && pb == nil:
				if !a.incomplete && !b.incomplete {
					n.checkMissingPeer(a, b)
				}
			case pa == nil:
				n.asymmetric(b, pb, a)
			case pb == nil:
				n.asymmetric(a, pa, b)
			default:
				if !pa.pskUnknown && !pb.pskUnknown && (pa.hasPSK || pb.hasPSK) { // none on either side: the same
					n.checkPSK(a, pa, b, pb)
				}
				if !pa.hasEndpoint && !pb.hasEndpoint && !pa.epUnknown && !pb.epUnknown {
					n.noEndpoint(a, pa, b, pb)
				}
			}
		}
	})
}

// noEndpoint reports that neither a nor b has an Endpoint for the other, at the
// peer where one that others already use belongs.
func (n *network) noEndpoint(a *host, pa *peer, b *host, pb *peer) {
	hint := "set Endpoint = HOST:PORT on the side that can reach the other"
	if e := n.knownEndpoint(b); e != "" {
		hint = fmt.Sprintf("others reach %s at %s: add Endpoint = %s here", b.name, e, e)
	} else if e := n.knownEndpoint(a); e != "" {
		hint = fmt.Sprintf("others reach %s at %s: add Endpoint = %s here", a.name, e, e)
		a, pa, b, pb = b, pb, a, pa
	}
	n.report(CodeNoEndpoint, a.file, pa.line(), []*host{a, b},
		"neither %s nor %s has an Endpoint for the other (%s here, %s), so they never handshake; %s",
		a.name, b.name, pa.label(), where(b.file, pb.line()), hint)
}

// knownEndpoint returns the Endpoint other configs use for h, when they agree.
func (n *network) knownEndpoint(h *host) string {
	e := ""
	for _, o := range n.hosts {
		if p := o.peerOf(h); p != nil && p.p.Endpoint != nil {
			if e != "" && e != p.p.Endpoint.String() {
				return ""
			}
			e = p.p.Endpoint.String()
		}
	}
	return e
}

func (n *network) checkMissingPeer(a, b *host) {
	if !n.explicit || n.apart(a.name, b.name) {
		return
	}
	switch {
	case n.topology == TopologyMesh:
		n.report(CodeMissingPeer, a.file, a.ifaceLine(), []*host{a, b},
			"%s and %s do not peer, but the topology is mesh: add a [Peer] for %s here and one for %s to %s",
			a.name, b.name, b.name, a.name, b.file)
	case n.topology == TopologyHub && (a == n.hub || b == n.hub):
		spoke, hub := a, b
		if a == n.hub {
			spoke, hub = b, a
		}
		n.report(CodeMissingPeer, spoke.file, spoke.ifaceLine(), []*host{a, b},
			"%s does not peer with the hub %s: add a [Peer] for %s here and one for %s to %s",
			spoke.name, hub.name, hub.name, spoke.name, hub.file)
	}
}

// asymmetric reports that a lists b (as p) but b does not list a.
func (n *network) asymmetric(a *host, p *peer, b *host) {
	if b.incomplete {
		return // the [Peer] for a may be on a line that did not parse
	}
	if !a.keyed {
		for _, q := range b.peers {
			if q.to == nil {
				return // one of b's unresolved peers may well be a
			}
		}
	}
	fix := fmt.Sprintf("add a [Peer] for %s to %s", a.name, b.file)
	if a.keyed {
		fix = fmt.Sprintf("add a [Peer] with PublicKey = %s to %s", a.pub, b.file)
	}
	n.report(CodeAsymmetricPeer, a.file, p.line(), []*host{a, b},
		"%s lists %s as %s, but %s has no [Peer] for %s, so it drops %s's handshakes; %s, or remove this one",
		a.name, b.name, p.label(), b.name, a.name, a.name, fix)
}

func (n *network) checkPSK(a *host, pa *peer, b *host, pb *peer) {
	ka, kb := pa.p.PresharedKey, pb.p.PresharedKey
	if ka == kb {
		return
	}
	line := pa.keyLine(wgconf.KeyPresharedKey)
	if ka.IsZero() {
		line = pa.line()
	}
	var msg string
	switch {
	case ka.IsZero():
		msg = fmt.Sprintf("%s has no PresharedKey for %s, but %s has one for %s (%s)",
			a.name, b.name, b.name, a.name, where(b.file, pb.keyLine(wgconf.KeyPresharedKey)))
	case kb.IsZero():
		msg = fmt.Sprintf("%s has a PresharedKey for %s, but %s has none for %s (%s)",
			a.name, b.name, b.name, a.name, where(b.file, pb.line()))
	default:
		msg = fmt.Sprintf("%s and %s use different preshared keys for each other (here and %s)",
			a.name, b.name, where(b.file, pb.keyLine(wgconf.KeyPresharedKey)))
	}
	n.report(CodePSKMismatch, a.file, line, []*host{a, b},
		"%s: the handshake fails; use the same key on both sides", msg)
}

// routed is a subnet in some peer's AllowedIPs that holds no host's address.
type routed struct {
	prefix netip.Prefix
	owner  *host // the host it ends at (its config doesn't route it on); nil if unknown
	via    *host // the host whose config has it
	line   int
}

// ownAddressBack reports whether single, one address that w's owner routes to
// w's via host, is that host's own address inside the wider prefix it routes
// back: x routes the overlay (10.9.0.0/31) to y, y routes x's address
// (10.9.0.1/32) to x. With Address in x's file the address is known and the
// overlay is no routed subnet; a file without one (`wgnet render -o wg`, the
// form `wg setconf` reads) only shows it this way, most plainly on a /31 or
// /127 link, where no third host makes the overlay a relayed one.
func ownAddressBack(single, w routed) bool {
	return single.prefix.IsSingleIP() && w.prefix.Contains(single.prefix.Addr()) && w.prefix.Bits() < single.prefix.Bits() &&
		single.owner == w.via && single.via == w.owner && len(w.via.cfg.Interface.Addresses) == 0
}

// routedSubnets collects the routed subnets, reports those that overlap each other
// or the overlay, or Docker's bridge, and returns the owned ones.
func (n *network) routedSubnets() []routed {
	var all, owned []routed
	type key struct {
		owner  *host
		prefix netip.Prefix
	}
	seenOwned := map[key]bool{}
	to := func(h, j int) int {
		if p := n.hosts[h].peers[j]; p.to != nil {
			return p.to.idx
		}
		return -1
	}
	for _, m := range n.model.RoutedSubnets(to) {
		h := n.hosts[m.Via]
		r := routed{prefix: m.Prefix, via: h, line: h.peers[m.Peer].aipLine(m.Entry)}
		if m.Owner >= 0 {
			r.owner = n.hosts[m.Owner]
		}
		all = append(all, r)
		if k := (key{r.owner, r.prefix}); r.owner != nil && !seenOwned[k] {
			seenOwned[k] = true
			owned = append(owned, r)
		}
	}
	overlapping(owned, func(r routed) netip.Prefix { return r.prefix }, func(o, r routed) {
		if o.owner == r.owner || ownAddressBack(o, r) || ownAddressBack(r, o) {
			return
		}
		n.report(CodeRouteOverlap, r.via.file, r.line, []*host{r.via, r.owner, o.owner, o.via},
			"subnet %s routed to %s overlaps %s routed to %s (%s): %s",
			r.prefix, r.owner.name, o.prefix, o.owner.name, where(o.via.file, o.line), winner(r, o))
	})
	for _, r := range owned {
		for _, ov := range n.overlay {
			if ov.Overlaps(r.prefix) {
				n.report(CodeRouteOverlap, r.via.file, r.line, []*host{r.via, r.owner},
					"subnet %s routed to %s overlaps the overlay subnet %s: pick a routed subnet outside it",
					r.prefix, r.owner.name, ov)
			}
		}
	}
	// Docker's bridge: overlay subnets, host addresses and every routed subnet, once each.
	seen := map[netip.Prefix]bool{}
	for _, h := range n.hosts {
		for i, a := range h.cfg.Interface.Addresses {
			q := a.Masked()
			if !seen[q] && q.Overlaps(dockerBridge) {
				n.report(CodeDockerOverlap, h.file, h.addrLine(i), []*host{h},
					"Address %s overlaps Docker's default bridge %s: on a host running Docker, the overlay collides with docker0", a, dockerBridge)
			}
			seen[q] = true
		}
	}
	for _, r := range all {
		if !seen[r.prefix] && r.prefix.Overlaps(dockerBridge) {
			to := ""
			if r.owner != nil {
				to = " routed to " + r.owner.name
			}
			n.report(CodeDockerOverlap, r.via.file, r.line, []*host{r.via, r.owner},
				"subnet %s%s overlaps Docker's default bridge %s: on a host running Docker, packets for it go to docker0", r.prefix, to, dockerBridge)
		}
		seen[r.prefix] = true
	}
	return owned
}

func winner(a, b routed) string {
	switch {
	case a.prefix == b.prefix:
		return "a config with both sends it to whichever peer was set last; route it to one host only"
	case a.prefix.Bits() > b.prefix.Bits():
		return fmt.Sprintf("packets for %s go to %s (longest prefix), the rest of %s to %s; make them disjoint", a.prefix, a.owner.name, b.prefix, b.owner.name)
	default:
		return fmt.Sprintf("packets for %s go to %s (longest prefix), the rest of %s to %s; make them disjoint", b.prefix, b.owner.name, a.prefix, a.owner.name)
	}
}

// holdsHost reports whether q contains some host's address.
func (n *network) holdsHost(q netip.Prefix) bool {
	return len(n.addrsIn(q)) > 0
}

// isRouted reports whether q is a routed subnet (the network model's rule).
func (n *network) isRouted(q netip.Prefix) bool { return n.model.IsSubnet(q) }

// overlapping calls f(a, b) for every two elements of xs whose prefixes
// overlap (the same prefix included), a before b in xs, without comparing every
// two: a prefix overlaps only those that contain it or that it contains.
func overlapping[T any](xs []T, prefix func(T) netip.Prefix, f func(a, b T)) {
	var b prefixset.Builder[int]
	for i, x := range xs {
		b.Add(prefix(x), i)
	}
	s := b.Set()
	pair := func(i, j int) {
		if i > j {
			i, j = j, i
		}
		f(xs[i], xs[j])
	}
	for d := 0; d < s.Len(); d++ {
		vs := s.Values(d)
		for k, i := range vs {
			for _, j := range vs[k+1:] {
				pair(i, j)
			}
		}
		for a := s.Parent(d); a >= 0; a = s.Parent(a) {
			for _, i := range s.Values(a) {
				for _, j := range vs {
					pair(i, j)
				}
			}
		}
	}
}

type entry struct {
	p    *peer
	q    netip.Prefix
	line int
	seq  int // order in the file
}

// checkAllowedIPs finds the same or overlapping prefixes on different peers of one
// config. Subnets that end at two different hosts are route-overlap's.
func (n *network) checkAllowedIPs(owned []routed) {
	type key struct {
		prefix netip.Prefix
		owner  *host
	}
	isOwned := map[key]bool{}
	for _, r := range owned {
		isOwned[key{r.prefix, r.owner}] = true
	}
	ownedBy := func(q netip.Prefix, h *host) bool { return isOwned[key{q, h}] }
	n.eachHost(func(n *network, h *host) {
		samePeer := func(a, b entry) bool {
			return a.p == b.p || a.p.p.PublicKey == b.p.p.PublicKey // dup-peer's
		}
		routeOverlap := func(a, b entry) bool {
			return a.p.to != nil && b.p.to != nil && a.p.to != b.p.to &&
				ownedBy(a.q, a.p.to) && ownedBy(b.q, b.p.to)
		}
		// entries returns the i-th prefix's entries in file order; wg ignores
		// self-peers.
		rt := h.routes
		entries := func(i int) []entry {
			var es []entry
			for _, r := range rt.Values(i) {
				if p := h.peerAt(r); !p.self {
					es = append(es, entry{p, rt.Prefix(i), p.aipLine(r.Entry), r.Seq})
				}
			}
			return es
		}
		for i := 0; i < rt.Len(); i++ {
			if len(rt.Values(i)) == 1 && rt.Parent(i) < 0 {
				continue // alone: the common case, and nothing to say
			}
			es := entries(i)
			n.dupAllowedIP(h, es, samePeer, routeOverlap)
			if rt.Prefix(i).Bits() == 0 {
				continue // default routes: default-route's
			}
			for a := rt.Parent(i); a >= 0; a = rt.Parent(a) {
				if rt.Prefix(a).Bits() == 0 {
					continue
				}
				for _, x := range entries(a) {
					for _, y := range es {
						if samePeer(x, y) || routeOverlap(x, y) {
							continue
						}
						a, b := x, y
						if b.seq < a.seq {
							a, b = b, a
						}
						long, short := a, b
						if b.q.Bits() > a.q.Bits() {
							long, short = b, a
						}
						n.report(CodeOverlapAllowedIP, h.file, b.line, []*host{h},
							"%s of %s overlaps %s of %s: %s gets %s (longest prefix), %s the rest of %s",
							b.q, b.p.label(), a.q, a.p.label(), long.p.label(), long.q, short.p.label(), short.q)
					}
				}
			}
		}
	})
}

// dupAllowedIP reports one prefix given to several peers of h (es: its entries
// in file order) and marks it in h.dups.
func (n *network) dupAllowedIP(h *host, es []entry, samePeer, routeOverlap func(a, b entry) bool) {
	for i, e := range es {
		var same []entry
		for _, o := range es[i+1:] {
			if !samePeer(e, o) && !routeOverlap(e, o) &&
				!slices.ContainsFunc(same, func(s entry) bool { return samePeer(s, o) }) {
				same = append(same, o)
			}
		}
		for _, o := range es[i+1:] {
			if !samePeer(e, o) {
				h.dups[e.q] = true
			}
		}
		if len(same) > 0 {
			last := same[len(same)-1]
			losers := []string{e.p.label()}
			for _, s := range same[:len(same)-1] {
				losers = append(losers, s.p.label())
			}
			n.report(CodeDupAllowedIP, h.file, last.line, []*host{h},
				"%s is in AllowedIPs of %s and %s: wg keeps it only on the last one set, %s, silently (`wg show` gives the other no route for it); remove it from all but one",
				e.q, strings.Join(losers, ", "), last.p.label(), last.p.label())
			return // said once per prefix
		}
	}
}

// checkAddresses checks overlay addresses: unique, and routed to their host by
// every config that peers with it, and reachable at all from every host.
func (n *network) checkAddresses() {
	owner := map[netip.Addr]*host{}
	dup := map[netip.Addr]bool{}
	for _, h := range n.hosts {
		for i, a := range h.addrs {
			if o, ok := owner[a]; ok && o != h {
				dup[a] = true
				n.report(CodeDupAddress, h.file, h.addrLine(i), []*host{o, h},
					"address %s is also %s's (%s): give each host its own address",
					a, o.name, where(o.file, o.addrLine(slices.Index(o.addrs, a))))
				continue
			}
			owner[a] = h
		}
	}
	n.eachHost(func(n *network, a *host) {
		for _, p := range a.peers {
			b := p.to
			if b == nil || a.peerOf(b) != p || a.routesUnknown {
				continue
			}
			var uncovered []netip.Addr
			var elsewhere []string
			for _, x := range b.addrs {
				if dup[x] || !a.hasFamily(x) {
					continue
				}
				got, q := a.lookup(x)
				switch {
				case got == nil:
					uncovered = append(uncovered, x)
				case got.to != b && !a.dups[q]:
					elsewhere = append(elsewhere, fmt.Sprintf("%s goes to %s by %s", x, got.label(), q))
				}
			}
			if len(uncovered) == 0 && len(elsewhere) == 0 {
				continue
			}
			var msg []string
			if len(uncovered) > 0 {
				var add []string
				for _, x := range uncovered {
					add = append(add, netip.PrefixFrom(x, x.BitLen()).String())
				}
				msg = append(msg, fmt.Sprintf("AllowedIPs do not cover %s's address %s, so %s can't send to %s and drops what it sends from there; add %s",
					b.name, addrList(uncovered), a.name, b.name, strings.Join(add, ", ")))
			}
			if len(elsewhere) > 0 {
				msg = append(msg, fmt.Sprintf("%s's address %s instead; give this peer the more specific prefix", b.name, strings.Join(elsewhere, ", ")))
			}
			n.report(CodeAddressNotRouted, a.file, p.keyLine(wgconf.KeyAllowedIPs), []*host{a, b},
				"%s: %s", p.label(), strings.Join(msg, "; "))
		}
	})
	n.checkNoRoute(dup)
}

// checkNoRoute finds hosts that have no route at all to another host: no peer for
// it and no peer whose AllowedIPs cover its address (as when spokes are scoped to
// the hub's own address).
func (n *network) checkNoRoute(dup map[netip.Addr]bool) {
	n.eachHost(func(n *network, a *host) {
		if a.routesUnknown || a.incomplete {
			return // a route may be on a line that did not parse
		}
		if slices.ContainsFunc(n.hosts, func(c *host) bool { return n.explicitMissing(a, c) }) {
			return // missing-peer's
		}
		var unreachable []*host
		var missing []string
		for _, c := range n.hosts {
			if c == a || n.peered(a, c) || n.apart(a.name, c.name) { // asymmetric-peer's, if not both
				continue
			}
			var lost []string
			for _, x := range c.addrs {
				if dup[x] || !a.hasFamily(x) {
					continue
				}
				if got, _ := a.lookup(x); got == nil {
					lost = append(lost, x.String())
					missing = append(missing, netip.PrefixFrom(x, x.BitLen()).String())
				}
			}
			if len(lost) > 0 {
				unreachable = append(unreachable, c)
			}
		}
		if len(unreachable) == 0 {
			return
		}
		line, fix := a.ifaceLine(), "add a [Peer] for them, or their addresses to a relay's AllowedIPs"
		if n.hub != nil && a != n.hub {
			if p := a.peerOf(n.hub); p != nil {
				line = p.keyLine(wgconf.KeyAllowedIPs)
				fix = fmt.Sprintf("to go through the hub, add %s (or the overlay subnet) to AllowedIPs of %s", strings.Join(missing, ", "), p.label())
			}
		}
		n.report(CodeNoRoute, a.file, line, append([]*host{a}, unreachable...),
			"%s has no route to %s: no peer's AllowedIPs cover %s; %s",
			a.name, names(unreachable), strings.Join(missing, ", "), fix)
	})
}

// explicitMissing reports whether missing-peer covers the pair a, c.
func (n *network) explicitMissing(a, c *host) bool {
	if !n.explicit || n.peered(a, c) || n.apart(a.name, c.name) {
		return false
	}
	return n.topology == TopologyMesh || n.topology == TopologyHub && (a == n.hub || c == n.hub)
}

// checkEndpoints checks what depends on who dials whom: routing loops, ports,
// default routes on servers and keepalives from behind NAT.
func (n *network) checkEndpoints() {
	n.eachHost(func(n *network, a *host) {
		n.checkEndpointLoop(a)
		var nat []*peer // the peers it dials without keepalive, when nobody dials it
		dialled := n.dialled(a)
		auto := autoTable(a)
		for _, p := range a.peers {
			if p.hasEndpoint && p.to != nil {
				if lp := p.to.cfg.Interface.ListenPort; lp != nil && *lp != p.epPort {
					n.report(CodeEndpointPort, a.file, p.keyLine(wgconf.KeyEndpoint), []*host{a, p.to},
						"%s: Endpoint port %d is not %s's ListenPort %d (%s): handshakes go to a port nobody listens on, unless a NAT forwards %d to %d",
						p.label(), p.epPort, p.to.name, *lp, where(p.to.file, p.to.keyLine(wgconf.KeyListenPort)), p.epPort, *lp)
				}
				if !dialled && p.noKeepalive {
					nat = append(nat, p)
				}
			}
			if auto && p.hasDefault {
				n.checkDefaultRoutes(a, p, dialled)
			}
		}
		if dialled {
			if a.cfg.Interface.ListenPort == nil && !a.cfg.Interface.Pos.Unknown(wgconf.KeyListenPort) {
				port := "51820"
				if e := n.knownEndpoint(a); e != "" {
					port = e[strings.LastIndex(e, ":")+1:]
				}
				n.report(CodeNoListenPort, a.file, a.ifaceLine(), []*host{a},
					"%s is dialled by its peers but sets no ListenPort, so wg picks a random port at every start; add ListenPort = %s", a.name, port)
			}
		} else if len(nat) > 0 && !n.dialledUnknown(a) {
			labels := make([]string, len(nat))
			for i, p := range nat {
				labels[i] = p.label()
			}
			n.report(CodeKeepaliveNAT, a.file, nat[0].line(), []*host{a},
				"no config has an Endpoint for %s, so it is behind NAT or unreachable, yet it sets no PersistentKeepalive for %s: once the NAT forgets the mapping, they can't reach it until it sends again; add PersistentKeepalive = 25",
				a.name, strings.Join(labels, ", "))
		}
	})
}

// checkDefaultRoutes reports a /0 in p's AllowedIPs on a: a server others dial
// may lock itself out (default-route); on a client it is a full tunnel, said so
// (full-tunnel).
func (n *network) checkDefaultRoutes(a *host, p *peer, dialled bool) {
	for i, q := range p.p.AllowedIPs {
		switch {
		case q.Bits() != 0:
		case dialled:
			n.report(CodeDefaultRoute, a.file, p.aipLine(i), []*host{a},
				"%s is a server others dial, and %s on %s sends all its traffic into the tunnel, replies to SSH included: you may lock yourself out; route only the subnets you need",
				a.name, q, p.label())
		default:
			via := strings.TrimPrefix(p.label(), "peer ")
			if i := strings.Index(via, " (line"); i > 0 {
				via = via[:i]
			}
			via = strings.Trim(via, `"`)
			n.report(CodeFullTunnel, a.file, p.aipLine(i), []*host{a},
				"%s on %s makes a full tunnel: wg-quick (and wgnet up) send all of %s's traffic through %s, with fwmark 51820 (or FwMark) and policy rules that keep the tunnel's own packets out of it; %s must forward and masquerade it, and %s reaches nothing else while the tunnel is down",
				q, p.label(), a.name, via, via, a.name)
		}
	}
}

// autoTable reports whether wg-quick adds routes for h's AllowedIPs to the main
// table (a /0 to a table of its own): Table unset or "auto".
func autoTable(h *host) bool {
	t := strings.ToLower(h.cfg.Interface.Table)
	return t == "" || t == "auto"
}

// checkEndpointLoop finds AllowedIPs that cover an Endpoint of the same config.
// wg-quick keeps a /0 from looping (fwmark and its own routing table); any longer
// prefix goes into the main table and catches the tunnel's own packets. With
// Table = off or a table of the user's own, routing is the user's: not checked.
func (n *network) checkEndpointLoop(a *host) {
	if !autoTable(a) || a.cfg.Interface.Pos.Unknown(wgconf.KeyTable) {
		return
	}
	for _, p := range a.peers {
		if p.epRoute < 0 {
			continue // no Endpoint, a name, or no route holds it
		}
		ea, _ := p.p.Endpoint.Addr()
		ea = ea.Unmap()
		for i := int(p.epRoute); i >= 0; i = a.routes.Parent(i) { // every prefix holding ea
			if a.routes.Prefix(i).Bits() == 0 {
				continue
			}
			for _, r := range a.routes.Values(i) {
				o := a.peerAt(r)
				q := o.p.AllowedIPs[r.Entry]
				if o == p {
					n.report(CodeEndpointLoop, a.file, o.aipLine(r.Entry), []*host{a},
						"%s: AllowedIPs %s cover its own Endpoint %s: the encrypted packets would be routed into the tunnel itself; leave %s out of AllowedIPs",
						p.label(), q, ea, ea)
				} else {
					n.report(CodeEndpointLoop, a.file, o.aipLine(r.Entry), []*host{a},
						"AllowedIPs %s of %s cover the Endpoint %s of %s: the handshake packets for it would go into the tunnel to %s; leave %s out of AllowedIPs",
						q, o.label(), ea, p.label(), o.label(), ea)
				}
			}
		}
	}
}

// checkForwarding finds hosts that must forward but don't turn forwarding on: a
// peer's AllowedIPs for them hold more than their own address (other hosts'
// addresses, routed subnets, a default route). A warning, not an error:
// forwarding is often on for the whole host outside the file (/etc/sysctl.conf,
// the classic tutorial setup), which no file shows. A file without Address (the
// `wg setconf` form, `wgnet render -o wg`) is set up by something else, its
// forwarding too: it gets no finding.
func (n *network) checkForwarding() {
	// Why each host must forward, by family: the first reason in file order.
	// One pass over every config's peers finds the same first reasons as
	// asking host by host, without visiting all peers per host: each config's
	// reasons found on every core, then taken in the order of the configs.
	type reasons struct {
		v4, v6 string
		// exit4 is set when a peer routes 0.0.0.0/0 to it: its clients'
		// traffic leaves by the uplink and the replies come in there.
		exit4 bool
	}
	type reason struct {
		x     *host
		v6    bool
		why   string
		exit4 bool
	}
	found := make([][]reason, len(n.hosts)) // by config (host idx), in file order
	parallelFor(n.workers, len(n.hosts), func(_, lo, hi int) {
		for _, a := range n.hosts[lo:hi] {
			for _, p := range a.peers {
				x := p.to
				if x == nil || p.onlyAddrOf(x) {
					continue // none, or x's own address alone: no reason (beyond)
				}
				for _, q := range p.p.AllowedIPs {
					q = q.Masked()
					if !n.beyond(q, x, a) || slices.ContainsFunc(found[a.idx], func(r reason) bool { return r.x == x && r.v6 == q.Addr().Is6() }) {
						continue // not a reason, or not a first one
					}
					found[a.idx] = append(found[a.idx], reason{x, q.Addr().Is6(), fmt.Sprintf("%s routes %s to it", a.name, q), q.Bits() == 0})
				}
			}
		}
	})
	need := make(map[*host]*reasons, len(n.hosts))
	for _, h := range n.hosts {
		need[h] = &reasons{}
	}
	for _, rs := range found {
		for _, f := range rs {
			switch r := need[f.x]; {
			case !f.v6 && r.v4 == "":
				r.v4, r.exit4 = f.why, f.exit4
			case f.v6 && r.v6 == "":
				r.v6 = f.why
			}
		}
	}
	for _, x := range n.hosts {
		if x.cfg.Interface.Pos.Unknown(wgconf.KeyPreUp) || x.cfg.Interface.Pos.Unknown(wgconf.KeyPostUp) {
			continue // a hook that did not parse may turn it on
		}
		if len(x.cfg.Interface.Addresses) == 0 && !x.cfg.Interface.Pos.Unknown(wgconf.KeyAddress) {
			continue // no Address: not brought up by this file
		}
		need4, need6 := need[x].v4, need[x].v6
		f4, f6 := forwards(x.cfg)
		var whys, confirms, fixes []string
		if need4 != "" && !f4 {
			whys = append(whys, "IPv4 ("+need4+")")
			confirms = append(confirms, "`sysctl net.ipv4.ip_forward`")
			if need[x].exit4 {
				// Forwarding on the tunnel alone forwards what comes in
				// through it; the replies from the internet come in on the
				// uplink and would be dropped.
				fixes = append(fixes, "PostUp = sysctl -q -w net.ipv4.ip_forward=1 (the whole host: the replies come in on the uplink)")
			} else {
				fixes = append(fixes, "PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1")
			}
		}
		if need6 != "" && !f6 {
			whys = append(whys, "IPv6 ("+need6+")")
			confirms = append(confirms, "`sysctl net.ipv6.conf.all.forwarding`")
			fixes = append(fixes, "PostUp = sysctl -q -w net.ipv6.conf.all.forwarding=1")
		}
		if len(whys) == 0 {
			continue
		}
		role := "relays traffic for its peers"
		if x == n.hub {
			role = "is the hub"
		}
		n.report(CodeHubNoForwarding, x.file, x.ifaceLine(), []*host{x},
			"%s %s, but no PreUp/PostUp turns on forwarding for %s: unless it is on outside this file (/etc/sysctl.conf; confirm on the host with %s, 1 is on), handshakes work yet packets through it are dropped; add %s (and accept them in the FORWARD chain)",
			x.name, role, strings.Join(whys, " or "), strings.Join(confirms, " and "), strings.Join(fixes, " and "))
	}
}

// beyond reports whether q, in a's AllowedIPs for x, holds more than x's own
// addresses: a default route, another host's address, or a routed subnet.
func (n *network) beyond(q netip.Prefix, x, a *host) bool {
	switch {
	case a.dups[q]:
		return false // dup-allowedip's
	case q.Bits() == 0:
		return true
	case q.IsSingleIP() && slices.Contains(x.addrs, q.Addr()):
		return false // x's own address: what a mesh routes, a million times
	}
	for _, ha := range n.addrsIn(q) {
		if ha.h != x && ha.h != a && !slices.Contains(x.addrs, ha.a) { // not dup-address's
			return true
		}
	}
	if slices.ContainsFunc(x.addrs, q.Contains) {
		return false
	}
	return n.isRouted(q)
}

// forwards reports whether c's PreUp or PostUp hooks turn on forwarding, as far
// as intent.HooksForward (the one reader of hook text) understands them.
func forwards(c *wgconf.Config) (v4, v6 bool) {
	v4, v6 = intent.HooksForward(c.Interface.PostUp)
	p4, p6 := intent.HooksForward(c.Interface.PreUp)
	return v4 || p4, v6 || p6
}

// maxSafeMTU is the largest MTU that fits a 1500-byte underlay over IPv6 (80
// bytes of WireGuard, UDP and IPv6 headers).
const maxSafeMTU = 1420

// checkMTU finds MTUs too big for a standard underlay, and MTUs that differ.
func (n *network) checkMTU() {
	var set []*host
	for _, h := range n.hosts {
		if mtu := h.cfg.Interface.MTU; mtu != 0 {
			set = append(set, h)
			if mtu > maxSafeMTU {
				n.report(CodeMTU, h.file, h.keyLine(wgconf.KeyMTU), []*host{h},
					"MTU %d needs an underlay MTU of at least %d on every path; over a standard 1500-byte path large packets are lost (ping works, TLS and SSH stall); use %d or less, or leave MTU out",
					mtu, mtu+80, maxSafeMTU)
			}
		}
	}
	if len(set) < 2 {
		return
	}
	lo := slices.MinFunc(set, func(a, b *host) int { return a.cfg.Interface.MTU - b.cfg.Interface.MTU })
	var all []string
	var first *host
	for _, h := range set {
		mtu := h.cfg.Interface.MTU
		all = append(all, h.name+" "+strconv.Itoa(mtu))
		if first == nil && mtu != lo.cfg.Interface.MTU && mtu <= maxSafeMTU {
			first = h
		}
	}
	if first == nil {
		return
	}
	n.report(CodeMTU, first.file, first.keyLine(wgconf.KeyMTU), set,
		"MTUs differ between hosts (%s): the host with the larger MTU sends packets the smaller path may not carry; set the same MTU everywhere (%d)",
		strings.Join(all, ", "), lo.cfg.Interface.MTU)
}

// checkModes finds config files others can read.
func (n *network) checkModes() {
	if n.modes == nil {
		return
	}
	for _, h := range n.hosts {
		m, ok := n.modes[h.file]
		if !ok || m.Perm()&0o077 == 0 {
			continue
		}
		what := "it holds a private key"
		if !h.keyed {
			what = "wg-quick warns about it"
		}
		n.report(CodeWorldReadable, h.file, 0, nil,
			"mode %04o lets group or others read it, and %s; chmod 600 %s", m.Perm(), what, h.file)
	}
}

// checkKeyHooks finds hooks that load a private key in any form but the one
// wgnet itself writes and reads back (intent.KeyHookPath): the plain PostUp
// `wg set %i private-key PATH`, PATH plain data. import refuses the others, and
// up refuses to run a PostUp of that kind whose path is not plain data: what
// follows the path (`; curl ... | sh`) runs as root. Recognising hook forms is
// intent's alone.
func (n *network) checkKeyHooks() {
	for _, h := range n.hosts {
		ic := &h.cfg.Interface
		for _, hk := range []struct {
			key   string
			lines []string
		}{{wgconf.KeyPreUp, ic.PreUp}, {wgconf.KeyPostUp, ic.PostUp}, {wgconf.KeyPreDown, ic.PreDown}, {wgconf.KeyPostDown, ic.PostDown}} {
			for _, l := range hk.lines {
				if !intent.IsKeyHook(l) {
					continue
				}
				_, plain := intent.KeyHookPath(l)
				switch {
				case plain && hk.key == wgconf.KeyPostUp:
					continue
				case plain:
					n.report(CodeKeyHook, h.file, h.keyLine(hk.key), []*host{h},
						"%s = %.80q loads the private key outside PostUp; load it in PostUp (wgnet import and up take it only there)", hk.key, l)
				default:
					n.report(CodeKeyHook, h.file, h.keyLine(hk.key), []*host{h},
						"%s = %.80q loads a private key from a path that is not plain data (%s): whatever follows it runs as root; wgnet import and up refuse it", hk.key, l, wgkey.PathRule)
				}
			}
		}
	}
}
