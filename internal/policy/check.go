package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/spec"
)

// Diagnostic codes of Check (diag's table has their severities and summaries).
const (
	CodeEmpty       = "policy-empty"       // a rule side or group member that names no host or address
	CodeShadowed    = "policy-shadowed"    // a rule no packet reaches: earlier rules decide all it matches
	CodeConflict    = "policy-conflict"    // a host in two groups whose rules give different verdicts
	CodeUnreachable = "policy-unreachable" // a host no rule lets any other host reach
)

// Check lints the policy of s (which should be valid) against its hosts:
// names that resolve to nothing, rules that can never decide, hosts whose
// groups disagree, hosts nobody may reach. Every finding is a warning at the
// line of the rule or group concerned.
func Check(s *spec.Spec) diag.List {
	n := Resolve(s)
	if !n.Present {
		return nil
	}
	c := &checker{n: n, s: s, shadow: map[int]bool{}}
	c.empty()
	c.shadowed()
	c.conflicts()
	c.unreachable()
	slices.SortStableFunc(c.out, func(a, b diag.Diagnostic) int { return a.Line - b.Line })
	return c.out
}

type checker struct {
	n      *Network
	s      *spec.Spec
	shadow map[int]bool // spec rules that never decide
	out    diag.List
}

func (c *checker) warn(field, code, format string, a ...any) {
	line := 0
	for f := field; f != ""; {
		if l, ok := c.s.Source.Lines[f]; ok {
			line = l
			break
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	c.out = append(c.out, diag.Diagnostic{File: c.s.Source.File, Line: line, Severity: diag.Warning, Code: code,
		Message: field + ": " + fmt.Sprintf(format, a...)})
}

func ruleField(i int) string { return fmt.Sprintf("policy.rules[%d]", i) }

// empty reports group members and rule sides that name nothing.
func (c *checker) empty() {
	for _, g := range c.s.Policy.Groups {
		for j, m := range g.Members {
			if (m.Kind == spec.TermTag || m.Kind == spec.TermPattern) && len(c.n.TermHosts(m)) == 0 {
				c.warn(fmt.Sprintf("policy.groups.%s[%d]", g.Name, j), CodeEmpty, "%s: no host matches", m)
			}
		}
	}
	for _, i := range c.n.Empty {
		r := c.s.Policy.Rules[i]
		src, srcAny := c.n.Term(r.From)
		dst, dstAny := c.n.Term(r.To)
		switch {
		case !srcAny && len(src) == 0:
			c.warn(ruleField(i), CodeEmpty, "%q: %s names no host or address, so the rule matches nothing", r.String(), r.From)
		case !dstAny && len(dst) == 0:
			c.warn(ruleField(i), CodeEmpty, "%q: %s names no host or address, so the rule matches nothing", r.String(), r.To)
		default:
			c.warn(ruleField(i), CodeEmpty, "%q: its sources and destinations share no IP family, so the rule matches nothing", r.String())
		}
	}
}

// shadowed reports rules that no packet reaches: every packet they match is
// decided by an earlier rule.
func (c *checker) shadowed() {
	rules := c.n.Filter.Rules
	for j := range rules {
		if j == 0 {
			continue
		}
		deciders := map[int]bool{}
		reached := packets(rules, rules[j].Src, rules[j].Dst, func(p Packet) bool {
			if !Match(&rules[j], p) {
				return false
			}
			for i := 0; i < j; i++ {
				if Match(&rules[i], p) {
					deciders[i] = true
					return false
				}
			}
			return true // a packet rule j decides
		})
		if reached || len(deciders) == 0 {
			continue
		}
		var by []string
		for i := 0; i < j; i++ {
			if deciders[i] {
				by = append(by, ruleField(c.n.ruleOf[i]))
			}
		}
		r := c.s.Policy.Rules[c.n.ruleOf[j]]
		c.shadow[c.n.ruleOf[j]] = true
		c.warn(ruleField(c.n.ruleOf[j]), CodeShadowed, "%q never decides: every packet it matches is decided before it by %s", r.String(), strings.Join(by, ", "))
	}
}

// conflicts reports a host that is in two different groups (or tags, or
// patterns) of rules that give different verdicts for traffic both match: the
// earlier rule wins for it, which the author of the later one may not expect.
func (c *checker) conflicts() {
	rules := c.s.Policy.Rules
	seen := map[[2]int]bool{}
	for i := range rules {
		for j := i + 1; j < len(rules); j++ {
			a, b := rules[i], rules[j]
			if a.Allow == b.Allow || !protoOverlap(a, b) || c.shadow[j] || seen[[2]int{i, j}] {
				continue
			}
			host, side := c.sharedHost(a.From, b.From), "from"
			if host == "" || !c.overlaps(a.To, b.To) {
				host, side = c.sharedHost(a.To, b.To), "to"
				if host == "" || !c.overlaps(a.From, b.From) {
					continue
				}
			}
			seen[[2]int{i, j}] = true
			c.warn(ruleField(j), CodeConflict, "%q and %s %q differ for %s, which is on both %s sides (%s, %s): the earlier decides for it",
				b.String(), ruleField(i), a.String(), host, side, termOf(a, side), termOf(b, side))
		}
	}
}

func termOf(r spec.Rule, side string) spec.Term {
	if side == "from" {
		return r.From
	}
	return r.To
}

// sharedHost returns a host, or a prefix listed in a group, that two
// different named terms (groups, tags, patterns, hosts; not any or prefixes)
// both name, or "".
func (c *checker) sharedHost(a, b spec.Term) string {
	if a == b || a.Kind == spec.TermAny || b.Kind == spec.TermAny || a.Kind == spec.TermPrefix || b.Kind == spec.TermPrefix {
		return ""
	}
	hb := c.n.TermHosts(b)
	for _, h := range c.n.TermHosts(a) {
		if slices.Contains(hb, h) {
			return h
		}
	}
	pb := c.groupPrefixes(b)
	for _, p := range c.groupPrefixes(a) {
		for _, q := range pb {
			if p.Overlaps(q) {
				return Intersect([]netip.Prefix{p}, []netip.Prefix{q})[0].String()
			}
		}
	}
	return ""
}

// groupPrefixes returns the prefixes a group (t names one) lists as members.
func (c *checker) groupPrefixes(t spec.Term) []netip.Prefix {
	var out []netip.Prefix
	for _, g := range c.s.Policy.Groups {
		if t.Kind == spec.TermName && g.Name == t.Name {
			for _, m := range g.Members {
				if m.Kind == spec.TermPrefix {
					out = append(out, m.Prefix)
				}
			}
		}
	}
	return out
}

// overlaps reports whether two terms share an address.
func (c *checker) overlaps(a, b spec.Term) bool {
	pa, anyA := c.n.Term(a)
	pb, anyB := c.n.Term(b)
	if anyA || anyB {
		return true
	}
	return len(Intersect(pa, pb)) > 0
}

// protoOverlap reports whether two rules can match a packet of the same
// protocol and port.
func protoOverlap(a, b spec.Rule) bool {
	if a.Proto != "" && b.Proto != "" && a.Proto != b.Proto {
		return false
	}
	if len(a.Ports) == 0 || len(b.Ports) == 0 {
		return true
	}
	for _, x := range a.Ports {
		for _, y := range b.Ports {
			if x.From <= y.To && y.From <= x.To {
				return true
			}
		}
	}
	return false
}

// unreachable reports hosts to which no other host may send anything.
func (c *checker) unreachable() {
	if len(c.n.names) < 2 {
		return
	}
	for i := range c.s.Hosts {
		h := &c.s.Hosts[i]
		reached := false
		for _, o := range c.n.names {
			if o != h.Name && c.n.Reaches(c.n.Hosts[o], c.n.Hosts[h.Name]) {
				reached = true
				break
			}
		}
		if !reached {
			c.warn(fmt.Sprintf("hosts[%d]", i), CodeUnreachable, "no rule lets any other host reach %s (default %s)", h.Name, verdictWord(c.n.Filter.DefaultAccept))
		}
	}
}

func verdictWord(accept bool) string {
	if accept {
		return spec.Allow
	}
	return spec.Deny
}
