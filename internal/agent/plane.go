package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sync"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// DataPlane is where the agent's intent becomes an interface. UpPlane is the
// real host's (the reconcile engine of wgnet up and sync); tests give the
// in-process lab or a fake.
type DataPlane interface {
	// Apply makes interface name what h says, changing only what differs;
	// a failure leaves the interface as it was. It neither changes h nor
	// keeps it (or its peers) after it returns: the agent patches the same
	// peers, in place, into its next intent.
	Apply(ctx context.Context, name string, h *intent.Host) error
	// Peers reads the interface's peers and counters (nil, nil when it is not up).
	Peers(ctx context.Context, name string) ([]device.PeerState, error)
	// Remove takes the interface down (leaving the network).
	Remove(ctx context.Context, name string) error
}

// UpPlane is the real host: up.Reconcile, the engine `wgnet up` and `wgnet
// sync` use, on the kernel module or the userspace daemon (which outlives the
// agent, so the network stays up while the agent restarts).
type UpPlane struct {
	Options up.SyncOptions

	mu         sync.Mutex
	last       map[string]netip.Addr // the address each endpoint host name last resolved to
	unresolved []UnresolvedPeer      // the peers Apply configured without their endpoint
}

// Apply implements DataPlane. Endpoint host names are resolved first: a peer
// whose name has never resolved is configured without an endpoint (it can
// still dial in: WireGuard learns a peer's address from its packets) and is
// named by Unresolved, so that one name does not stop every other change; the
// next Apply (the agent's periodic reconcile) resolves it again.
func (p *UpPlane) Apply(ctx context.Context, name string, h *intent.Host) error {
	h, resolved, unresolved := p.endpoints(ctx, h)
	p.mu.Lock()
	p.unresolved = unresolved
	p.mu.Unlock()
	opts := p.Options
	opts.Resolve = func(ctx context.Context, host string) (netip.Addr, error) {
		if a, ok := resolved[host]; ok {
			return a, nil
		}
		return p.resolve(ctx, host)
	}
	_, err := up.Reconcile(ctx, up.Request{Name: name, Host: h, Source: "wgnet agent"}, opts)
	return err
}

// Unresolved names the peers the last Apply configured without an endpoint
// (Since unset); nil: none.
func (p *UpPlane) Unresolved() []UnresolvedPeer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.unresolved)
}

// endpoints resolves h's endpoint host names once each. It returns h, or a
// copy whose peers with a name that never resolved have no endpoint, the
// addresses found, and those peers.
func (p *UpPlane) endpoints(ctx context.Context, h *intent.Host) (*intent.Host, map[string]netip.Addr, []UnresolvedPeer) {
	resolved := map[string]netip.Addr{}
	failed := map[string]error{}
	var unresolved []UnresolvedPeer
	var peers []wgconf.Peer // h.Peers copied at the first peer to change
	for i := range h.Peers {
		e := h.Peers[i].Endpoint
		if e == nil {
			continue
		}
		if _, literal := e.Addr(); literal {
			continue
		}
		if _, ok := resolved[e.Host]; !ok && failed[e.Host] == nil {
			if a, err := p.resolve(ctx, e.Host); err != nil {
				failed[e.Host] = err
			} else {
				resolved[e.Host] = a
			}
		}
		if err := failed[e.Host]; err != nil {
			if peers == nil {
				peers = slices.Clone(h.Peers)
			}
			peers[i].Endpoint = nil
			unresolved = append(unresolved, UnresolvedPeer{Peer: h.Peers[i].Name, Host: e.Host, Error: err.Error()})
		}
	}
	if peers != nil {
		c := *h
		c.Peers = peers
		h = &c
	}
	return h, resolved, unresolved
}

// resolve resolves an endpoint host name (Options.Resolve; nil: the system's
// resolver) and remembers the address. When the name does not resolve, the
// address it had last is kept (and said): a plan fails as a whole, so a name
// failing for a while would otherwise stop every change the agent applies,
// and the periodic reconcile would fail too. A name that never resolved is an
// error (Apply then leaves that peer's endpoint out).
func (p *UpPlane) resolve(ctx context.Context, host string) (netip.Addr, error) {
	resolve := p.Options.Resolve
	if resolve == nil {
		resolve = up.ResolveSystem
	}
	a, err := resolve(ctx, host)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		if p.last == nil {
			p.last = map[string]netip.Addr{}
		}
		p.last[host] = a
		return a, nil
	}
	last, ok := p.last[host]
	if !ok {
		return netip.Addr{}, err
	}
	var log io.Writer = os.Stderr
	if p.Options.Log != nil {
		log = p.Options.Log
	}
	fmt.Fprintf(log, "[#] endpoint %s: %v; keeping its last address %s\n", host, err, last)
	return last, nil
}

// Peers implements DataPlane.
func (p *UpPlane) Peers(ctx context.Context, name string) ([]device.PeerState, error) {
	open := p.Options.Open
	if open == nil {
		open = device.OpenState
	}
	d, st, err := open(name)
	if errors.Is(err, device.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if st == nil {
		if st, err = d.State(); err != nil {
			return nil, err
		}
	}
	return st.Peers, nil
}

// Remove implements DataPlane; an interface that is not up is already removed.
func (p *UpPlane) Remove(ctx context.Context, name string) error {
	if err := up.Down(ctx, name, p.Options.Options); err != nil && !errors.Is(err, up.ErrNotUp) {
		return err
	}
	return nil
}
