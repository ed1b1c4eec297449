package hostnet

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Rule is a policy routing rule of the kinds wg-quick adds for a full tunnel
// (`ip rule add not fwmark M table T`, `ip rule add table main
// suppress_prefixlength 0`), like `ip rule add [not] [fwmark M] table T
// [suppress_prefixlength 0] pref P`.
type Rule struct {
	Family   int `json:"family"`   // 4 or 6
	Priority int `json:"priority"` // `pref`
	Table    int `json:"table"`    // 254 is main
	// Mark is the fwmark to match (all 32 bits); 0 matches any packet.
	Mark uint32 `json:"fwmark,omitempty"`
	// Invert is `not`: the rule applies to packets that do NOT match.
	Invert bool `json:"not,omitempty"`
	// SuppressDefault is `suppress_prefixlength 0`: a route of prefix length 0
	// (the default route) found in the table is ignored.
	SuppressDefault bool `json:"suppress_prefixlength_0,omitempty"`
	// Other is set by Rules on a rule with selectors or actions this type does
	// not describe (from, to, iif, a fwmark mask, goto, ...): never one of
	// wgnet's, so never equal to one.
	Other bool `json:"-"`
}

// String is the rule as `ip rule` shows it: "32765: not from all fwmark 0xca6c lookup 51820".
func (r Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d: ", r.Priority)
	if r.Invert {
		b.WriteString("not ")
	}
	b.WriteString("from all")
	if r.Mark != 0 {
		fmt.Fprintf(&b, " fwmark %#x", r.Mark)
	}
	if r.Table == TableMain {
		b.WriteString(" lookup main")
	} else {
		fmt.Fprintf(&b, " lookup %d", r.Table)
	}
	if r.SuppressDefault {
		b.WriteString(" suppress_prefixlength 0")
	}
	if r.Other {
		b.WriteString(" (and more)")
	}
	if r.Family == 6 {
		return "-6 " + b.String()
	}
	return b.String()
}

// DefaultRulePriority is the priority the kernel gives a rule added without one
// (fib_default_rule_pref), given the family's rules: one less than the
// priority of the second rule in priority order (the first is `local` at 0),
// or 0. Adding with it explicitly gives what `ip rule add` without `pref`
// gives, and lets a caller record the rule before it is added.
func DefaultRulePriority(rules []Rule) int {
	ps := make([]int, 0, len(rules))
	for _, r := range rules {
		ps = append(ps, r.Priority)
	}
	slices.Sort(ps)
	if len(ps) >= 2 && ps[1] > 0 {
		return ps[1] - 1
	}
	return 0
}

// TunnelFirewall is the pair of nftables tables (families ip and ip6, both
// named Table) that wg-quick writes for a full tunnel, with exactly its rules
// (`nft list table ip wgnet-wg0`):
//
//	table ip wgnet-wg0 {
//		chain preraw {
//			type filter hook prerouting priority raw; policy accept;
//			iifname != "wg0" ip daddr 10.0.0.2 fib saddr type != local drop
//		}
//		chain premangle {
//			type filter hook prerouting priority mangle; policy accept;
//			meta l4proto udp meta mark set ct mark
//		}
//		chain postmangle {
//			type filter hook postrouting priority mangle; policy accept;
//			meta l4proto udp meta mark 0x0000ca6c ct mark set meta mark
//		}
//	}
//
// preraw drops packets to the interface's addresses that arrive on another
// interface (from anywhere but the host itself); the mangle chains save the
// fwmark of the encrypted UDP in its conntrack entry and put it back on the
// replies, so that rp_filter (with src_valid_mark) accepts them.
//
// Where the kernel has no nf_tables (or when asked: see Linux.TunnelBackend),
// the same rules are written with iptables-restore and ip6tables-restore, as
// wg-quick writes them when it finds no nft, each rule carrying the comment
// IptablesComment(Table):
//
//	*raw
//	-I PREROUTING ! -i wg0 -d 10.0.0.2 -m addrtype ! --src-type LOCAL -j DROP -m comment --comment "wg-quick(8) rule for wg0"
//	COMMIT
//	*mangle
//	-I POSTROUTING -m mark --mark 51820 -p udp -j CONNMARK --save-mark -m comment --comment "wg-quick(8) rule for wg0"
//	-I PREROUTING -p udp -j CONNMARK --restore-mark -m comment --comment "wg-quick(8) rule for wg0"
//	COMMIT
type TunnelFirewall struct {
	Table string `json:"table"`
	// Backend is TunnelNftables or TunnelIptables: what the rules are written
	// with. Read back, it says where they were found (TunnelMixed: in both);
	// "" asks ApplyTunnelFirewall for the host's backend
	// (TunnelFirewallBackend). Equal compares it only when both sides name
	// one, and never finds TunnelMixed equal.
	Backend string `json:"backend,omitempty"`
	// V4 and V6 say which family's table exists: the families that have a
	// default route through the tunnel.
	V4 bool `json:"v4,omitempty"`
	V6 bool `json:"v6,omitempty"`
	// Iface is the WireGuard interface; it is only in the preraw rules, so it
	// reads back as "" when there are none (no Addrs).
	Iface string `json:"iface,omitempty"`
	// Mark is the fwmark of the encrypted UDP.
	Mark uint32 `json:"fwmark"`
	// Addrs are the interface's addresses, one preraw drop rule each in the
	// table of its family (an address of a family without a table is left out).
	// Like wg-quick, which takes every address `ip -o -6 addr show dev IFACE`
	// lists, ApplyTunnelFirewall adds a rule for each IPv6 link-local address
	// the interface has at that moment; Equal leaves link-local addresses out,
	// as the kernel, not the config, gives them.
	Addrs []netip.Addr `json:"addrs,omitempty"`
}

// Equal reports whether two tunnel firewalls are the same tables.
func (tf TunnelFirewall) Equal(o TunnelFirewall) bool {
	norm := func(t TunnelFirewall) TunnelFirewall {
		t.Addrs = slices.DeleteFunc(t.FamilyAddrs(), netip.Addr.IsLinkLocalUnicast)
		if len(t.Addrs) == 0 {
			t.Iface = ""
		}
		return t
	}
	a, b := norm(tf), norm(o)
	if a.Backend == TunnelMixed || b.Backend == TunnelMixed || (a.Backend != "" && b.Backend != "" && a.Backend != b.Backend) {
		return false
	}
	return a.Table == b.Table && a.V4 == b.V4 && a.V6 == b.V6 && a.Iface == b.Iface && a.Mark == b.Mark && slices.Equal(a.Addrs, b.Addrs)
}

// FamilyAddrs returns the addresses that get a rule: those of a family with a
// table, IPv4 first, in order.
func (tf TunnelFirewall) FamilyAddrs() []netip.Addr {
	var out []netip.Addr
	for _, six := range []bool{false, true} {
		if (six && !tf.V6) || (!six && !tf.V4) {
			continue
		}
		for _, a := range tf.Addrs {
			if a.Is6() == six {
				out = append(out, a)
			}
		}
	}
	return out
}

// The backends of the tunnel firewall.
const (
	TunnelNftables = "nftables"
	TunnelIptables = "iptables"
	// TunnelMixed is read back when both hold rules of the table: never
	// what anything wants, so that the next apply replaces them with one.
	TunnelMixed = "nftables+iptables"
)

// TunnelBackendEnv is the environment variable New reads the tunnel
// firewall's backend from: auto (the default), nftables or iptables.
const TunnelBackendEnv = "WGNET_TUNNEL_FIREWALL"

// FirewallBackendEnv is the environment variable New reads the backend of
// wgnet's own table from (per-interface MSS clamp, redirect drops, the
// segmentation policy's filter): auto (the default: nftables when nf_tables
// answers, else iptables), nftables or iptables.
const FirewallBackendEnv = "WGNET_FIREWALL"

// ParseFirewallBackend checks a backend of wgnet's table named by a user:
// "" or "auto" (the host decides), "nftables", "iptables".
func ParseFirewallBackend(s string) (string, error) { return parseBackend("firewall", s) }

// TunnelTablePrefix begins the name of every full tunnel's nftables tables:
// wg-quick's "wg-quick-IFACE".
const TunnelTablePrefix = "wg-quick-"

// IptablesComment is the comment every iptables rule of the tunnel firewall
// table carries: wg-quick's "wg-quick(8) rule for IFACE", IFACE being the
// table's name after TunnelTablePrefix. It is how the rules are found again
// (by either tool's down).
func IptablesComment(table string) string {
	return "wg-quick(8) rule for " + strings.TrimPrefix(table, TunnelTablePrefix)
}

// ParseTunnelBackend checks a backend named by a user: "" or "auto" (the
// host decides), "nftables", "iptables".
func ParseTunnelBackend(s string) (string, error) { return parseBackend("tunnel firewall", s) }

// parseBackend checks the backend of what: "" or "auto" (the host decides),
// "nftables", "iptables".
func parseBackend(what, s string) (string, error) {
	switch s {
	case "", "auto":
		return "", nil
	case TunnelNftables, TunnelIptables:
		return s, nil
	}
	return "", fmt.Errorf("%s backend %q: want auto, nftables or iptables", what, s)
}
