package lab

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// explainer follows a packet through the configs, hop by hop, the way the hosts'
// kernels and WireGuard would handle it, to say why a probe failed. It reads only
// the configs and the lab's endpoint map, never the running devices.
type explainer struct {
	hosts   []exHost
	resolve func(wgconf.Peer) (netip.AddrPort, bool)
}

type exHost struct {
	name    string
	key     wgkey.Key
	cfg     *intent.Host
	addr    netip.AddrPort // loopback
	subnets []netip.Prefix
	fwd4    bool
	fwd6    bool
}

// maxHops bounds a walk; a longer one is a forwarding loop.
const maxHops = 8

func (l *Lab) explainer() *explainer {
	l.mu.Lock()
	defer l.mu.Unlock()
	ex := &explainer{resolve: l.resolve}
	for _, h := range l.hosts {
		e := exHost{name: h.hc.Name, key: h.key, cfg: &h.hc, addr: h.node.Addr()}
		e.fwd4, e.fwd6 = h.hc.Forward.V4, h.hc.Forward.V6
		for _, t := range h.subnets {
			e.subnets = append(e.subnets, t.Subnet)
		}
		ex.hosts = append(ex.hosts, e)
	}
	return ex
}

func (ex *explainer) host(name string) *exHost {
	for i := range ex.hosts {
		if ex.hosts[i].name == name {
			return &ex.hosts[i]
		}
	}
	return nil
}

func (ex *explainer) byKey(k wgkey.Key) *exHost {
	for i := range ex.hosts {
		if ex.hosts[i].key == k {
			return &ex.hosts[i]
		}
	}
	return nil
}

func (h *exHost) forwards(a netip.Addr) bool {
	if a.Is4() {
		return h.fwd4
	}
	return h.fwd6
}

// ownAddr reports whether a is one of h's overlay addresses.
func (h *exHost) ownAddr(a netip.Addr) bool {
	for _, p := range h.cfg.Addresses {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

func (h *exHost) subnetOf(a netip.Addr) (netip.Prefix, bool) {
	for _, p := range h.subnets {
		if p.Contains(a) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// source returns the address h sends from towards dst: its first overlay address
// of dst's family.
func (h *exHost) source(dst netip.Addr) (netip.Addr, bool) {
	for _, p := range h.cfg.Addresses {
		if p.Addr().Is4() == dst.Is4() {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// routes reports whether h's kernel sends dst into the tunnel: a connected route
// of an Address, or an AllowedIPs route wg-quick added.
func (h *exHost) routes(dst netip.Addr) bool {
	for _, p := range h.cfg.Addresses {
		if p.Masked().Contains(dst) {
			return true
		}
	}
	if !tableRoutes(h.cfg) {
		return false
	}
	for _, p := range h.cfg.Peers {
		for _, a := range p.AllowedIPs {
			if a.Contains(dst) {
				return true
			}
		}
	}
	return false
}

// cryptokey returns the peer WireGuard picks for dst: the longest matching
// AllowedIPs prefix; on equal prefixes the last one set wins.
func cryptokey(cfg *intent.Host, dst netip.Addr) (*wgconf.Peer, bool) {
	var best *wgconf.Peer
	bits := -1
	for i := range cfg.Peers {
		for _, a := range cfg.Peers[i].AllowedIPs {
			if a.Contains(dst) && a.Bits() >= bits {
				best, bits = &cfg.Peers[i], a.Bits()
			}
		}
	}
	return best, best != nil
}

func peerFor(cfg *intent.Host, k wgkey.Key) (*wgconf.Peer, bool) {
	for i := range cfg.Peers {
		if cfg.Peers[i].PublicKey == k {
			return &cfg.Peers[i], true
		}
	}
	return nil, false
}

func peerLabel(p *wgconf.Peer) string {
	if p.Name != "" {
		return p.Name
	}
	return "key " + shortKey(p.PublicKey)
}

// endpointTo reports whether from has a usable endpoint for to.
func (ex *explainer) endpointTo(from, to *exHost) bool {
	p, ok := peerFor(from.cfg, to.key)
	if !ok {
		return false
	}
	ap, ok := ex.resolve(*p)
	return ok && ap == to.addr
}

// walk follows a packet from src to dst, starting at host start, and returns the
// hosts it passes, ending with the one that delivers it, or why it is lost.
func (ex *explainer) walk(start *exHost, src, dst netip.Addr) ([]*exHost, string) {
	cur := start
	path := []*exHost{start}
	for hop := 0; hop < maxHops; hop++ {
		if hop > 0 {
			path = append(path, cur)
			if cur.ownAddr(dst) {
				return path, ""
			}
			if p, ok := cur.subnetOf(dst); ok {
				if !cur.forwards(dst) {
					return nil, fmt.Sprintf("%s does not forward (no forwarding in its PostUp), so the tunnel can't reach its subnet %s", cur.name, p)
				}
				return path, ""
			}
			if !cur.forwards(dst) {
				return nil, fmt.Sprintf("%s gets the packet for %s but does not forward (no forwarding in its PostUp)", cur.name, dst)
			}
		}
		if !cur.routes(dst) {
			return nil, fmt.Sprintf("%s has no route to %s into the tunnel (no Address or AllowedIPs covers it)", cur.name, dst)
		}
		peer, ok := cryptokey(cur.cfg, dst)
		if !ok {
			return nil, fmt.Sprintf("%s: no peer's AllowedIPs cover %s, so WireGuard drops it", cur.name, dst)
		}
		next := ex.byKey(peer.PublicKey)
		if next == nil {
			return nil, fmt.Sprintf("%s sends %s to peer %s, whose public key %s no host of the network has", cur.name, dst, peerLabel(peer), shortKey(peer.PublicKey))
		}
		if next == cur {
			return nil, fmt.Sprintf("%s lists itself as a peer for %s", cur.name, dst)
		}
		back, ok := peerFor(next.cfg, cur.key)
		if !ok {
			return nil, fmt.Sprintf("%s has no peer with %s's public key %s, so their handshake fails", next.name, cur.name, shortKey(cur.key))
		}
		if !ex.endpointTo(cur, next) && !ex.endpointTo(next, cur) {
			return nil, fmt.Sprintf("neither %s nor %s has an Endpoint for the other, so no handshake can start", cur.name, next.name)
		}
		if q, ok := cryptokey(next.cfg, src); !ok || q.PublicKey != cur.key {
			return nil, fmt.Sprintf("%s drops packets from %s that come from %s: its AllowedIPs for %s do not cover %s", next.name, src, cur.name, peerLabel(back), src)
		}
		cur = next
	}
	return nil, fmt.Sprintf("routing loop towards %s", dst)
}

// explain says why a probe from host from to t came out as it did (ok: it worked).
func (ex *explainer) explain(from string, t Target, ok bool) string {
	if ok {
		return "reachable, although no policy allows it"
	}
	src := ex.host(from)
	owner := ex.host(t.Host)
	if src == nil || owner == nil {
		return ""
	}
	sa, has := src.source(t.Addr)
	if !has {
		return fmt.Sprintf("%s has no overlay address of %s's family", from, t.Addr)
	}
	path, why := ex.walk(src, sa, t.Addr)
	if path == nil {
		return why
	}
	if got := path[len(path)-1]; got != owner {
		return fmt.Sprintf("%s is delivered to %s, not %s", t.Addr, got.name, owner.name)
	}
	path, why = ex.walk(owner, t.Addr, sa)
	if path == nil {
		return "reply: " + why
	}
	if back := path[len(path)-1]; back != src {
		return fmt.Sprintf("reply: %s is delivered to %s, not %s", sa, back.name, src.name)
	}
	return "the configs allow this path both ways; the probe got no answer in time"
}

// route returns the hosts a packet from host from to address dst passes, per the
// configs: from, any hosts that forward it, and the one that delivers it.
func (ex *explainer) route(from string, dst netip.Addr) ([]string, error) {
	src := ex.host(from)
	if src == nil {
		return nil, fmt.Errorf("no host %q", from)
	}
	sa, ok := src.source(dst)
	if !ok {
		return nil, fmt.Errorf("%s has no overlay address of %s's family", from, dst)
	}
	path, why := ex.walk(src, sa, dst)
	if path == nil {
		return nil, errors.New(why)
	}
	var names []string
	for _, h := range path {
		names = append(names, h.name)
	}
	return names, nil
}
