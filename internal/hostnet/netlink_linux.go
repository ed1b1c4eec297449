package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Linux is the HostNet of the calling process's network namespace: rtnetlink for
// links, addresses and routes, /proc/sys for sysctls, nf_tables for the firewall.
type Linux struct {
	// SysctlRoot is where sysctls are read and written; "" means /proc/sys.
	SysctlRoot string
	// TunnelBackend is what writes a full tunnel's firewall (see
	// TunnelFirewall): "" or "auto" decides per call (nftables when the
	// kernel's nf_tables answers over netlink, else iptables, as wg-quick
	// falls back when it finds no nft), TunnelNftables or TunnelIptables
	// forces one.
	TunnelBackend string
	// TableBackend is what writes wgnet's own table (see Firewall), chosen
	// as TunnelBackend is: "" or "auto" decides per call, TunnelNftables or
	// TunnelIptables forces one.
	TableBackend string
}

// New returns the HostNet of the current network namespace, with the tunnel
// firewall backend named by $WGNET_TUNNEL_FIREWALL and the backend of wgnet's
// own table by $WGNET_FIREWALL (auto when unset).
func New() *Linux {
	return &Linux{TunnelBackend: os.Getenv(TunnelBackendEnv), TableBackend: os.Getenv(FirewallBackendEnv)}
}

var _ HostNet = (*Linux)(nil)

func (l *Linux) link(name string) (netlink.Link, error) {
	lk, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("link %s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return lk, nil
}

func linkOf(lk netlink.Link) Link {
	a := lk.Attrs()
	return Link{Name: a.Name, Index: a.Index, Type: lk.Type(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
}

// Links lists every interface.
func (l *Linux) Links() ([]Link, error) {
	lks, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]Link, 0, len(lks))
	for _, lk := range lks {
		out = append(out, linkOf(lk))
	}
	return out, nil
}

// Link describes the interface name.
func (l *Linux) Link(name string) (Link, error) {
	lk, err := l.link(name)
	if err != nil {
		return Link{}, err
	}
	return linkOf(lk), nil
}

// SetMTU sets the link's MTU.
func (l *Linux) SetMTU(name string, mtu int) error {
	lk, err := l.link(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMTU(lk, mtu); err != nil {
		return fmt.Errorf("set mtu %d on %s: %w", mtu, name, err)
	}
	return nil
}

// SetUp sets the link up or down.
func (l *Linux) SetUp(name string, up bool) error {
	lk, err := l.link(name)
	if err != nil {
		return err
	}
	set, verb := netlink.LinkSetDown, "down"
	if up {
		set, verb = netlink.LinkSetUp, "up"
	}
	if err := set(lk); err != nil {
		return fmt.Errorf("set %s %s: %w", name, verb, err)
	}
	return nil
}

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func fromIPNet(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, total := n.Mask.Size()
	if total == 32 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, bits), true
}

// Addrs returns the link's addresses, without IPv6 link-local ones.
func (l *Linux) Addrs(name string) ([]netip.Prefix, error) {
	lk, err := l.link(name)
	if err != nil {
		return nil, err
	}
	as, err := netlink.AddrList(lk, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", name, err)
	}
	var out []netip.Prefix
	for _, a := range as {
		p, ok := fromIPNet(a.IPNet)
		if !ok || (p.Addr().Is6() && p.Addr().IsLinkLocalUnicast()) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func (l *Linux) addr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: toIPNet(p)}
	if p.Addr().Is4() {
		// Like `ip address add`, no broadcast address (the library would add one).
		a.Broadcast = net.IPv4zero
	}
	return a
}

// AddAddr adds p to the link, like `ip address add P dev NAME`.
func (l *Linux) AddAddr(name string, p netip.Prefix) error {
	lk, err := l.link(name)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(lk, l.addr(p)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add address %s to %s: %w", p, name, ErrExists)
		}
		return fmt.Errorf("add address %s to %s: %w", p, name, err)
	}
	return nil
}

// DelAddr removes p from the link.
func (l *Linux) DelAddr(name string, p netip.Prefix) error {
	lk, err := l.link(name)
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(lk, l.addr(p)); err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete address %s from %s: %w", p, name, ErrNotFound)
		}
		return fmt.Errorf("delete address %s from %s: %w", p, name, err)
	}
	return nil
}

func tableOf(t int) int {
	if t == 0 {
		return TableMain
	}
	return t
}

// Routes returns the routes through the link in a table.
func (l *Linux) Routes(name string, table int) ([]Route, error) {
	lk, err := l.link(name)
	if err != nil {
		return nil, err
	}
	filter := &netlink.Route{LinkIndex: lk.Attrs().Index, Table: tableOf(table)}
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("routes of %s: %w", name, err)
	}
	var out []Route
	for _, r := range rs {
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		p, ok := fromIPNet(r.Dst)
		if !ok && r.Dst == nil {
			// A default route (a full tunnel's, in its own table) has no Dst.
			ok = true
			p = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if r.Family == netlink.FAMILY_V6 {
				p = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		}
		if !ok {
			continue
		}
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			continue
		}
		out = append(out, Route{Dst: p, Dev: name, Table: table})
	}
	return out, nil
}

func (l *Linux) route(r Route) (*netlink.Route, error) {
	lk, err := l.link(r.Dev)
	if err != nil {
		return nil, err
	}
	return netlinkRoute(r, lk.Attrs().Index), nil
}

func netlinkRoute(r Route, index int) *netlink.Route {
	nr := &netlink.Route{
		LinkIndex: index,
		Dst:       toIPNet(r.Dst.Masked()),
		Table:     tableOf(r.Table),
		Protocol:  unix.RTPROT_BOOT, // what `ip route add` uses
		Type:      unix.RTN_UNICAST,
	}
	if r.Dst.Addr().Is4() {
		nr.Scope = netlink.SCOPE_LINK // `ip route add` without a gateway
	}
	return nr
}

// AddRoute adds r, like `ip route add DST dev DEV table T`.
func (l *Linux) AddRoute(r Route) error {
	nr, err := l.route(r)
	if err != nil {
		return err
	}
	return addRoute(netlink.RouteAdd, r, nr)
}

func addRoute(add func(*netlink.Route) error, r Route, nr *netlink.Route) error {
	if err := add(nr); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add route %s dev %s: %w", r.Dst, r.Dev, ErrExists)
		}
		return fmt.Errorf("add route %s dev %s: %w", r.Dst, r.Dev, err)
	}
	return nil
}

// DelRoute removes r.
func (l *Linux) DelRoute(r Route) error {
	nr, err := l.route(r)
	if err != nil {
		return err
	}
	return delRoute(netlink.RouteDel, r, nr)
}

func delRoute(del func(*netlink.Route) error, r Route, nr *netlink.Route) error {
	nr.Protocol = 0 // match whatever added it
	if err := del(nr); err != nil {
		if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete route %s dev %s: %w", r.Dst, r.Dev, ErrNotFound)
		}
		return fmt.Errorf("delete route %s dev %s: %w", r.Dst, r.Dev, err)
	}
	return nil
}

// AddRoutes adds every route of rs over one netlink socket, each link looked up
// once; routes already there are skipped.
func (l *Linux) AddRoutes(rs []Route) error {
	return l.batch(rs, func(h *netlink.Handle, r Route, nr *netlink.Route) error {
		if err := addRoute(h.RouteAdd, r, nr); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
		return nil
	})
}

// DelRoutes deletes every route of rs over one netlink socket; routes not there
// are skipped.
func (l *Linux) DelRoutes(rs []Route) error {
	return l.batch(rs, func(h *netlink.Handle, r Route, nr *netlink.Route) error {
		if err := delRoute(h.RouteDel, r, nr); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return nil
	})
}

// batch runs do for each route on one rtnetlink socket, looking each link up once.
// A route through a link that is gone is ErrNotFound, as from AddRoute.
func (l *Linux) batch(rs []Route, do func(*netlink.Handle, Route, *netlink.Route) error) error {
	if len(rs) == 0 {
		return nil
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("routes: netlink: %w", err)
	}
	defer h.Close()
	index := map[string]int{}
	for _, r := range rs {
		i, ok := index[r.Dev]
		if !ok {
			lk, err := l.link(r.Dev)
			if err != nil {
				return fmt.Errorf("route %s dev %s: %w", r.Dst, r.Dev, err)
			}
			i = lk.Attrs().Index
			index[r.Dev] = i
		}
		if err := do(h, r, netlinkRoute(r, i)); err != nil {
			return err
		}
	}
	return nil
}

// RouteMTU returns the MTU towards dst (or of the default route when dst is invalid).
func (l *Linux) RouteMTU(dst netip.Addr) (int, error) {
	var r *netlink.Route
	if dst.IsValid() {
		rs, err := netlink.RouteGet(dst.AsSlice())
		if err != nil {
			if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
				return 0, nil
			}
			return 0, fmt.Errorf("route to %s: %w", dst, err)
		}
		if len(rs) == 0 {
			return 0, nil
		}
		r = &rs[0]
	} else {
		rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: TableMain}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return 0, fmt.Errorf("default route: %w", err)
		}
		for i := range rs {
			if rs[i].Dst == nil || isDefault(rs[i].Dst) {
				r = &rs[i]
				break
			}
		}
		if r == nil {
			return 0, nil
		}
	}
	if r.MTU > 0 {
		return r.MTU, nil
	}
	if r.LinkIndex == 0 {
		return 0, nil
	}
	lk, err := netlink.LinkByIndex(r.LinkIndex)
	if err != nil {
		return 0, fmt.Errorf("route MTU: link %d: %w", r.LinkIndex, err)
	}
	return lk.Attrs().MTU, nil
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

func (l *Linux) sysctlPath(key string) (string, error) {
	root := l.SysctlRoot
	if root == "" {
		root = "/proc/sys"
	}
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "..") {
		return "", fmt.Errorf("sysctl %q: invalid key", key)
	}
	return filepath.Join(root, key), nil
}

// Sysctl reads a kernel parameter.
func (l *Linux) Sysctl(key string) (string, error) {
	p, err := l.sysctlPath(key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("sysctl %s: %w", SysctlName(key), ErrNotFound)
		}
		return "", fmt.Errorf("sysctl %s: %w", SysctlName(key), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// SetSysctl writes a kernel parameter.
func (l *Linux) SetSysctl(key, value string) error {
	p, err := l.sysctlPath(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sysctl -w %s=%s: %w", SysctlName(key), value, ErrNotFound)
		}
		return fmt.Errorf("sysctl -w %s=%s: %w", SysctlName(key), value, err)
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sysctl -w %s=%s: %w", SysctlName(key), value, err)
	}
	return nil
}
