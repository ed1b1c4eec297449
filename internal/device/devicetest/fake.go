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
	// noRemoval makes the fake refuse RemoveAllowedIPs, like an old wireguard-go.
	noRemoval bool
	// touched lists the peers named by successful Configures, for tests of
	// what a change touched (see Touched).
	touched []wgkey.Key
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

// SetNoRemoval makes the fake refuse PeerConfig.RemoveAllowedIPs (and report so
// through RemovesAllowedIPs), like wireguard-go builds older than that feature.
func (f *Fake) SetNoRemoval(no bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noRemoval = no
}

// RemovesAllowedIPs implements device.AllowedIPRemover.
func (f *Fake) RemovesAllowedIPs() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.noRemoval
}

// Touched returns the public keys of the peers named in every successful
// Configure since the last call, in order, and forgets them.
func (f *Fake) Touched() []wgkey.Key {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.touched
	f.touched = nil
	return t
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
	if f.noRemoval {
		for _, pc := range c.Peers {
			if len(pc.RemoveAllowedIPs) > 0 && !pc.Remove {
				return fmt.Errorf("configure %s: removing single allowed IPs: %w", f.name, errors.ErrUnsupported)
			}
		}
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
		f.touched = append(f.touched, pc.PublicKey)
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
		for _, a := range pc.RemoveAllowedIPs {
			a = a.Masked()
			p.allowed = slices.DeleteFunc(p.allowed, func(b netip.Prefix) bool { return b == a })
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
		for _, a := range append(slices.Clone(p.AllowedIPs), p.RemoveAllowedIPs...) {
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
		st.PrivateKey = f.priv
		st.PublicKey = f.priv.Public()
	}
	for _, p := range f.peers {
		st.Peers = append(st.Peers, device.PeerState{
			PublicKey:           p.pub,
			HasPresharedKey:     !p.psk.IsZero(),
			PresharedKey:        wgkey.Private(p.psk),
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
