// Package policy compiles a spec's segmentation policy (spec.Policy) into each
// host's packet filter (intent.Filter), and evaluates filters: the one
// first-match semantics that the compiler, explain, check and the lab share.
//
// It is pure: no I/O, no clock, no randomness; its output is sorted and
// deterministic. It imports diag, intent and spec.
//
// Semantics. A host stands for its overlay addresses and its routed subnets.
// Rules are tried in order and the first whose source, destination, protocol
// and ports match a packet decides; the default decides when none does. The
// host a packet is delivered to (to itself or to a subnet behind it) filters
// what arrives over the tunnel; a host that relays between peers (the hub)
// filters what it relays as well. Replies to accepted connections and ICMP
// errors related to them pass: that state is the data plane's.
package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/spec"
)

// Protocols a Packet can carry; Other is any protocol but these.
const (
	TCP   = "tcp"
	UDP   = "udp"
	ICMP  = "icmp" // ICMP for IPv4, ICMPv6 for IPv6
	Other = "other"
)

// Packet is what a filter looks at: addresses, protocol and destination port
// (tcp and udp; 0 otherwise).
type Packet struct {
	Src, Dst netip.Addr
	Proto    string
	Port     uint16
}

func (p Packet) String() string {
	s := fmt.Sprintf("%s -> %s %s", p.Src, p.Dst, p.Proto)
	if p.Proto == TCP || p.Proto == UDP {
		s += fmt.Sprintf("/%d", p.Port)
	}
	return s
}

// Verdict is what a filter decides for a packet, and why.
type Verdict struct {
	Accept bool
	// Rule is the index of the deciding rule in the filter; -1 when the default
	// (or the absence of a filter) decides.
	Rule int
	// Origin names the deciding rule as the spec has it, "default allow",
	// "default deny" or "no policy".
	Origin string
}

// Eval applies f to p: the first matching rule decides, else the default. A
// filter that is not Enabled accepts everything.
func Eval(f *intent.Filter, p Packet) Verdict {
	if !f.Enabled {
		return Verdict{Accept: true, Rule: -1, Origin: "no policy"}
	}
	for i := range f.Rules {
		if Match(&f.Rules[i], p) {
			return Verdict{Accept: f.Rules[i].Accept, Rule: i, Origin: f.Rules[i].Origin}
		}
	}
	if f.DefaultAccept {
		return Verdict{Accept: true, Rule: -1, Origin: "default allow"}
	}
	return Verdict{Accept: false, Rule: -1, Origin: "default deny"}
}

// Match reports whether rule r matches packet p.
func Match(r *intent.FilterRule, p Packet) bool {
	if r.Proto != "" && r.Proto != p.Proto {
		return false
	}
	if len(r.Ports) > 0 && !inPorts(r.Ports, p.Port) {
		return false
	}
	return inSet(r.Src, p.Src) && inSet(r.Dst, p.Dst)
}

// inSet reports whether a is in ps; an empty ps is every address.
func inSet(ps []netip.Prefix, a netip.Addr) bool {
	if len(ps) == 0 {
		return true
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func inPorts(rs []intent.PortRange, port uint16) bool {
	for _, r := range rs {
		if port >= r.From && port <= r.To {
			return true
		}
	}
	return false
}

// Network is a spec's policy resolved against its hosts: every rule as a
// filter rule over prefixes.
type Network struct {
	// Present is false when the spec has no policy: nothing is filtered.
	Present bool
	// Filter is the whole policy as one filter (rules that match nothing left
	// out); a host's filter is a part of it.
	Filter intent.Filter
	// Hosts are the hosts by name with the prefixes each stands for.
	Hosts map[string][]netip.Prefix
	// Empty lists the spec's rules (indexes) one of whose sides names nothing.
	Empty []int
	// ruleOf maps an index of Filter.Rules to the spec's rule index.
	ruleOf []int
	spec   *spec.Spec
	names  []string // host names, sorted
	fast   fastIndex
}

// Resolve resolves the policy of s against its hosts. s should be valid.
func Resolve(s *spec.Spec) *Network {
	n := &Network{Present: s.Policy.Present, Hosts: map[string][]netip.Prefix{}, spec: s}
	for i := range s.Hosts {
		h := &s.Hosts[i]
		n.Hosts[h.Name] = HostPrefixes(h)
		n.names = append(n.names, h.Name)
	}
	sort.Strings(n.names)
	if !n.Present {
		return n
	}
	n.Filter = intent.Filter{Enabled: true, DefaultAccept: s.Policy.DefaultAllows()}
	for i, r := range s.Policy.Rules {
		src, srcAny := n.Term(r.From)
		dst, dstAny := n.Term(r.To)
		if (!srcAny && len(src) == 0) || (!dstAny && len(dst) == 0) {
			n.Empty = append(n.Empty, i)
			continue
		}
		src, dst, ok := sameFamilies(src, dst)
		if !ok {
			n.Empty = append(n.Empty, i)
			continue
		}
		fr := intent.FilterRule{Accept: r.Allow, Src: src, Dst: dst, Proto: r.Proto, Origin: Origin(i, r)}
		for _, p := range r.Ports {
			fr.Ports = append(fr.Ports, intent.PortRange{From: p.From, To: p.To})
		}
		n.Filter.Rules = append(n.Filter.Rules, fr)
		n.ruleOf = append(n.ruleOf, i)
	}
	return n
}

// Origin is how a compiled rule names the spec rule it came from.
func Origin(i int, r spec.Rule) string { return fmt.Sprintf("policy.rules[%d]: %s", i, r) }

// HostPrefixes is what a host stands for: its overlay addresses (as /32 or
// /128) and its routed subnets.
func HostPrefixes(h *spec.Host) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range h.Addresses {
		if a.IsValid() {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return Normalize(append(out, h.Routes...))
}

// Term resolves one side of a rule or a group member to prefixes; any is true
// for "any" (every address), when the prefixes are nil.
func (n *Network) Term(t spec.Term) (ps []netip.Prefix, any bool) {
	s := n.spec
	switch t.Kind {
	case spec.TermAny:
		return nil, true
	case spec.TermPrefix:
		return []netip.Prefix{t.Prefix}, false
	case spec.TermName:
		for _, g := range s.Policy.Groups {
			if g.Name == t.Name {
				var out []netip.Prefix
				for _, m := range g.Members {
					if m.Kind == spec.TermAny {
						return nil, true
					}
					mp, _ := n.Term(m) // members are never group names (validated)
					out = append(out, mp...)
				}
				return Normalize(out), false
			}
		}
		return slices.Clone(n.Hosts[t.Name]), false
	}
	var out []netip.Prefix
	for _, name := range n.TermHosts(t) {
		out = append(out, n.Hosts[name]...)
	}
	return Normalize(out), false
}

// TermHosts returns the names of the hosts a term names directly (a host name,
// a tag, a pattern; a group's hosts), sorted.
func (n *Network) TermHosts(t spec.Term) []string {
	s := n.spec
	var out []string
	switch t.Kind {
	case spec.TermName:
		for _, g := range s.Policy.Groups {
			if g.Name == t.Name {
				for _, m := range g.Members {
					out = append(out, n.TermHosts(m)...)
				}
				slices.Sort(out)
				return slices.Compact(out)
			}
		}
		if _, ok := n.Hosts[t.Name]; ok {
			out = append(out, t.Name)
		}
	case spec.TermTag:
		for i := range s.Hosts {
			if slices.Contains(s.Hosts[i].Tags, t.Name) {
				out = append(out, s.Hosts[i].Name)
			}
		}
	case spec.TermPattern:
		for _, name := range n.names {
			if t.Matches(name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Normalize sorts prefixes (IPv4 first), drops repeats and prefixes inside
// another of the list.
func Normalize(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, comparePrefix)
	out := ps[:0]
	for _, p := range ps {
		if len(out) > 0 && out[len(out)-1].Overlaps(p) && out[len(out)-1].Bits() <= p.Bits() {
			continue // sorted by address then length: a covering prefix comes first
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// sameFamilies keeps, when both sides are lists, only the families both have;
// ok is false when no family is left (the rule can match nothing).
func sameFamilies(src, dst []netip.Prefix) (s, d []netip.Prefix, ok bool) {
	if len(src) == 0 || len(dst) == 0 {
		return src, dst, true
	}
	has := func(ps []netip.Prefix, v4 bool) bool {
		return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Addr().Is4() == v4 })
	}
	keep := func(ps []netip.Prefix) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range ps {
			v4 := p.Addr().Is4()
			if has(src, v4) && has(dst, v4) {
				out = append(out, p)
			}
		}
		return out
	}
	s, d = keep(src), keep(dst)
	return s, d, len(s) > 0 && len(d) > 0
}

// Intersect returns the addresses in both a and b as prefixes (a nil side is
// every address), normalized.
func Intersect(a, b []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range a {
		for _, q := range b {
			if p.Overlaps(q) {
				if p.Bits() >= q.Bits() {
					out = append(out, p)
				} else {
					out = append(out, q)
				}
			}
		}
	}
	return Normalize(out)
}

// HostFilter returns the filter of the host called name. A host that relays
// between peers (forwards) gets every rule; any other only the rules that can
// match a packet for itself or its routed subnets, with their destinations
// narrowed to those. Without a policy it is the zero Filter.
func (n *Network) HostFilter(name string, relays bool) intent.Filter {
	if !n.Present {
		return intent.Filter{}
	}
	if relays {
		return n.Filter.Clone()
	}
	own := n.Hosts[name]
	f := intent.Filter{Enabled: true, DefaultAccept: n.Filter.DefaultAccept}
	for _, r := range n.Filter.Rules {
		if len(r.Dst) > 0 {
			r.Dst = Intersect(r.Dst, own)
			if len(r.Dst) == 0 {
				continue
			}
			var ok bool
			if r.Src, r.Dst, ok = sameFamilies(r.Src, r.Dst); !ok {
				continue
			}
		}
		f.Rules = append(f.Rules, r)
	}
	return f.Clone()
}

// Format renders a filter for people, a rule a line:
//
//	1 allow tcp 5432 from 192.168.100.11/32,10.0.11.0/24 to any  (policy.rules[0]: ...)
//	  default deny
func Format(f *intent.Filter) string {
	if !f.Enabled {
		return "no filter\n"
	}
	var b strings.Builder
	for i, r := range f.Rules {
		fmt.Fprintf(&b, "%d %s  (%s)\n", i+1, FormatRule(&r), r.Origin)
	}
	fmt.Fprintf(&b, "  default %s\n", verdictWord(f.DefaultAccept))
	return b.String()
}

// FormatRule renders a rule without its origin: verdict, protocol and ports,
// sources and destinations.
func FormatRule(r *intent.FilterRule) string {
	var b strings.Builder
	b.WriteString(verdictWord(r.Accept))
	if r.Proto != "" {
		b.WriteString(" " + r.Proto)
	}
	for i, p := range r.Ports {
		sep := ","
		if i == 0 {
			sep = " "
		}
		if p.From == p.To {
			fmt.Fprintf(&b, "%s%d", sep, p.From)
		} else {
			fmt.Fprintf(&b, "%s%d-%d", sep, p.From, p.To)
		}
	}
	fmt.Fprintf(&b, " from %s to %s", prefixList(r.Src), prefixList(r.Dst))
	return b.String()
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "any"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// MaxProbePorts bounds ProbePorts.
const MaxProbePorts = 16

// ProbePorts returns the ports of proto (tcp or udp) the rules of filters name
// (the first and last port of each range), sorted, at most MaxProbePorts: the
// ports a lab probes to show what the rules do.
func ProbePorts(proto string, filters ...*intent.Filter) []uint16 {
	var out []uint16
	for _, f := range filters {
		for _, r := range f.Rules {
			if r.Proto != proto {
				continue
			}
			for _, p := range r.Ports {
				out = append(out, p.From, p.To)
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxProbePorts {
		out = out[:MaxProbePorts]
	}
	return out
}
