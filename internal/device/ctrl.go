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

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// ctrl drives an existing interface through wgctrl: generic netlink for the kernel
// module, the UAPI socket for a userspace daemon.
type ctrl struct {
	c    *wgctrl.Client
	name string
}

// Open returns a handle on the existing WireGuard interface name, whatever runs it.
// Close releases the handle and leaves the interface alone.
func Open(name string) (Device, error) {
	c, err := wgctrl.New()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if _, err := c.Device(name); err != nil {
		c.Close()
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return &ctrl{c: c, name: name}, nil
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

func (d *ctrl) Configure(c Config) error {
	if err := checkConfig(c); err != nil {
		return fmt.Errorf("configure %s: %w", d.name, err)
	}
	if err := d.c.ConfigureDevice(d.name, toWgtypes(c)); err != nil {
		return fmt.Errorf("configure %s: %w", d.name, err)
	}
	return nil
}

func (d *ctrl) State() (*State, error) {
	dev, err := d.c.Device(d.name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("state of %s: %w", d.name, ErrNotFound)
		}
		return nil, fmt.Errorf("state of %s: %w", d.name, err)
	}
	return fromWgtypes(dev), nil
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
		st.PublicKey = wgkey.Key(d.PublicKey)
	}
	for _, p := range d.Peers {
		ps := PeerState{
			PublicKey:           wgkey.Key(p.PublicKey),
			HasPresharedKey:     p.PresharedKey != (wgtypes.Key{}),
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
