package spec

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Policy is the network's segmentation policy (the `policy` section): named
// groups of hosts and subnets, and ordered rules of who may reach whom. A spec
// without one has a zero Policy (Present false): everything the tunnels carry
// passes, as before policies existed.
type Policy struct {
	Present bool    // the spec has a policy section
	Default string  // default: "allow" or "deny"; "" means allow
	Groups  []Group // groups: name → members, in file order
	Rules   []Rule  // rules: tried in order, the first that matches decides
}

// Verdicts of a rule and of the default.
const (
	Allow = "allow"
	Deny  = "deny"
)

// DefaultAllows reports whether a packet no rule matches passes.
func (p *Policy) DefaultAllows() bool { return p.Default != Deny }

// Group is a named set of hosts and subnets.
type Group struct {
	Name string
	// Members are terms: a host name, tag:TAG, a host name pattern (path.Match
	// syntax, such as web-*), or a CIDR prefix.
	Members []Term
}

// Rule is one policy rule: `allow|deny FROM -> TO [proto] [tcp|udp|icmp] [port[s]] [PORTS]`.
type Rule struct {
	Allow    bool
	From, To Term
	Proto    string      // "" (any), "tcp", "udp" or "icmp"
	Ports    []PortRange // destination ports (tcp, udp); empty: any
}

// PortRange is an inclusive range of ports.
type PortRange struct{ From, To uint16 }

func (r PortRange) String() string {
	if r.From == r.To {
		return strconv.Itoa(int(r.From))
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// TermKind says what a Term names.
type TermKind int

const (
	TermAny     TermKind = iota // any: every address
	TermName                    // a group's name, else a host's
	TermTag                     // tag:TAG: every host with the tag
	TermPattern                 // a host name pattern: every host whose name matches
	TermPrefix                  // a CIDR prefix
)

// Term is one side of a rule or one member of a group.
type Term struct {
	Kind   TermKind
	Name   string       // TermName, TermTag (without "tag:"), TermPattern
	Prefix netip.Prefix // TermPrefix
}

func (t Term) String() string {
	switch t.Kind {
	case TermAny:
		return "any"
	case TermTag:
		return "tag:" + t.Name
	case TermPrefix:
		return t.Prefix.String()
	}
	return t.Name
}

// ParseTerm reads a group member or a rule's side.
func ParseTerm(s string) (Term, error) {
	switch {
	case s == "any" || s == "*":
		return Term{Kind: TermAny}, nil
	case strings.HasPrefix(s, "tag:"):
		t := strings.TrimPrefix(s, "tag:")
		if !ValidName(t) {
			return Term{}, fmt.Errorf("%q: a tag is 1-63 of a-z 0-9 _ . - starting with a letter or digit", s)
		}
		return Term{Kind: TermTag, Name: t}, nil
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Term{}, fmt.Errorf("%q: not a CIDR prefix like 10.0.4.0/24", s)
		}
		if p.Addr().Is4In6() {
			return Term{}, fmt.Errorf("%q: write an IPv4 prefix in IPv4 form", s)
		}
		if p != p.Masked() {
			return Term{}, fmt.Errorf("%q: host bits are set; did you mean %s?", s, p.Masked())
		}
		return Term{Kind: TermPrefix, Prefix: p}, nil
	case strings.ContainsAny(s, "*?["):
		if _, err := path.Match(s, ""); err != nil || !patternRE.MatchString(s) {
			return Term{}, fmt.Errorf("%q: a name pattern is a-z 0-9 _ . - with * ? or [a-z] (like web-*)", s)
		}
		return Term{Kind: TermPattern, Name: s}, nil
	case ValidName(s):
		return Term{Kind: TermName, Name: s}, nil
	}
	return Term{}, fmt.Errorf("%q: not a group, host, tag:TAG, name pattern or CIDR prefix", s)
}

// Matches reports whether a host name matches a TermPattern.
func (t Term) Matches(name string) bool {
	ok, _ := path.Match(t.Name, name)
	return ok
}

// ParseRule reads one rule: `allow|deny FROM -> TO [proto] [tcp|udp|icmp] [port|ports] [PORTS]`,
// PORTS a comma list of ports and ranges (80,443,8000-8100).
func ParseRule(s string) (Rule, error) {
	var r Rule
	w := strings.Fields(s)
	if len(w) < 4 {
		return r, fmt.Errorf("%q: a rule is allow|deny FROM -> TO [tcp|udp|icmp] [PORTS]", s)
	}
	switch w[0] {
	case Allow:
		r.Allow = true
	case Deny:
	default:
		return r, fmt.Errorf("%q: a rule starts with allow or deny", s)
	}
	if w[2] != "->" {
		return r, fmt.Errorf("%q: FROM -> TO: the arrow must stand between two words", s)
	}
	var err error
	if r.From, err = ParseTerm(w[1]); err != nil {
		return r, fmt.Errorf("from %w", err)
	}
	if r.To, err = ParseTerm(w[3]); err != nil {
		return r, fmt.Errorf("to %w", err)
	}
	rest := w[4:]
	if len(rest) > 0 && rest[0] == "proto" {
		rest = rest[1:]
		if len(rest) == 0 {
			return r, fmt.Errorf("%q: proto needs tcp, udp or icmp", s)
		}
	}
	if len(rest) > 0 {
		switch rest[0] {
		case "tcp", "udp", "icmp":
			r.Proto, rest = rest[0], rest[1:]
		}
	}
	if len(rest) > 0 && (rest[0] == "port" || rest[0] == "ports") {
		rest = rest[1:]
		if len(rest) == 0 {
			return r, fmt.Errorf("%q: port needs a number", s)
		}
	}
	if len(rest) > 0 {
		if r.Proto != "tcp" && r.Proto != "udp" {
			return r, fmt.Errorf("%q: ports are for tcp or udp (say which before them)", s)
		}
		if r.Ports, err = parsePorts(strings.Join(rest, "")); err != nil {
			return r, fmt.Errorf("%q: %w", s, err)
		}
	}
	return r, nil
}

func parsePorts(s string) ([]PortRange, error) {
	var out []PortRange
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, err1 := strconv.ParseUint(a, 10, 16)
		to := from
		var err2 error
		if isRange {
			to, err2 = strconv.ParseUint(b, 10, 16)
		}
		if err1 != nil || err2 != nil || from == 0 || to < from {
			return nil, fmt.Errorf("port %q: want a port 1-65535 or a range like 8000-8100", part)
		}
		out = append(out, PortRange{uint16(from), uint16(to)})
	}
	return out, nil
}

// String renders the rule in the form ParseRule reads.
func (r Rule) String() string {
	var b strings.Builder
	if r.Allow {
		b.WriteString(Allow)
	} else {
		b.WriteString(Deny)
	}
	fmt.Fprintf(&b, " %s -> %s", r.From, r.To)
	if r.Proto != "" {
		b.WriteString(" " + r.Proto)
	}
	for i, p := range r.Ports {
		if i == 0 {
			b.WriteString(" ")
		} else {
			b.WriteString(",")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

var (
	policyKeys = []string{"default", "groups", "rules"}
	// patternRE is what a host name pattern may hold.
	patternRE = regexp.MustCompile(`^[a-z0-9_.*?\[\]-]{1,63}$`)
)

// policy decodes the policy section.
func (d *decoder) policy(s *Spec, v *yaml.Node) {
	s.Policy.Present = true
	if isNull(v) || !d.kind(v, "policy", yaml.MappingNode) {
		return
	}
	d.mapping(v, "policy", policyKeys, func(key string, k, v *yaml.Node) {
		f := "policy." + key
		switch key {
		case "default":
			s.Policy.Default, _ = d.str(v, f)
		case "groups":
			if isNull(v) || !d.kind(v, f, yaml.MappingNode) {
				return
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				gk, gv := v.Content[i], v.Content[i+1]
				gf := f + "." + gk.Value
				d.lines[gf] = gk.Line
				g := Group{Name: gk.Value}
				for _, it := range d.strs(gv, gf) {
					g.Members = append(g.Members, d.term(it))
				}
				s.Policy.Groups = append(s.Policy.Groups, g)
			}
		case "rules":
			for _, it := range d.strs(v, f) {
				r, err := ParseRule(it.s)
				if err != nil && !d.failed[it.field] {
					d.fail(it.field, CodePolicyRule, "%v", err)
				}
				s.Policy.Rules = append(s.Policy.Rules, r)
			}
		}
	})
}

func (d *decoder) term(it item) Term {
	if d.failed[it.field] {
		return Term{Kind: TermName}
	}
	t, err := ParseTerm(it.s)
	if err != nil {
		d.fail(it.field, CodePolicyGroup, "%v", err)
	}
	return t
}

// lintPolicy checks the policy against the hosts: the default, group names,
// and every name a group or rule uses.
func (s *Spec) lintPolicy(ps *problems) {
	p := &s.Policy
	switch p.Default {
	case "", Allow, Deny:
	default:
		ps.errorf("policy.default", CodePolicyDefault, "%q: must be allow or deny", p.Default)
	}
	groups := map[string]bool{}
	for _, g := range p.Groups {
		f := "policy.groups." + g.Name
		switch {
		case !ValidName(g.Name) || g.Name == "any":
			ps.errorf(f, CodePolicyGroup, "%q: a group name is 1-63 of a-z 0-9 _ . - starting with a letter or digit, not \"any\"", g.Name)
		case groups[g.Name]:
			ps.errorf(f, CodePolicyGroup, "%q: defined twice", g.Name)
		}
		if _, ok := s.HostByName(g.Name); ok {
			ps.errorf(f, CodePolicyGroup, "%q: also a host's name; a rule naming it would be ambiguous", g.Name)
		}
		groups[g.Name] = true
		for j, m := range g.Members {
			if m.Kind == TermName {
				if _, ok := s.HostByName(m.Name); !ok {
					ps.errorf(index(f, j), CodePolicyGroup, "%q: no host has that name (a group lists hosts, tag:TAG, name patterns and prefixes, not other groups)", m.Name)
				}
			}
		}
	}
	for i, r := range p.Rules {
		for _, t := range []Term{r.From, r.To} {
			if t.Kind == TermName && !groups[t.Name] {
				if _, ok := s.HostByName(t.Name); !ok {
					ps.errorf(index("policy.rules", i), CodePolicyRule, "%q: no group or host has that name", t.Name)
				}
			}
		}
	}
	for i, h := range s.Hosts {
		for j, t := range h.Tags {
			if !ValidName(t) {
				ps.errorf(index(index("hosts", i)+".tags", j), CodePolicyTag, "%q: a tag is 1-63 of a-z 0-9 _ . - starting with a letter or digit", t)
			}
		}
	}
}

// policyNode returns the policy mapping, made when create is set and there is none.
func (d *Document) policyNode(create bool) (*yaml.Node, error) {
	top := d.top()
	n := lookup(top, "policy")
	if n == nil || isNull(n) {
		if !create {
			return nil, nil
		}
		n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		setKey(top, "policy", n, topKeys)
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("policy is not a mapping; fix it by hand (line %d)", n.Line)
	}
	return n, nil
}

// AddPolicyRule inserts a rule at position at (0-based) of policy.rules, or
// appends it when at < 0 or beyond the end. The rule must parse; names it uses
// are checked when the document is saved.
func (d *Document) AddPolicyRule(rule string, at int) error {
	r, err := ParseRule(rule)
	if err != nil {
		return fmt.Errorf("policy add: %w", err)
	}
	n, err := d.policyNode(true)
	if err != nil {
		return err
	}
	rules := lookup(n, "rules")
	if rules == nil || isNull(rules) {
		rules = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		setKey(n, "rules", rules, policyKeys)
	}
	if rules.Kind != yaml.SequenceNode {
		return fmt.Errorf("policy.rules is not a list; fix it by hand (line %d)", rules.Line)
	}
	rules.Style = 0
	item := strNode(r.String())
	if at < 0 || at > len(rules.Content) {
		at = len(rules.Content)
	}
	rules.Content = append(rules.Content[:at], append([]*yaml.Node{item}, rules.Content[at:]...)...)
	return nil
}

// RemovePolicyRule removes the rule at position i (0-based) of policy.rules,
// keeping the comments of the others, and returns its text.
func (d *Document) RemovePolicyRule(i int) (string, error) {
	n, err := d.policyNode(false)
	if err != nil {
		return "", err
	}
	var rules *yaml.Node
	if n != nil {
		rules = lookup(n, "rules")
	}
	if rules == nil || rules.Kind != yaml.SequenceNode || i < 0 || i >= len(rules.Content) {
		return "", fmt.Errorf("policy remove: no rule %d (see wgnet policy list)", i+1)
	}
	text := rules.Content[i].Value
	removeItem(rules, rules.Content[i], &d.layout)
	return text, nil
}

// SetPolicyGroup defines the group name with members (replacing its members if
// it exists); no members removes the group.
func (d *Document) SetPolicyGroup(name string, members []string) error {
	for _, m := range members {
		if _, err := ParseTerm(m); err != nil {
			return fmt.Errorf("policy group %s: %w", name, err)
		}
	}
	n, err := d.policyNode(len(members) > 0)
	if err != nil || n == nil {
		return err
	}
	groups := lookup(n, "groups")
	if len(members) == 0 {
		if groups != nil && groups.Kind == yaml.MappingNode {
			deleteKey(groups, name)
		}
		return nil
	}
	if groups == nil || isNull(groups) {
		groups = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		setKey(n, "groups", groups, policyKeys)
	}
	if groups.Kind != yaml.MappingNode {
		return fmt.Errorf("policy.groups is not a mapping; fix it by hand (line %d)", groups.Line)
	}
	setKey(groups, name, flowList(members), nil)
	return nil
}

// SetPolicyDefault sets the verdict for packets no rule matches.
func (d *Document) SetPolicyDefault(verdict string) error {
	if verdict != Allow && verdict != Deny {
		return fmt.Errorf("policy default %q: want allow or deny", verdict)
	}
	n, err := d.policyNode(true)
	if err != nil {
		return err
	}
	setKey(n, "default", strNode(verdict), policyKeys)
	return nil
}

// policyYAML renders a policy section.
func policyYAML(p *Policy) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if p.Default != "" {
		appendKey(n, "default", strNode(p.Default))
	}
	if len(p.Groups) > 0 {
		g := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, gr := range p.Groups {
			var ms []string
			for _, m := range gr.Members {
				ms = append(ms, m.String())
			}
			appendKey(g, gr.Name, flowList(ms))
		}
		appendKey(n, "groups", g)
	}
	if len(p.Rules) > 0 {
		var rs []string
		for _, r := range p.Rules {
			rs = append(rs, r.String())
		}
		l := flowList(rs)
		l.Style = 0
		appendKey(n, "rules", l)
	}
	return n
}
