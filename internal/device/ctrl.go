package device

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// ctrl drives an existing interface through wgctrl: generic netlink for the kernel
// module, the UAPI socket for a userspace daemon.
type ctrl struct {
	c    *wgctrl.Client
	name string
	typ  wgtypes.DeviceType
	pub  wgtypes.Key // at Open, for probeRemoval

	removalOnce sync.Once
	removal     bool // the daemon understands "allowed_ip=-PREFIX"; set by removalOnce

	// direct: the daemon answered stateOp at Open (wgnet's own), so State and
	// PeerStates read through it.
	direct bool
}

// Open returns a handle on the existing WireGuard interface name, whatever runs it.
// Close releases the handle and leaves the interface alone.
func Open(name string) (Device, error) {
	d, _, err := OpenState(name)
	return d, err
}

// OpenState is Open that also returns the state it reads to find the interface,
// for callers that need both: reading a device with 10,000 peers takes tens of
// milliseconds.
func OpenState(name string) (Device, *State, error) {
	c, err := wgctrl.New()
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	// A userspace daemon is read with stateOp when it is wgnet's, else with
	// uapiGet, not wgctrl's slower reader; wgctrl asks the kernel first, and
	// so does this (the socket directory is shared by every namespace, the
	// kernel link is this namespace's).
	if !isKernelLink(name) {
		st, err := stateGet(name, nil)
		direct := err == nil
		if errors.Is(err, errStateUnsupported) {
			st, err = uapiGet(name)
		}
		if err == nil {
			st.Name, st.Backend = name, BackendUserspace
			return &ctrl{c: c, name: name, typ: wgtypes.Userspace, pub: wgtypes.Key(st.PublicKey), direct: direct}, st, nil
		}
		// No socket, or a stale one: wgctrl says which, as before.
	}
	dev, err := c.Device(name)
	if err != nil {
		c.Close()
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("open %s: %w", name, ErrNotFound)
		}
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	return &ctrl{c: c, name: name, typ: dev.Type, pub: dev.PublicKey}, fromWgtypes(dev), nil
}

// List returns the state of every WireGuard interface that this network namespace
// can see: kernel interfaces, and every UAPI socket in /var/run/wireguard (which is
// shared by all namespaces, as with wg(8)). Stale sockets that do not answer are
// skipped, so one dead daemon does not hide the others.
func List() ([]*State, error) {
	c, err := wgctrl.New()
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer c.Close()
	names, err := candidateNames()
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	var out []*State
	for _, n := range names {
		d, err := c.Device(n)
		if err != nil {
			continue // not WireGuard, gone, or a stale socket
		}
		out = append(out, fromWgtypes(d))
	}
	slices.SortFunc(out, func(a, b *State) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// SocketDir is where userspace implementations serve their UAPI sockets.
const SocketDir = "/var/run/wireguard"

// candidateNames lists the names that may be WireGuard interfaces: every link of
// this namespace (the kernel answers only for its own) and every UAPI socket.
func candidateNames() ([]string, error) {
	var names []string
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	socks, _ := filepath.Glob(filepath.Join(SocketDir, "*.sock"))
	for _, s := range socks {
		names = append(names, strings.TrimSuffix(filepath.Base(s), ".sock"))
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

func (d *ctrl) Name() string { return d.name }

// RemovesAllowedIPs reports whether the daemon behind a userspace interface
// understands "allowed_ip=-PREFIX" (asked once, see probeRemoval). For a kernel
// interface it is false: wgctrl cannot send the kernel's per-prefix remove flag.
func (d *ctrl) RemovesAllowedIPs() bool {
	if d.typ != wgtypes.Userspace {
		return false
	}
	d.removalOnce.Do(func() {
		d.removal, _ = probeRemoval(d.name, d.pub)
	})
	return d.removal
}

func (d *ctrl) Configure(c Config) error {
	if err := checkConfig(c); err != nil {
		return fmt.Errorf("configure %s: %w", d.name, err)
	}
	if hasRemovals(c) {
		// wgctrl has no way to say "remove this prefix": talk UAPI directly.
		if !d.RemovesAllowedIPs() {
			return fmt.Errorf("configure %s: removing single allowed IPs: %w", d.name, errors.ErrUnsupported)
		}
		if err := uapiSet(d.name, encodeUAPI(c)); err != nil {
			return fmt.Errorf("configure %s: %w", d.name, err)
		}
		return nil
	}
	if err := d.c.ConfigureDevice(d.name, toWgtypes(c)); err != nil {
		return fmt.Errorf("configure %s: %w", d.name, explainErrno(err, c))
	}
	return nil
}

// explainErrno turns the bare errno a userspace daemon answers over the UAPI
// (wgctrl reports "errno=-98") into what the user can act on.
func explainErrno(err error, c Config) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "errno=-98") && c.ListenPort != nil: // EADDRINUSE
		return fmt.Errorf("ListenPort %d: address already in use (%w)", *c.ListenPort, err)
	case strings.Contains(msg, "errno=-13") && c.ListenPort != nil: // EACCES
		return fmt.Errorf("ListenPort %d: permission denied (%w)", *c.ListenPort, err)
	}
	return err
}

func (d *ctrl) State() (*State, error) {
	if d.typ == wgtypes.Userspace {
		var st *State
		err := errStateUnsupported
		if d.direct {
			st, err = stateGet(d.name, nil)
		}
		if errors.Is(err, errStateUnsupported) {
			st, err = uapiGet(d.name)
		}
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("state of %s: %w", d.name, ErrNotFound)
			}
			return nil, fmt.Errorf("state of %s: %w", d.name, err)
		}
		st.Name, st.Backend = d.name, BackendUserspace
		return st, nil
	}
	dev, err := d.c.Device(d.name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("state of %s: %w", d.name, ErrNotFound)
		}
		return nil, fmt.Errorf("state of %s: %w", d.name, err)
	}
	return fromWgtypes(dev), nil
}

// PeerStates reads back single peers from wgnet's own daemon (see PeerReader);
// any other daemon, and the kernel, make it fail with errors.ErrUnsupported.
func (d *ctrl) PeerStates(keys []wgkey.Key) (*State, error) {
	if !d.direct {
		return nil, fmt.Errorf("state of %s: single peers: %w", d.name, errStateUnsupported)
	}
	if keys == nil {
		keys = []wgkey.Key{} // nil asks stateGet for everything
	}
	st, err := stateGet(d.name, keys)
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", d.name, err)
	}
	st.Name, st.Backend = d.name, BackendUserspace
	return st, nil
}

func (d *ctrl) Close() error { return d.c.Close() }

func toWgtypes(c Config) wgtypes.Config {
	out := wgtypes.Config{
		ListenPort:   c.ListenPort,
		FirewallMark: c.FwMark,
		ReplacePeers: c.ReplacePeers,
	}
	if c.PrivateKey != nil {
		k := wgtypes.Key(*c.PrivateKey)
		out.PrivateKey = &k
	}
	for _, p := range c.Peers {
		pc := wgtypes.PeerConfig{
			PublicKey:                   wgtypes.Key(p.PublicKey),
			Remove:                      p.Remove,
			UpdateOnly:                  p.UpdateOnly,
			PersistentKeepaliveInterval: p.PersistentKeepalive,
			ReplaceAllowedIPs:           p.ReplaceAllowedIPs,
		}
		if p.PresharedKey != nil {
			k := wgtypes.Key(*p.PresharedKey)
			pc.PresharedKey = &k
		}
		if p.Endpoint != nil {
			pc.Endpoint = net.UDPAddrFromAddrPort(*p.Endpoint)
		}
		for _, a := range p.AllowedIPs {
			pc.AllowedIPs = append(pc.AllowedIPs, net.IPNet{
				IP:   a.Addr().AsSlice(),
				Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen()),
			})
		}
		out.Peers = append(out.Peers, pc)
	}
	return out
}

func fromWgtypes(d *wgtypes.Device) *State {
	st := &State{
		Name:       d.Name,
		Backend:    backendName(d.Type),
		ListenPort: d.ListenPort,
		FwMark:     d.FirewallMark,
	}
	if d.PrivateKey != (wgtypes.Key{}) {
		st.PrivateKey = wgkey.Private(d.PrivateKey)
		st.PublicKey = wgkey.Key(d.PublicKey)
	}
	for _, p := range d.Peers {
		ps := PeerState{
			PublicKey:           wgkey.Key(p.PublicKey),
			HasPresharedKey:     p.PresharedKey != (wgtypes.Key{}),
			PresharedKey:        wgkey.Private(p.PresharedKey),
			PersistentKeepalive: p.PersistentKeepaliveInterval,
			RxBytes:             p.ReceiveBytes,
			TxBytes:             p.TransmitBytes,
		}
		if !p.LastHandshakeTime.IsZero() && p.LastHandshakeTime.Unix() != 0 {
			ps.LastHandshake = p.LastHandshakeTime
		}
		if p.Endpoint != nil {
			ap := p.Endpoint.AddrPort()
			ps.Endpoint = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
		for _, n := range p.AllowedIPs {
			a, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			if a.Is4In6() || len(n.IP) == net.IPv4len {
				a = a.Unmap()
			}
			bits, _ := n.Mask.Size()
			ps.AllowedIPs = append(ps.AllowedIPs, netip.PrefixFrom(a, bits))
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}

func backendName(t wgtypes.DeviceType) string {
	switch t {
	case wgtypes.LinuxKernel, wgtypes.FreeBSDKernel, wgtypes.OpenBSDKernel, wgtypes.WindowsKernel:
		return BackendKernel
	case wgtypes.Userspace:
		return BackendUserspace
	}
	return t.String()
}

var _ PeerReader = (*ctrl)(nil)
