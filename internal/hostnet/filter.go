package hostnet

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Filter is the packet filter wgnet keeps, in its own table, for what enters the
// host through one interface (a WireGuard interface): for the host itself (the
// input hook) and for what it relays (the forward hook). It never sees other
// traffic. Established and related packets pass first (replies, and ICMP errors
// such as fragmentation-needed, so path-MTU discovery works); then the first rule
// that matches decides; DefaultAccept decides when none does.
type Filter struct {
	// Iface is the interface whose incoming traffic is filtered.
	Iface string `json:"iface"`
	// Rules are tried in order. Each is of one family.
	Rules         []FilterRule `json:"rules"`
	DefaultAccept bool         `json:"default_accept"`
}

// FilterRule matches packets of one family by source and destination prefixes,
// protocol and destination ports, and accepts or drops them.
type FilterRule struct {
	V6 bool `json:"v6,omitempty"`
	// Src and Dst are prefixes of the rule's family; empty means any address.
	Src []netip.Prefix `json:"src,omitempty"`
	Dst []netip.Prefix `json:"dst,omitempty"`
	// Proto is "" (any), "tcp", "udp" or "icmp" (ICMPv6 in a v6 rule).
	Proto string `json:"proto,omitempty"`
	// Ports are destination port ranges, for tcp and udp; empty means any.
	Ports  []PortRange `json:"ports,omitempty"`
	Accept bool        `json:"accept"`
	// Comment is kept with the rule (nft shows it); at most MaxCommentLen bytes.
	Comment string `json:"comment,omitempty"`
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	From uint16 `json:"from"`
	To   uint16 `json:"to"`
}

// defaultDenyComment is the comment on a filter's default drop, in either
// backend.
const defaultDenyComment = "default: deny"

// MaxCommentLen is the longest rule comment nft accepts.
const MaxCommentLen = 128

// Clone returns a deep copy of f (nil for nil).
func (f *Filter) Clone() *Filter {
	if f == nil {
		return nil
	}
	c := *f
	c.Rules = make([]FilterRule, len(f.Rules))
	for i, r := range f.Rules {
		r.Src, r.Dst, r.Ports = slices.Clone(r.Src), slices.Clone(r.Dst), slices.Clone(r.Ports)
		c.Rules[i] = r
	}
	return &c
}

// Equal reports whether two filters (nil: none) are the same.
func (f *Filter) Equal(g *Filter) bool {
	if f == nil || g == nil {
		return f == g
	}
	return f.Iface == g.Iface && f.DefaultAccept == g.DefaultAccept &&
		slices.EqualFunc(f.Rules, g.Rules, FilterRule.Equal)
}

// Equal reports whether two rules are the same.
func (r FilterRule) Equal(s FilterRule) bool {
	return r.V6 == s.V6 && r.Proto == s.Proto && r.Accept == s.Accept && r.Comment == s.Comment &&
		slices.Equal(r.Src, s.Src) && slices.Equal(r.Dst, s.Dst) && slices.Equal(r.Ports, s.Ports)
}

// Canonical returns r in the form ApplyFirewall takes and Firewall reads back:
// prefixes masked, sorted, without those another one contains, and none when one
// is the whole family; port ranges sorted and merged, none when they cover every
// port; the comment cut to MaxCommentLen bytes. Prefixes of the other family are
// dropped (a caller splits a rule by family first).
func (r FilterRule) Canonical() FilterRule {
	r.Src, r.Dst = canonicalPrefixes(r.Src, r.V6), canonicalPrefixes(r.Dst, r.V6)
	r.Ports = canonicalPorts(r.Ports)
	if len(r.Comment) > MaxCommentLen {
		r.Comment = strings.ToValidUTF8(r.Comment[:MaxCommentLen], "")
	}
	return r
}

func canonicalPrefixes(ps []netip.Prefix, v6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.IsValid() && p.Addr().Unmap().Is6() == v6 {
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-(p.Addr().BitLen()-p.Addr().Unmap().BitLen())).Masked())
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	kept := out[:0]
	for _, p := range out {
		if len(kept) > 0 && kept[len(kept)-1].Contains(p.Addr()) {
			continue // contained in (or equal to) the one before
		}
		kept = append(kept, p)
	}
	if len(kept) == 1 && kept[0].Bits() == 0 {
		return nil
	}
	return slices.Clip(kept)
}

func canonicalPorts(rs []PortRange) []PortRange {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b PortRange) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && uint32(r.From) <= uint32(merged[n-1].To)+1 {
			merged[n-1].To = max(merged[n-1].To, r.To)
			continue
		}
		merged = append(merged, r)
	}
	if len(merged) == 1 && merged[0] == (PortRange{0, 65535}) {
		return nil
	}
	return slices.Clip(merged)
}

// Validate reports what ApplyFirewall would refuse in f: an interface name too
// long, an unknown protocol, ports without tcp or udp, a range From > To, a prefix
// of the wrong family, or a rule not in Canonical form.
func (f *Filter) Validate() error {
	if f == nil {
		return nil
	}
	if f.Iface == "" || len(f.Iface) >= 16 {
		return fmt.Errorf("filter: interface name %q: must be 1-15 characters", f.Iface)
	}
	for i, r := range f.Rules {
		bad := func(format string, a ...any) error {
			return fmt.Errorf("filter rule %d (%s): %s", i, r, fmt.Sprintf(format, a...))
		}
		switch r.Proto {
		case "", "icmp":
			if len(r.Ports) > 0 {
				return bad("ports need tcp or udp")
			}
		case "tcp", "udp":
		default:
			return bad("protocol %q: want tcp, udp, icmp or none", r.Proto)
		}
		for _, p := range r.Ports {
			if p.From > p.To {
				return bad("port range %d-%d: From > To", p.From, p.To)
			}
		}
		for _, p := range slices.Concat(r.Src, r.Dst) {
			if !p.IsValid() || p.Addr().Is6() != r.V6 || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				return bad("prefix %s: not a plain %s prefix", p, family(r.V6))
			}
		}
		if !r.Equal(r.Canonical()) {
			return bad("not in canonical form (FilterRule.Canonical)")
		}
	}
	return nil
}

func family(v6 bool) string {
	if v6 {
		return "ip6"
	}
	return "ip"
}

// String shows the rule as nft would: `ip saddr { 10.1.0.0/24 } ip daddr {
// 10.2.0.0/24 } tcp dport { 5432 } accept`.
func (r FilterRule) String() string {
	var b strings.Builder
	fam := family(r.V6)
	set := func(items []string) string {
		if len(items) == 1 {
			return items[0]
		}
		return "{ " + strings.Join(items, ", ") + " }"
	}
	strs := func(ps []netip.Prefix) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.String()
			if p.IsSingleIP() {
				out[i] = p.Addr().String()
			}
		}
		return out
	}
	if len(r.Src)+len(r.Dst) == 0 {
		fmt.Fprintf(&b, "meta nfproto ipv%s ", map[bool]string{false: "4", true: "6"}[r.V6])
	}
	if len(r.Src) > 0 {
		fmt.Fprintf(&b, "%s saddr %s ", fam, set(strs(r.Src)))
	}
	if len(r.Dst) > 0 {
		fmt.Fprintf(&b, "%s daddr %s ", fam, set(strs(r.Dst)))
	}
	switch {
	case r.Proto == "icmp" && r.V6:
		b.WriteString("meta l4proto ipv6-icmp ")
	case r.Proto == "icmp":
		b.WriteString("meta l4proto icmp ")
	case r.Proto != "" && len(r.Ports) == 0:
		fmt.Fprintf(&b, "meta l4proto %s ", r.Proto)
	case r.Proto != "":
		ports := make([]string, len(r.Ports))
		for i, p := range r.Ports {
			ports[i] = fmt.Sprint(p.From)
			if p.To != p.From {
				ports[i] += fmt.Sprintf("-%d", p.To)
			}
		}
		fmt.Fprintf(&b, "%s dport %s ", r.Proto, set(ports))
	}
	if r.Accept {
		b.WriteString("accept")
	} else {
		b.WriteString("drop")
	}
	return b.String()
}

// LastAddr is the last address of p.
func LastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Flow is a connection as connection tracking knows it, in its original
// direction.
type Flow struct {
	Proto            uint8 // IPPROTO_TCP, ...
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16 // tcp and udp
}

// Verdict says whether f accepts a new connection of flow, and which rule
// decides (-1: the default). Packets of the wrong family match no rule.
func (f *Filter) Verdict(flow Flow) (accept bool, rule int) {
	for i, r := range f.Rules {
		if r.Matches(flow) {
			return r.Accept, i
		}
	}
	return f.DefaultAccept, -1
}

// Matches reports whether the rule matches the first packet of flow.
func (r FilterRule) Matches(flow Flow) bool {
	if flow.Src.Unmap().Is6() != r.V6 {
		return false
	}
	in := func(ps []netip.Prefix, a netip.Addr) bool {
		return len(ps) == 0 || slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
	}
	if !in(r.Src, flow.Src) || !in(r.Dst, flow.Dst) {
		return false
	}
	switch r.Proto {
	case "":
		return true
	case "icmp":
		return flow.Proto == 1 && !r.V6 || flow.Proto == 58 && r.V6
	}
	if flow.Proto != map[string]uint8{"tcp": 6, "udp": 17}[r.Proto] {
		return false
	}
	return len(r.Ports) == 0 || slices.ContainsFunc(r.Ports, func(p PortRange) bool {
		return p.From <= flow.DstPort && flow.DstPort <= p.To
	})
}
