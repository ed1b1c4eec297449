package lab

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netmodel"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// explainer says why a probe failed by asking the network model (netmodel) how
// the configs handle the packet, hop by hop. It reads only the configs and the
// lab's endpoint map, never the running devices.
type explainer struct {
	net   *netmodel.Network
	dials netmodel.Dialer
}

func (l *Lab) explainer() *explainer {
	l.mu.Lock()
	defer l.mu.Unlock()
	ins := make([]netmodel.Input, len(l.hosts))
	addrs := make([]netip.AddrPort, len(l.hosts))
	for i, h := range l.hosts {
		ins[i] = netmodel.FromIntent(&h.hc, h.key)
		ins[i].Subnets = nil
		for _, t := range h.subnets {
			ins[i].Subnets = append(ins[i].Subnets, t.Subnet)
		}
		addrs[i] = h.node.Addr()
	}
	resolve := l.resolve
	return &explainer{
		net: netmodel.New(ins),
		// A handshake starts only where an endpoint leads to the other host's port.
		dials: func(from, to *netmodel.Host, p *netmodel.Peer) bool {
			ap, ok := resolve(*p.Peer)
			return ok && ap == addrs[to.Index]
		},
	}
}

// explain says why a probe from host from to t came out as it did (ok: it worked).
func (ex *explainer) explain(from string, t Target, ok bool) string {
	if ok {
		return "reachable, although no policy allows it"
	}
	src, owner := ex.net.Host(from), ex.net.Host(t.Host)
	if src == nil || owner == nil {
		return ""
	}
	r := ex.net.Reach(src.Index, owner.Index, t.Addr, ex.dials)
	if !r.OK() {
		return r.Reason
	}
	return "the configs allow this path both ways; the probe got no answer in time"
}

// route returns the hosts a packet from host from to address dst passes, per the
// configs: from, any hosts that forward it, and the one that delivers it.
func (ex *explainer) route(from string, dst netip.Addr) ([]string, error) {
	src := ex.net.Host(from)
	if src == nil {
		return nil, fmt.Errorf("no host %q", from)
	}
	sa, ok := src.Source(dst)
	if !ok {
		return nil, fmt.Errorf("%s has no overlay address of %s's family", from, dst)
	}
	w := ex.net.Walk(src.Index, sa, dst, ex.dials)
	if w.Fail != netmodel.Delivered {
		return nil, errors.New(w.Reason)
	}
	return w.Names(), nil
}

func peerFor(cfg *intent.Host, k wgkey.Key) (*wgconf.Peer, bool) {
	for i := range cfg.Peers {
		if cfg.Peers[i].PublicKey == k {
			return &cfg.Peers[i], true
		}
	}
	return nil, false
}

func peerLabel(p *wgconf.Peer) string { return netmodel.Label(&netmodel.Peer{Peer: p}) }
