// Package devicetest holds a fake device.Device for unit tests and the conformance
// test that every Device implementation must pass (Run). Like wireguard-go's
// tun/tuntest, it is for tests only. It imports device and wgkey; it must not import
// hostnet, up or anything above them.
package devicetest

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Fake is an in-memory device with the patch semantics of wireguard-go and the
// kernel: an allowed IP given to one peer is taken from any other peer.
type Fake struct {
	name string

	mu sync.Mutex
	// guarded by mu:
	priv   wgkey.Private
	port   int
	fwmark int
	peers  []*fakePeer
	closed bool
	// FailConfigure, when set, makes the next Configure fail with it (and change
	// nothing); guarded by mu through SetFailConfigure.
	failConfigure error
}

type fakePeer struct {
	pub       wgkey.Key
	psk       wgkey.Key
	endpoint  netip.AddrPort
	keepalive int // seconds
	allowed   []netip.Prefix
}

// NewFake returns an empty fake device called name.
func NewFake(name string) *Fake { return &Fake{name: name} }

// SetFailConfigure makes the next Configure return err without changing anything.
func (f *Fake) SetFailConfigure(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failConfigure = err
}

// Name returns the interface name.
func (f *Fake) Name() string { return f.name }

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Configure applies c like wgctrl's ConfigureDevice; an invalid patch changes nothing.
func (f *Fake) Configure(c device.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("configure %s: device closed", f.name)
	}
	if err := f.failConfigure; err != nil {
		f.failConfigure = nil
		return fmt.Errorf("configure %s: %w", f.name, err)
	}
	if err := validate(c); err != nil {
		return fmt.Errorf("configure %s: %w", f.name, err)
	}
	if c.PrivateKey != nil {
		f.priv = *c.PrivateKey
	}
	if c.ListenPort != nil {
		f.port = *c.ListenPort
	}
	if c.FwMark != nil {
		f.fwmark = *c.FwMark
	}
	if c.ReplacePeers {
		f.peers = nil
	}
	for _, pc := range c.Peers {
		i := slices.IndexFunc(f.peers, func(p *fakePeer) bool { return p.pub == pc.PublicKey })
		if pc.Remove {
			if i >= 0 {
				f.peers = slices.Delete(f.peers, i, i+1)
			}
			continue
		}
		if i < 0 {
			if pc.UpdateOnly {
				continue
			}
			f.peers = append(f.peers, &fakePeer{pub: pc.PublicKey})
			i = len(f.peers) - 1
		}
		p := f.peers[i]
		if pc.PresharedKey != nil {
			p.psk = *pc.PresharedKey
		}
		if pc.Endpoint != nil {
			p.endpoint = *pc.Endpoint
		}
		if pc.PersistentKeepalive != nil {
			p.keepalive = int(pc.PersistentKeepalive.Seconds())
		}
		if pc.ReplaceAllowedIPs {
			p.allowed = nil
		}
		for _, a := range pc.AllowedIPs {
			a = a.Masked()
			for _, q := range f.peers {
				q.allowed = slices.DeleteFunc(q.allowed, func(b netip.Prefix) bool { return b == a })
			}
			p.allowed = append(p.allowed, a)
		}
	}
	return nil
}

func validate(c device.Config) error {
	if c.ListenPort != nil && (*c.ListenPort < 0 || *c.ListenPort > 65535) {
		return fmt.Errorf("listen port %d: must be 0-65535", *c.ListenPort)
	}
	for _, p := range c.Peers {
		if p.PublicKey.IsZero() {
			return errors.New("peer with an all-zero public key")
		}
		if k := p.PersistentKeepalive; k != nil && (*k < 0 || k.Seconds() > 65535) {
			return fmt.Errorf("peer %s: persistent keepalive %v out of range", p.PublicKey, *k)
		}
		for _, a := range p.AllowedIPs {
			if !a.IsValid() {
				return fmt.Errorf("peer %s: invalid allowed IP", p.PublicKey)
			}
		}
	}
	return nil
}

// State returns the configuration; counters stay zero and no handshake happens.
func (f *Fake) State() (*device.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, fmt.Errorf("state of %s: device closed", f.name)
	}
	st := &device.State{Name: f.name, Backend: "fake", ListenPort: f.port, FwMark: f.fwmark}
	if !f.priv.IsZero() {
		st.PublicKey = f.priv.Public()
	}
	for _, p := range f.peers {
		st.Peers = append(st.Peers, device.PeerState{
			PublicKey:           p.pub,
			HasPresharedKey:     !p.psk.IsZero(),
			Endpoint:            p.endpoint,
			PersistentKeepalive: secs(p.keepalive),
			AllowedIPs:          slices.Clone(p.allowed),
		})
	}
	return st, nil
}

// Close marks the device closed; later calls fail.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

var _ device.Device = (*Fake)(nil)
