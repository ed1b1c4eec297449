// Package netmodel is wgnet's one model of a set of hosts as one network: who
// holds which key, which [Peer] of a host stands for which other host (self-peers
// and repeated keys marked), each host's routing table of AllowedIPs, the
// cryptokey lookup WireGuard does on the way out, and whether a packet from one
// host reaches another, through whom, or why not. check, the lab's explanations
// and import ask it instead of each working it out again.
//
// It reads configs, never running devices: a lab or a linter adds what it knows
// on top (a lab which endpoints resolve, check which host an unknown key is
// probably). It is pure and imports intent, prefixset, wgconf and wgkey only.
package netmodel

import (
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/prefixset"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Input is what the model needs to know of one host.
type Input struct {
	Name string
	// Key is the host's public key; zero when it is not known.
	Key       wgkey.Key
	Addresses []netip.Prefix
	// Peers are the host's [Peer] sections in file order; the model keeps
	// pointers into this slice, so it must not change while the model is used.
	Peers []wgconf.Peer
	// Forward4 and Forward6 say whether the host forwards packets that arrive
	// on the tunnel.
	Forward4, Forward6 bool
	// Subnets are routed behind the host: it delivers packets for them.
	Subnets []netip.Prefix
	// Table is wg-quick's Table: "", auto and main add AllowedIPs routes.
	Table string
}

// FromConfig returns the Input of a wg-quick config: its public key from its
// PrivateKey, forwarding as its PostUp hooks turn it on, no subnets.
func FromConfig(name string, c *wgconf.Config) Input {
	in := Input{Name: name, Addresses: c.Interface.Addresses, Peers: c.Peers, Table: c.Interface.Table}
	if !c.Interface.PrivateKey.IsZero() {
		in.Key = c.Interface.PrivateKey.Public()
	}
	in.Forward4, in.Forward6 = intent.ConfigForwards(c)
	return in
}

// FromIntent returns the Input of a host's intent; key is its public key (the
// intent may hold only a key file's path).
func FromIntent(h *intent.Host, key wgkey.Key) Input {
	return Input{
		Name: h.Name, Key: key, Addresses: h.Addresses, Peers: h.Peers, Table: h.Table,
		Forward4: h.Forward.V4, Forward6: h.Forward.V6, Subnets: h.Routes,
	}
}

// Host is one host of the network.
type Host struct {
	Input
	// Index is the host's place in Network.Hosts.
	Index int
	// SameKey is the index of the first host holding this host's key when that
	// is another host (a shared private key); -1 otherwise.
	SameKey int
	// Peers are the host's peers, resolved, in file order.
	Peers []Peer
	// Table holds every AllowedIPs entry of its peers (self-peers included)
	// in file order, by prefix: its cryptokey routing table.
	Table *prefixset.Set[Route]
	// entries counts the AllowedIPs entries of its peers, valid or not (the
	// table leaves out the invalid).
	entries int
}

// Peer is one [Peer] section of a host, resolved by its public key.
type Peer struct {
	*wgconf.Peer
	// To is the index of the host holding the peer's key; -1 when no host does,
	// and for self-peers and repeated keys.
	To int
	// Self is set when the peer has its own host's key: WireGuard ignores it.
	Self bool
	// DupOf is the index, among its host's peers, of the earlier peer with the
	// same key (WireGuard merges them); -1 when it is the first.
	DupOf int
}

// Route is one AllowedIPs entry of a host: Host.Peers[Peer].AllowedIPs[Entry].
type Route struct {
	Peer  int
	Entry int
	Seq   int // position among all the host's entries, in file order
}

// Network is a set of hosts as one network.
type Network struct {
	Hosts []*Host
	byKey map[wgkey.Key]int
	// addrs holds every host's addresses (as full-length prefixes), to find
	// those inside a prefix; overlay the overlay subnets (masked Address
	// prefixes shorter than one address).
	addrs   *prefixset.Set[struct{}]
	overlay []netip.Prefix
}

// New builds the model of hosts, in the order given. The first host holding a
// key is the one peers with that key stand for.
func New(hosts []Input) *Network {
	n := &Network{Hosts: make([]*Host, len(hosts)), byKey: make(map[wgkey.Key]int, len(hosts))}
	var addrs prefixset.Builder[struct{}]
	for i, in := range hosts {
		h := &Host{Input: in, Index: i, SameKey: -1}
		if !in.Key.IsZero() {
			if first, dup := n.byKey[in.Key]; dup {
				h.SameKey = first
			} else {
				n.byKey[in.Key] = i
			}
		}
		n.Hosts[i] = h
		for _, a := range in.Addresses {
			u := a.Addr().Unmap()
			addrs.Add(netip.PrefixFrom(u, u.BitLen()), struct{}{})
			if m := a.Masked(); a.Bits() < a.Addr().BitLen() && !slices.Contains(n.overlay, m) {
				n.overlay = append(n.overlay, m)
			}
		}
	}
	n.addrs = addrs.Set()
	// Each host's peers and table are its own: built on every core.
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(n.Hosts))
	for w := range workers {
		wg.Go(func() {
			seen := map[wgkey.Key]int{}          // one host's keys no host holds so far, reused
			first := make([]int32, len(n.Hosts)) // one host's first peer for each host, reused
			var b prefixset.Builder[Route]
			for i := w; i < len(n.Hosts); i += workers {
				n.resolvePeers(n.Hosts[i], seen, first, &b)
			}
		})
	}
	wg.Wait()
	return n
}

// resolvePeers resolves h's peers by key and builds its table; seen, first
// and b are scratch. A key some host holds is looked up once, and a repeat of
// it found by that host's index (first), not in a map of the keys seen.
func (n *Network) resolvePeers(h *Host, seen map[wgkey.Key]int, first []int32, b *prefixset.Builder[Route]) {
	clear(seen)
	for i := range first {
		first[i] = -1
	}
	h.Peers = make([]Peer, len(h.Input.Peers))
	b.Reset()
	b.Grow(len(h.Peers))
	seq := 0
	for j := range h.Input.Peers {
		p := &h.Peers[j]
		*p = Peer{Peer: &h.Input.Peers[j], To: -1, DupOf: -1}
		k := p.PublicKey
		if !h.Key.IsZero() && k == h.Key {
			p.Self = true
		} else if to, held := n.byKey[k]; held {
			if f := first[to]; f >= 0 {
				p.DupOf = int(f)
			} else {
				first[to], p.To = int32(j), to
			}
		} else if f, dup := seen[k]; dup {
			p.DupOf = f
		} else {
			seen[k] = j
		}
		for e, q := range p.AllowedIPs {
			b.Add(q, Route{j, e, seq})
			seq++
		}
	}
	h.Table = b.Set()
	h.entries = seq
}

// Host returns the host called name, or nil.
func (n *Network) Host(name string) *Host {
	for _, h := range n.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// ByKey returns the index of the first host holding k.
func (n *Network) ByKey(k wgkey.Key) (int, bool) {
	i, ok := n.byKey[k]
	return i, ok
}

// Lookup returns the peer WireGuard on h sends a packet for a to (its index in
// h.Peers) and the AllowedIPs entry that decided it: the longest prefix holding
// a, and of peers with the same prefix the last one set. Self-peers don't count:
// WireGuard ignores them.
func (h *Host) Lookup(a netip.Addr) (peer int, q netip.Prefix, ok bool) {
	t := h.Table
	i, ok := t.Lookup(a)
	for ; ok && i >= 0; i = t.Parent(i) {
		rs := t.Values(i)
		for k := len(rs) - 1; k >= 0; k-- {
			if !h.Peers[rs[k].Peer].Self {
				return rs[k].Peer, t.Prefix(i), true
			}
		}
	}
	return -1, netip.Prefix{}, false
}

// PeerFor returns the index of h's first peer with key k (self-peers aside).
func (h *Host) PeerFor(k wgkey.Key) (int, bool) {
	for i := range h.Peers {
		if p := &h.Peers[i]; p.PublicKey == k && !p.Self {
			return i, true
		}
	}
	return -1, false
}

// Forwards reports whether h forwards packets of a's family.
func (h *Host) Forwards(a netip.Addr) bool {
	if a.Is4() {
		return h.Forward4
	}
	return h.Forward6
}

// Owns reports whether a is one of h's own addresses.
func (h *Host) Owns(a netip.Addr) bool {
	for _, p := range h.Addresses {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// SubnetOf returns the subnet routed behind h that holds a.
func (h *Host) SubnetOf(a netip.Addr) (netip.Prefix, bool) {
	for _, p := range h.Subnets {
		if p.Contains(a) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// Source returns the address h sends from towards dst: its first address of
// dst's family.
func (h *Host) Source(dst netip.Addr) (netip.Addr, bool) {
	for _, p := range h.Addresses {
		if p.Addr().Is4() == dst.Is4() {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// Routes reports whether h's kernel sends dst into the tunnel: a connected
// route of an Address, or an AllowedIPs route that wg-quick adds (Table unset,
// auto or main).
func (h *Host) Routes(dst netip.Addr) bool {
	for _, p := range h.Addresses {
		if p.Masked().Contains(dst) {
			return true
		}
	}
	if !TableRoutes(h.Input.Table) {
		return false
	}
	_, ok := h.Table.Lookup(dst)
	return ok
}

// TableRoutes reports whether wg-quick adds routes for AllowedIPs under Table t:
// unset, auto or main. off adds none; another table is not consulted for
// ordinary traffic without the rules wg-quick adds only for default routes.
func TableRoutes(t string) bool {
	switch strings.ToLower(t) {
	case "", "auto", "main":
		return true
	}
	return false
}
