package netmodel

import (
	"fmt"
	"net/netip"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// MaxHops bounds a walk; a longer one is a forwarding loop.
const MaxHops = 8

// Fail says why a packet is lost; Delivered when it is not.
type Fail int

const (
	Delivered      Fail = iota
	NoSource            // the sender has no address of the destination's family
	NoRoute             // the host's kernel does not send it into the tunnel
	NoPeer              // no peer's AllowedIPs hold the destination
	UnknownKey          // the chosen peer's key is no host's
	SelfPeer            // the chosen peer is the host itself (a shared key)
	NoPeerBack          // the next host has no peer for the sender: no handshake
	NoEndpoint          // neither side has an endpoint for the other
	SourceRejected      // the next host's AllowedIPs for the sender don't hold the source
	NotForwarding       // a host in the middle does not forward
	Loop                // more than MaxHops
	WrongHost           // delivered, but to another host than meant
)

// Hop is one host a packet passes.
type Hop struct {
	Host int // index in Network.Hosts
	Name string
	// Peer is the index, in the host's peers, of the peer it leaves by, and
	// Prefix the AllowedIPs entry that chose that peer; -1 and zero on the
	// host that delivers it.
	Peer   int
	Prefix netip.Prefix
}

// Walk is the way of one packet, hop by hop.
type Walk struct {
	Src, Dst netip.Addr
	// Hops start at the sender; when the packet is delivered, the last hop
	// is the host that delivers it (to itself, or to a subnet behind it).
	Hops []Hop
	Fail Fail
	// Reason says why the packet is lost, for people; "" when delivered.
	Reason string
}

// Last returns the host the walk ended at.
func (w Walk) Last() int { return w.Hops[len(w.Hops)-1].Host }

// Names returns the names of the hosts the walk passed, in order.
func (w Walk) Names() []string {
	s := make([]string, len(w.Hops))
	for i, h := range w.Hops {
		s[i] = h.Name
	}
	return s
}

// Reach is the answer to "does From reach Dst on To, through whom": the way
// out and the way back of the reply.
type Reach struct {
	From, To  int
	Src, Dst  netip.Addr
	Out, Back Walk
	Fail      Fail
	// Reason says why it fails; a reason about the reply starts "reply: ".
	Reason string
}

// OK reports whether the packet and its reply both arrive.
func (r Reach) OK() bool { return r.Fail == Delivered }

// Dialer reports whether host from dials host to with peer p (p stands for to
// in from's config): by default, whether p has an Endpoint. A lab sets its
// own, which checks the endpoint leads to that host.
type Dialer func(from, to *Host, p *Peer) bool

func hasEndpoint(_, _ *Host, p *Peer) bool { return p.Endpoint != nil }

// Reach follows a packet from host from to dst, an address of host to (or of
// a subnet behind it), and its reply back.
func (n *Network) Reach(from, to int, dst netip.Addr, dials Dialer) Reach {
	if dials == nil {
		dials = hasEndpoint
	}
	r := Reach{From: from, To: to, Dst: dst}
	src, ok := n.Hosts[from].Source(dst)
	if !ok {
		r.Fail, r.Reason = NoSource, fmt.Sprintf("%s has no overlay address of %s's family", n.Hosts[from].Name, dst)
		return r
	}
	r.Src = src
	r.Out = n.Walk(from, src, dst, dials)
	if r.Out.Fail != Delivered {
		r.Fail, r.Reason = r.Out.Fail, r.Out.Reason
		return r
	}
	if got := r.Out.Last(); got != to {
		r.Fail, r.Reason = WrongHost, fmt.Sprintf("%s is delivered to %s, not %s", dst, n.Hosts[got].Name, n.Hosts[to].Name)
		return r
	}
	r.Back = n.Walk(to, dst, src, dials)
	if r.Back.Fail != Delivered {
		r.Fail, r.Reason = r.Back.Fail, "reply: "+r.Back.Reason
		return r
	}
	if got := r.Back.Last(); got != from {
		r.Fail, r.Reason = WrongHost, fmt.Sprintf("reply: %s is delivered to %s, not %s", src, n.Hosts[got].Name, n.Hosts[from].Name)
	}
	return r
}

// Walk follows a packet from src to dst that host start sends, the way the
// hosts' kernels and WireGuard handle it: the kernel's route into the tunnel,
// the cryptokey lookup, a handshake (a peer for each other on both sides and
// an endpoint on one), the receiving host's AllowedIPs for the sender holding
// src, and forwarding on every host in the middle.
func (n *Network) Walk(start int, src, dst netip.Addr, dials Dialer) Walk {
	if dials == nil {
		dials = hasEndpoint
	}
	w := Walk{Src: src, Dst: dst}
	fail := func(f Fail, format string, args ...any) Walk {
		w.Fail, w.Reason = f, fmt.Sprintf(format, args...)
		return w
	}
	cur := n.Hosts[start]
	for hop := 0; hop < MaxHops; hop++ {
		w.Hops = append(w.Hops, Hop{Host: cur.Index, Name: cur.Name, Peer: -1})
		if hop > 0 {
			if cur.Owns(dst) {
				return w
			}
			if p, ok := cur.SubnetOf(dst); ok {
				if !cur.Forwards(dst) {
					return fail(NotForwarding, "%s does not forward (no forwarding in its PostUp), so the tunnel can't reach its subnet %s", cur.Name, p)
				}
				return w
			}
			if !cur.Forwards(dst) {
				return fail(NotForwarding, "%s gets the packet for %s but does not forward (no forwarding in its PostUp)", cur.Name, dst)
			}
		}
		if !cur.Routes(dst) {
			return fail(NoRoute, "%s has no route to %s into the tunnel (no Address or AllowedIPs covers it)", cur.Name, dst)
		}
		pi, q, ok := cur.Lookup(dst)
		if !ok {
			return fail(NoPeer, "%s: no peer's AllowedIPs cover %s, so WireGuard drops it", cur.Name, dst)
		}
		w.Hops[hop].Peer, w.Hops[hop].Prefix = pi, q
		peer := &cur.Peers[pi]
		ni, ok := n.byKey[peer.PublicKey]
		if !ok {
			return fail(UnknownKey, "%s sends %s to peer %s, whose public key %s no host of the network has", cur.Name, dst, Label(peer), ShortKey(peer.PublicKey))
		}
		next := n.Hosts[ni]
		if next == cur {
			return fail(SelfPeer, "%s lists itself as a peer for %s", cur.Name, dst)
		}
		bi, ok := next.PeerFor(cur.Key)
		if !ok {
			return fail(NoPeerBack, "%s has no peer with %s's public key %s, so their handshake fails", next.Name, cur.Name, ShortKey(cur.Key))
		}
		fwd, _ := cur.PeerFor(next.Key)
		if !dials(cur, next, &cur.Peers[fwd]) && !dials(next, cur, &next.Peers[bi]) {
			return fail(NoEndpoint, "neither %s nor %s has an Endpoint for the other, so no handshake can start", cur.Name, next.Name)
		}
		if qi, _, ok := next.Lookup(src); !ok || next.Peers[qi].PublicKey != cur.Key {
			return fail(SourceRejected, "%s drops packets from %s that come from %s: its AllowedIPs for %s do not cover %s", next.Name, src, cur.Name, Label(&next.Peers[bi]), src)
		}
		cur = next
	}
	return fail(Loop, "routing loop towards %s", dst)
}

// Label names a peer for people: its name comment, or its key shortened.
func Label(p *Peer) string {
	if p.Name != "" {
		return p.Name
	}
	return "key " + ShortKey(p.PublicKey)
}

// ShortKey shortens a public key for messages: its first 8 characters and "…".
func ShortKey(k wgkey.Key) string { return k.String()[:8] + "…" }
