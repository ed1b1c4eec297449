// Package device owns the WireGuard half of an interface: its key, listen port, fwmark
// and peers, set through a wgctrl-style patch (Config) and read back as State. It has
// these backends, all behind one Device interface and all passing the conformance
// test in devicetest:
//
//   - Embedded: upstream wireguard-go in this process, on any tun.Device and
//     conn.Bind, configured through its in-process UAPI handler. It is the only
//     wrapper around wireguard-go's device; package lab runs it on a gVisor stack
//     with loopback sockets.
//   - Userspace: Embedded on a kernel TUN device created with its GSO/GRO offloads,
//     optionally serving the standard UAPI socket /var/run/wireguard/NAME.sock so
//     that wg(8) works on it (see https://www.wireguard.com/xplatform/). RunDaemon
//     and Spawn run it as a detached background process.
//   - Open: any existing WireGuard interface, kernel or userspace, through wgctrl
//     (generic netlink for the kernel module, the UAPI socket for userspace daemons).
//   - CreateKernel: a new kernel WireGuard link (rtnetlink), then driven like Open.
//
// Addresses, routes, MTU, sysctls and firewall rules are not this package's business
// (see hostnet). The fake and the shared conformance test live in devicetest.
// It imports wgkey and spawn (the daemon's process, ready pipe and pid file) only
// from wgnet; it must not import wgconf, intent, spec, compile, hostnet or up
// (internal/layering enforces it).
package device

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// Device is one WireGuard interface's configuration plane.
type Device interface {
	// Name is the interface name.
	Name() string
	// Configure applies a patch: nil fields and absent peers are left as they are,
	// exactly like wgctrl's ConfigureDevice. Neither the kernel nor wireguard-go
	// applies a patch atomically; read back with State when it matters.
	Configure(Config) error
	// State reads the running configuration and counters.
	State() (*State, error)
	// Close releases the handle. For an in-process Userspace device it also stops
	// the device and removes its TUN interface; for the others the interface stays.
	Close() error
}

// Config is a patch to a device, modelled on wgctrl's wgtypes.Config with net/netip
// and wgkey types. The zero Config changes nothing.
type Config struct {
	PrivateKey   *wgkey.Private // nil: unchanged; zero key: remove the key
	ListenPort   *int           // nil: unchanged; 0: random port
	FwMark       *int           // nil: unchanged; 0: off
	ReplacePeers bool           // remove every peer not in Peers first
	Peers        []PeerConfig
}

// Empty reports whether c changes nothing: no interface field, no ReplacePeers and
// no peer. Applying an empty patch can be skipped.
func (c Config) Empty() bool {
	return c.PrivateKey == nil && c.ListenPort == nil && c.FwMark == nil && !c.ReplacePeers && len(c.Peers) == 0
}

// PeerConfig is a patch to one peer, like wgtypes.PeerConfig.
type PeerConfig struct {
	PublicKey wgkey.Key
	// Remove deletes the peer; every other field is ignored.
	Remove bool
	// UpdateOnly changes the peer only if it already exists.
	UpdateOnly bool
	// PresharedKey: nil unchanged; zero key removes the preshared key.
	PresharedKey *wgkey.Key
	// Endpoint: nil unchanged. The device wants an IP: resolve host names first.
	Endpoint *netip.AddrPort
	// PersistentKeepalive: nil unchanged; 0 off. Whole seconds only.
	PersistentKeepalive *time.Duration
	// ReplaceAllowedIPs removes the peer's allowed IPs before adding AllowedIPs.
	ReplaceAllowedIPs bool
	// RemoveAllowedIPs removes these prefixes from the peer, each only if the peer
	// holds it, before AllowedIPs are added: unlike ReplaceAllowedIPs, the peer's
	// other prefixes keep routing throughout. Only devices that implement
	// AllowedIPRemover (and say yes) can; the others refuse such a patch with an
	// error wrapping errors.ErrUnsupported and change nothing.
	RemoveAllowedIPs []netip.Prefix
	AllowedIPs       []netip.Prefix
}

// AllowedIPRemover is implemented by devices that may be able to remove single
// allowed IPs from a peer (PeerConfig.RemoveAllowedIPs): upstream wireguard-go
// (UAPI "allowed_ip=-PREFIX") can; older builds such as Debian's wireguard-go
// 0.0.20220316 cannot; the kernel has a per-prefix flag (WGALLOWEDIP_F_REMOVE_ME)
// only on recent versions, and wgctrl cannot send it. Callers fall back to
// ReplaceAllowedIPs when it says no.
type AllowedIPRemover interface {
	RemovesAllowedIPs() bool
}

// RemovesAllowedIPs reports whether d applies PeerConfig.RemoveAllowedIPs.
func RemovesAllowedIPs(d Device) bool {
	r, ok := d.(AllowedIPRemover)
	return ok && r.RemovesAllowedIPs()
}

// State is a device's running configuration, as `wg show` reports it.
type State struct {
	Name string
	// Backend says what runs the device: "kernel", "userspace" or another
	// implementation's name.
	Backend string
	// PublicKey is zero when the device has no private key.
	PublicKey wgkey.Key
	// PrivateKey is the device's key, read back so that a change can be undone
	// (see package up's rollback); it redacts itself when printed and refuses to
	// be marshalled. Zero when the device has none or the backend does not say.
	PrivateKey wgkey.Private
	ListenPort int
	FwMark     int
	Peers      []PeerState
}

// PeerState is one peer of a running device.
type PeerState struct {
	PublicKey       wgkey.Key
	HasPresharedKey bool
	// PresharedKey is the peer's preshared key (zero when none), read back like
	// State.PrivateKey. It is a secret, so it has the redacting type of a private
	// key.
	PresharedKey        wgkey.Private
	Endpoint            netip.AddrPort // zero when unknown
	PersistentKeepalive time.Duration
	LastHandshake       time.Time // zero when never
	RxBytes, TxBytes    int64
	AllowedIPs          []netip.Prefix
}

// Backend names reported in State.Backend.
const (
	BackendKernel    = "kernel"
	BackendUserspace = "userspace"
)

// ErrNotFound is returned (wrapped) by Open when no WireGuard interface has the name.
var ErrNotFound = errors.New("no such WireGuard interface")

// ErrNoKernelSupport is returned (wrapped) by CreateKernel when the kernel has no
// WireGuard module (and none can be loaded).
var ErrNoKernelSupport = errors.New("kernel has no WireGuard support")

// Normalize sorts peers by public key and each peer's allowed IPs, masking them, so
// that two States of the same configuration compare equal. Counters, handshake time
// and endpoint are left as they are.
func (s *State) Normalize() {
	for i := range s.Peers {
		p := &s.Peers[i]
		for j, a := range p.AllowedIPs {
			p.AllowedIPs[j] = a.Masked()
		}
		slices.SortFunc(p.AllowedIPs, comparePrefix)
		p.AllowedIPs = slices.Compact(p.AllowedIPs)
	}
	slices.SortFunc(s.Peers, func(a, b PeerState) int {
		return slices.Compare(a.PublicKey[:], b.PublicKey[:])
	})
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// Peer returns the peer with public key k.
func (s *State) Peer(k wgkey.Key) (*PeerState, bool) {
	for i := range s.Peers {
		if s.Peers[i].PublicKey == k {
			return &s.Peers[i], true
		}
	}
	return nil, false
}
