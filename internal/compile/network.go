package compile

import (
	"errors"
	"iter"
	"reflect"
	"slices"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// Network is a spec compiled one host at a time: every host's intent but its
// peers is made by Prepare (work in proportion to the hosts), a host's peers
// or one of them when asked (in proportion to what is asked). A controller
// that answers each agent with what changed for it never needs the million
// peers of a 1,000-host mesh at once. Compile is Prepare and every host's
// peers: the same output, peer by peer. Read-only once made: safe for
// concurrent use.
type Network struct {
	c  *compiler
	at map[string]int // index in c.hosts by name
	// heads are the hosts' intents without their peers, by index in c.hosts
	// (zero for an external host: wgnet writes it no config).
	heads []intent.Host
}

// Prepare compiles s but for its hosts' peers, and refuses what Compile
// refuses, with the same errors: it finds every key, endpoint and the hub,
// works out what the configs share, checks every preshared key and makes
// each host's intent without peers.
func Prepare(s *spec.Spec, sec spec.Secrets) (*Network, error) {
	c, err := newCompiler(s, sec)
	if err != nil {
		return nil, err
	}
	c.shared()
	c.errs = append(c.errs, c.pairErrors()...)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	n := &Network{c: c, at: make(map[string]int, len(c.hosts)), heads: make([]intent.Host, len(c.hosts))}
	for i, h := range c.hosts {
		n.at[h.Name] = i
	}
	c.each(func(i int) { n.heads[i] = c.iface(c.hosts[i]) })
	return n, nil
}

// config is the index of the host called name, when wgnet writes it a config.
func (n *Network) config(name string) (int, bool) {
	if n == nil {
		return 0, false
	}
	i, ok := n.at[name]
	return i, ok && !n.c.hosts[i].External
}

// Names yields, in order, the names of the hosts wgnet writes a config for
// (none for a nil Network).
func (n *Network) Names() iter.Seq[string] {
	return func(yield func(string) bool) {
		if n == nil {
			return
		}
		for _, h := range n.c.hosts {
			if !h.External && !yield(h.Name) {
				return
			}
		}
	}
}

// Head is the intent of the host called name without its peers (Peers nil),
// shared: read-only. False when the network has no such host or wgnet writes
// it no config (external).
func (n *Network) Head(name string) (*intent.Host, bool) {
	i, ok := n.config(name)
	if !ok {
		return nil, false
	}
	return &n.heads[i], true
}

// Peers is the peer list of the host called name, as Compile gives it (nil
// when the network has no config for it). The list is the caller's; its
// peers share read-only parts with the network.
func (n *Network) Peers(name string) []wgconf.Peer {
	i, ok := n.config(name)
	if !ok {
		return nil
	}
	return n.c.peers(i)
}

// PeerRoom is how many peers at most the config of the host called name
// lists: everyone else in a mesh and on the hub, the hub on a spoke (a
// policy may leave some out).
func (n *Network) PeerRoom(name string) int {
	h, ok := n.config(name)
	if !ok {
		return 0
	}
	return n.c.room(h)
}

// EachPeer calls f with each peer of the host called name, in the order of
// Peers, without making the list: p is the caller's only during the call
// (its slices are shared, read-only).
func (n *Network) EachPeer(name string, f func(p *wgconf.Peer)) {
	h, ok := n.config(name)
	if !ok {
		return
	}
	var p wgconf.Peer
	for o := range n.c.listed(h) {
		if p = (wgconf.Peer{}); n.c.peer(&p, h, o) {
			f(&p)
		}
	}
}

// Peer is the entry of the host called peer in the config of the host called
// host, as Compile gives it; false when there is none.
func (n *Network) Peer(host, peer string) (wgconf.Peer, bool) {
	h, ok := n.config(host)
	o, found := n.at[peer]
	if !ok || !found || !n.c.lists(h, o) {
		return wgconf.Peer{}, false
	}
	var p wgconf.Peer
	if !n.c.peer(&p, h, o) {
		return wgconf.Peer{}, false
	}
	return p, true
}

// HostChange is what differs in one host's intent between two compilations.
type HostChange struct {
	New   bool     // the old compilation has no config for the host: all of it
	Head  bool     // a field other than Peers differs
	Peers []string // the names of the peers added, removed or changed, sorted
}

// Changes is what differs between two compilations of a network: by host
// name, every host wgnet writes a config for in the new one whose intent
// differs from the old one's (a host without a config in the new one is not
// listed).
type Changes struct {
	Hosts map[string]HostChange
	// Incremental is true when the peers that changed were worked out from
	// what the peer entries are made of (work in proportion to the hosts and
	// the entries that changed), false when every host's peers were made
	// in both and compared (in proportion to the square of the hosts).
	Incremental bool
}

// Diff is what differs from old to cur, exactly as comparing Compile's
// outputs host by host and peer by peer would find (nil old: every host is
// new). Heads are always compared. The peers are worked out from their
// inputs (Changes.Incremental) unless the two compilations differ in what
// makes an entry depend on more than the two hosts of it (incremental):
// then every host's peers are made and compared.
func Diff(old, cur *Network) Changes {
	ch := Changes{Hosts: map[string]HostChange{}}
	if cur == nil {
		return ch
	}
	ch.Incremental = old != nil && incremental(old.c, cur.c)
	var moved []string // hosts whose entry differs wherever it is listed
	if ch.Incremental {
		moved = movedPeers(old.c, cur.c)
	}
	found := make([]HostChange, len(cur.c.hosts))
	cur.c.each(func(i int) {
		name := cur.c.hosts[i].Name
		oi, ok := old.config(name)
		if !ok {
			found[i] = HostChange{New: true}
			return
		}
		hc := HostChange{Head: !reflect.DeepEqual(&old.heads[oi], &cur.heads[i])}
		if ch.Incremental {
			hc.Peers = cur.peersMoved(old, oi, i, moved)
		} else {
			hc.Peers = peersChanged(old.c.peers(oi), cur.c.peers(i))
		}
		if len(hc.Peers) == 0 {
			hc.Peers = nil
		}
		found[i] = hc
	})
	for i, hc := range found {
		if hc.New || hc.Head || len(hc.Peers) > 0 {
			ch.Hosts[cur.c.hosts[i].Name] = hc
		}
	}
	return ch
}

// incremental reports whether every peer entry of cur is made of what its
// two hosts are in old and cur alone, as peersMoved reads them: the same
// topology and hub, the same preshared keys (samePairs), and in a mesh the same policy
// as resolved (the same rules over the same prefixes: whether two prefixes
// talk is the same question with the same answer). A host added that a rule
// names changes the resolved policy: then not.
func incremental(old, cur *compiler) bool {
	switch {
	case old.s.Topology != cur.s.Topology, (old.hub == nil) != (cur.hub == nil),
		old.hub != nil && old.hub.Name != cur.hub.Name:
		return false
	case cur.hub == nil && (old.policy.Present != cur.policy.Present ||
		!reflect.DeepEqual(&old.policy.Filter, &cur.policy.Filter)):
		return false
	}
	return samePairs(old, cur)
}

// samePairs reports whether every pair of hosts that old and cur both have
// uses the same preshared key in both, or none in both (a pair with a host
// added or removed is an entry of a moved host).
func samePairs(old, cur *compiler) bool {
	if len(old.psk) == 0 && len(cur.psk) == 0 {
		return true
	}
	both := make(map[string]bool, len(cur.hosts)) // the hosts old and cur both have
	for _, h := range old.hosts {
		both[h.Name] = false
	}
	for _, h := range cur.hosts {
		if _, ok := both[h.Name]; ok {
			both[h.Name] = true
		}
	}
	for _, c := range []*compiler{old, cur} {
		for pair := range c.psk {
			if !both[pair[0]] || !both[pair[1]] {
				continue
			}
			if old.psk[pair] != cur.psk[pair] || old.sec.PresharedKeys[pair] != cur.sec.PresharedKeys[pair] {
				return false
			}
		}
	}
	return true
}

// movedPeers is, sorted, the names of the hosts whose entry in a config that
// lists them directly (a mesh, the hub) differs from old to cur: those new,
// gone, or with another key, endpoint, AllowedIPs or externality.
func movedPeers(old, cur *compiler) []string {
	var out []string
	at := make(map[string]int, len(old.hosts))
	for i, h := range old.hosts {
		at[h.Name] = i
	}
	for i, h := range cur.hosts {
		oi, ok := at[h.Name]
		if !ok || !sameEntry(old, cur, oi, i) {
			out = append(out, h.Name)
		}
		delete(at, h.Name)
	}
	for name := range at {
		out = append(out, name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sameEntry reports whether old.hosts[oi] and cur.hosts[i] make the same
// direct entry: name, key, endpoint, AllowedIPs and externality.
func sameEntry(old, cur *compiler, oi, i int) bool {
	a, b := old.endpoints[oi], cur.endpoints[i]
	return old.hosts[oi].Name == cur.hosts[i].Name && old.pub[oi] == cur.pub[i] &&
		(a == nil) == (b == nil) && (a == nil || *a == *b) &&
		slices.Equal(old.direct[oi], cur.direct[i]) && old.hosts[oi].External == cur.hosts[i].External
}

// peersMoved is, under incremental, what changed in the peers of the host at
// oi in old and i in n. A spoke's one peer, the hub, is made in both and
// compared (it carries every host's routes). A host that lists everyone
// (in a mesh, or the hub): when its keepalive (in every entry) or, under a
// policy, its own prefixes (what its peers are cut to) changed, its two
// lists are made and compared; else the moved hosts but itself, each entry
// made in both and compared under a policy (two hosts that never talk have
// none, moved or not).
func (n *Network) peersMoved(old *Network, oi, i int, moved []string) []string {
	h, policy := n.c.hosts[i], n.c.hub == nil && n.c.policy.Present
	differs := func(o string) bool {
		a, okA := old.Peer(h.Name, o)
		b, okB := n.Peer(h.Name, o)
		return okA != okB || (okA && !samePeer(&a, &b))
	}
	switch {
	case n.c.hub != nil && i != n.c.hubAt:
		if differs(n.c.hub.Name) {
			return []string{n.c.hub.Name}
		}
		return nil
	case old.c.hosts[oi].Keepalive != h.Keepalive,
		policy && !slices.Equal(old.c.policy.Hosts[h.Name], n.c.policy.Hosts[h.Name]):
		return peersChanged(old.c.peers(oi), n.c.peers(i))
	case policy:
		return slices.DeleteFunc(slices.Clone(moved), func(o string) bool { return o == h.Name || !differs(o) })
	case !slices.Contains(moved, h.Name):
		return moved // shared: read-only
	}
	return slices.DeleteFunc(slices.Clone(moved), func(s string) bool { return s == h.Name })
}

// peersChanged returns the names of the peers that differ between two lists
// sorted by name (a merge walk).
func peersChanged(old, cur []wgconf.Peer) []string {
	var out []string
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && old[i].Name < cur[j].Name):
			out = append(out, old[i].Name)
			i++
		case i == len(old) || cur[j].Name < old[i].Name:
			out = append(out, cur[j].Name)
			j++
		default:
			if !samePeer(&old[i], &cur[j]) {
				out = append(out, cur[j].Name)
			}
			i, j = i+1, j+1
		}
	}
	return out
}

// samePeer reports whether two peers as the compiler makes them are equal
// (it never sets Pos).
func samePeer(a, b *wgconf.Peer) bool {
	return a.Name == b.Name && a.PublicKey == b.PublicKey && a.PresharedKey == b.PresharedKey &&
		a.PersistentKeepalive == b.PersistentKeepalive &&
		(a.Endpoint == nil) == (b.Endpoint == nil) && (a.Endpoint == nil || *a.Endpoint == *b.Endpoint) &&
		slices.Equal(a.AllowedIPs, b.AllowedIPs) && slices.Equal(a.Comments, b.Comments)
}
