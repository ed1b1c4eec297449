// Package hostnet owns the host side of a WireGuard interface: the link (MTU, up or
// down), its addresses, routes, sysctls, and the nftables table wgnet keeps for it,
// all behind the small HostNet interface so that the code deciding what to change
// (package up) can be tested against the fake in hostnettest. The Linux
// implementation (New) uses rtnetlink and nf_tables directly, not the ip and nft
// commands; only the iptables fallbacks, of the full tunnel and of wgnet's own
// table where nf_tables does not answer, run programs (iptables-restore,
// iptables-save and their IPv6 twins, through package iptables: argv, never a
// shell). It operates on the network namespace of the calling process.
//
// It imports only iptables of wgnet; it must not import device, up or anything
// above.
package hostnet

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
)

// HostNet changes and reads the host's network configuration. Every Add returns an
// error wrapping ErrExists when the thing is already there (so that a caller never
// records as its own what it did not create), and every Del or read of a missing
// thing wraps ErrNotFound.
type HostNet interface {
	// Links lists every interface.
	Links() ([]Link, error)
	// Link describes the interface name.
	Link(name string) (Link, error)
	// SetMTU sets the link's MTU.
	SetMTU(name string, mtu int) error
	// SetUp sets the link administratively up or down.
	SetUp(name string, up bool) error

	// Addrs returns the link's addresses with their prefix lengths, except the IPv6
	// link-local ones the kernel manages.
	Addrs(name string) ([]netip.Prefix, error)
	AddAddr(name string, p netip.Prefix) error
	DelAddr(name string, p netip.Prefix) error

	// Routes returns the routes through link name in a table (0 means main),
	// including the prefix routes the kernel adds for addresses.
	Routes(name string, table int) ([]Route, error)
	AddRoute(r Route) error
	DelRoute(r Route) error
	// AddRoutes adds every route of rs, in order, as one batch: on Linux over one
	// netlink socket, with each link looked up once, where AddRoute costs a socket
	// and a link lookup per route. A route already there is skipped, not an error:
	// a caller that batches has recorded the routes ahead of adding them, as
	// planned, and a down deletes those it finds. It stops at the first other
	// failure, so a prefix of rs may have been added.
	AddRoutes(rs []Route) error
	// DelRoutes deletes every route of rs, in order, as one batch; a route not
	// there is skipped. It stops at the first other failure.
	DelRoutes(rs []Route) error
	// RouteMTU returns the MTU on the way to dst, as `ip route get` decides it: the
	// route's own MTU, else its device's. An invalid dst asks about the default
	// route of the main table. It returns 0 when there is no route.
	RouteMTU(dst netip.Addr) (int, error)

	// Sysctl reads a kernel parameter; key is a path under /proc/sys with '/'
	// separators ("net/ipv4/conf/wg0/forwarding"), as interface names may hold dots.
	Sysctl(key string) (string, error)
	SetSysctl(key, value string) error

	// FirewallBackend says what ApplyFirewall writes with: TunnelNftables or
	// TunnelIptables.
	FirewallBackend() (string, error)
	// ApplyFirewall creates the nftables table fw.Table, replacing any table of that
	// name, with exactly the rules fw describes; where nf_tables does not answer
	// (or when asked: Linux.TableBackend), the same rules in iptables chains
	// of wgnet's (firewall_iptables.go).
	ApplyFirewall(fw Firewall) error
	// Firewall reads back a table written by ApplyFirewall.
	Firewall(table string) (Firewall, error)
	// DeleteFirewall removes the table.
	DeleteFirewall(table string) error

	// ForgetFlows deletes the connection-tracking entries (both families) whose
	// original direction match selects, and returns how many went: a connection
	// a new filter denies must not go on as an established one.
	ForgetFlows(match func(Flow) bool) (int, error)

	// Rules lists the policy routing rules of a family (4 or 6), in priority
	// order, the kernel's own (local, main, default) included.
	Rules(family int) ([]Rule, error)
	// AddRule adds r with its priority; ErrExists when an equal rule is there.
	AddRule(r Rule) error
	// DelRule removes the rule equal to r, priority included; ErrNotFound when
	// there is none.
	DelRule(r Rule) error
	// TableInUse reports whether a routing table holds any route, in either
	// family, through any link (wg-quick's test for a free table).
	TableInUse(table int) (bool, error)

	// TunnelFirewallBackend says what ApplyTunnelFirewall writes with when
	// tf.Backend is "": TunnelNftables or TunnelIptables.
	TunnelFirewallBackend() (string, error)
	// ApplyTunnelFirewall creates the tables tf describes (see TunnelFirewall),
	// replacing any of that name in families ip and ip6 (and any iptables
	// rules of it), with tf.Backend or else the host's backend: with nftables
	// in one transaction, with iptables one iptables-restore per family.
	ApplyTunnelFirewall(tf TunnelFirewall) error
	// TunnelFirewall reads back tables written by ApplyTunnelFirewall;
	// ErrNotFound when neither family has one.
	TunnelFirewall(table string) (TunnelFirewall, error)
	// DeleteTunnelFirewall removes the tables of both families, and the
	// iptables rules of the table, as wg-quick's down does; ErrNotFound when
	// there are none.
	DeleteTunnelFirewall(table string) error
}

// Link is a network interface.
type Link struct {
	Name  string
	Index int
	Type  string // "tun", "wireguard", "veth", ...
	MTU   int
	Up    bool // administratively up
}

// Route is a directly connected route: Dst through the link Dev, like
// `ip route add DST dev DEV [table TABLE]`.
type Route struct {
	Dst   netip.Prefix `json:"dst"`
	Dev   string       `json:"dev"`
	Table int          `json:"table,omitempty"` // 0 means main (254)
}

// Firewall is the one nftables table wgnet owns for an interface (family inet).
type Firewall struct {
	Table string
	// ClampMSS lists interfaces whose forwarded TCP SYN packets, on the way out,
	// get their MSS option clamped to the route MTU
	// (`oifname X tcp flags & (syn|rst) == syn tcp option maxseg size set rt mtu`).
	ClampMSS []string
	// DropRedirects lists interfaces on which the host sends no ICMP redirects
	// (`oifname X icmp type redirect drop`, and ICMPv6 nd-redirect). A hub that
	// forwards spoke to spoke out of the interface the packet came in on would
	// otherwise tell the spoke to go direct, which it can't; and send_redirects
	// on the interface alone does nothing while net.ipv4.conf.all.send_redirects
	// is 1.
	DropRedirects []string
	// Filter, when set, filters what enters through its interface (filter.go).
	Filter *Filter `json:",omitempty"`
}

// FirewallWhere names where backend keeps wgnet's table, for plans and logs:
// "nft table inet TABLE", or "iptables chains TABLE-*" (backend
// TunnelIptables).
func FirewallWhere(backend, table string) string {
	if backend == TunnelIptables {
		return "iptables chains " + table + "-*"
	}
	return "nft table inet " + table
}

// Clone returns a copy of fw that shares no slices with it.
func (fw Firewall) Clone() Firewall {
	fw.ClampMSS = slices.Clone(fw.ClampMSS)
	fw.DropRedirects = slices.Clone(fw.DropRedirects)
	fw.Filter = fw.Filter.Clone()
	return fw
}

// TableMain is the main routing table.
const TableMain = 254

var (
	// ErrNotFound: no such link, address, route, sysctl or table.
	ErrNotFound = errors.New("not found")
	// ErrExists: the address or route is already there.
	ErrExists = errors.New("already exists")
)

// SysctlName returns key in the dotted form sysctl(8) prints, for messages.
// (Dots inside a component, such as an interface name, become '/', as sysctl does.)
func SysctlName(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(parts, ".")
}
