package live

import (
	"bufio"
	"fmt"
	"net/netip"
	"strings"

	"github.com/wgnet/wgnet/internal/iptables"
)

// Firewall is the part of a host's ruleset that decides whether tunnel traffic
// is forwarded: its chains, from iptables-save and `nft list ruleset`, with the
// matches that matter here (interfaces, addresses) and the verdict of each rule.
type Firewall struct {
	Chains []*Chain
	// HasDockerUser is set when iptables has Docker's DOCKER-USER chain, where
	// Docker wants a user's accepts.
	HasDockerUser bool
}

// Chain is one chain of one table.
type Chain struct {
	Nft    bool   // read from nft (else iptables-save)
	Family string // ip, ip6, inet (iptables: ip)
	Table  string
	Chain  string
	Hook   string // forward, prerouting, postrouting...; "" for a regular chain
	Policy string // accept or drop; "" for a regular chain
	Rules  []Rule
}

func (c *Chain) String() string {
	if c.Nft {
		return fmt.Sprintf("nft chain %s %s %s", c.Family, c.Table, c.Chain)
	}
	return fmt.Sprintf("iptables %s chain %s", c.Table, c.Chain)
}

// Rule is one rule: what it matches on, and its verdict.
type Rule struct {
	Text          string
	In, Out       string // "-i X" / iifname "X"
	NotIn, NotOut string // "! -i X" / iifname != "X"
	Src, Dst      netip.Prefix
	// Verdict is accept, drop, reject, masquerade, snat, return, or jump/goto.
	Verdict string
	Target  string // the chain of a jump or goto
	// Other is set when the rule matches on something else too (conntrack
	// state, ports...), so it does not cover every packet its interfaces do.
	Other bool
}

func (r Rule) String() string { return r.Text }

// ParseRuleset reads both text forms. A chain that both show (iptables-nft) is
// kept once, from iptables-save.
func ParseRuleset(rs Ruleset) *Firewall {
	fw := &Firewall{}
	seen := map[string]bool{}
	v4 := parseIptablesSave(rs.IptablesSave, "ip")
	for _, c := range append(v4, parseIptablesSave(rs.Ip6tablesSave, "ip6")...) {
		fw.Chains = append(fw.Chains, c)
		seen[c.Family+" "+c.Table+" "+c.Chain] = true
		if c.Table == "filter" && c.Chain == "DOCKER-USER" {
			fw.HasDockerUser = true
		}
	}
	for _, c := range parseNft(rs.Nft) {
		if seen[c.Family+" "+c.Table+" "+c.Chain] {
			continue
		}
		fw.Chains = append(fw.Chains, c)
	}
	return fw
}

func (fw *Firewall) chain(c *Chain, name string) *Chain {
	for _, x := range fw.Chains {
		if x.Nft == c.Nft && x.Family == c.Family && x.Table == c.Table && x.Chain == name {
			return x
		}
	}
	return nil
}

// Flow is a kind of forwarded packet: the interfaces it comes in and goes out
// on ("" when not known) and the prefixes its addresses are in (zero when not
// known). A rule that matches on something a flow does not say does not
// match it.
type Flow struct {
	In, Out  string
	Src, Dst netip.Prefix
}

func (f Flow) String() string {
	s := "from " + f.In
	if f.Src.IsValid() {
		s += " (" + f.Src.String() + ")"
	}
	if f.Out != "" {
		s += " to " + f.Out
	}
	if f.Dst.IsValid() {
		s += " (" + f.Dst.String() + ")"
	}
	return s
}

// ForwardDrops returns the base forward chains whose policy is drop and that
// accept nothing that comes in on wg, following jumps. (An accept in another
// base chain is not final: this chain still drops.)
func (fw *Firewall) ForwardDrops(wg string) []*Chain {
	var out []*Chain
	for _, c := range fw.Chains {
		if len(fw.DroppedFlows(c, []Flow{{In: wg}})) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// DroppedFlows returns the flows that c, a base forward chain, drops: by a
// drop rule before any accept, or by its policy.
func (fw *Firewall) DroppedFlows(c *Chain, flows []Flow) []Flow {
	if c.Hook != "forward" {
		return nil
	}
	var out []Flow
	for _, f := range flows {
		if !c.holds(f) {
			continue
		}
		v := fw.verdict(c, f, 0)
		if v == "drop" || (v == "" && c.Policy == "drop") {
			out = append(out, f)
		}
	}
	return out
}

// holds reports whether packets of flow f pass through c by their family: an
// IPv6 flow not through an ip (iptables) chain, an IPv4 one not through ip6.
func (c *Chain) holds(f Flow) bool {
	v6 := (f.Src.IsValid() && f.Src.Addr().Is6()) || (f.Dst.IsValid() && f.Dst.Addr().Is6())
	v4 := (f.Src.IsValid() && f.Src.Addr().Is4()) || (f.Dst.IsValid() && f.Dst.Addr().Is4())
	switch c.Family {
	case "ip":
		return !v6
	case "ip6":
		return !v4
	}
	return true
}

// verdict is what chain c (following jumps) does with every packet of flow f:
// "accept", "drop", or "" when it falls through. Rules that match on more
// than the flow says (conntrack state, ports) are passed over.
func (fw *Firewall) verdict(c *Chain, f Flow, depth int) string {
	if c == nil || depth > 8 {
		return ""
	}
	for _, r := range c.Rules {
		if !r.matches(f) {
			continue
		}
		switch r.Verdict {
		case "accept":
			return "accept"
		case "drop", "reject":
			return "drop"
		case "return":
			return ""
		case "jump", "goto":
			if v := fw.verdict(fw.chain(c, r.Target), f, depth+1); v != "" || r.Verdict == "goto" {
				return v
			}
		}
	}
	return ""
}

// matches reports whether r applies to every packet of flow f.
func (r Rule) matches(f Flow) bool {
	within := func(rp, fp netip.Prefix) bool {
		return !rp.IsValid() || (fp.IsValid() && rp.Bits() <= fp.Bits() && rp.Contains(fp.Addr()))
	}
	return !r.Other &&
		(r.In == "" || r.In == f.In) && (r.NotIn == "" || (f.In != "" && r.NotIn != f.In)) &&
		(r.Out == "" || r.Out == f.Out) && (r.NotOut == "" || (f.Out != "" && r.NotOut != f.Out)) &&
		within(r.Src, f.Src) && within(r.Dst, f.Dst)
}

// RawDrops returns the rules of prerouting chains that drop packets to an
// address of p arriving on wg: Docker 28's `-d CONTAINER ! -i BRIDGE -j DROP`.
func (fw *Firewall) RawDrops(p netip.Prefix, wg string) []Rule {
	var out []Rule
	for _, c := range fw.Chains {
		if c.Hook != "prerouting" {
			continue
		}
		for _, r := range c.Rules {
			if r.Verdict != "drop" || !r.Dst.IsValid() || !r.Dst.Overlaps(p) {
				continue
			}
			if (r.In != "" && r.In != wg) || r.NotIn == wg {
				continue
			}
			out = append(out, r)
		}
	}
	return out
}

// Masquerades returns the postrouting rule that masquerades packets from p
// leaving through the tunnel (Docker's `-s SUBNET ! -o BRIDGE -j MASQUERADE`)
// unless a RETURN for them comes first.
func (fw *Firewall) Masquerades(p netip.Prefix, dev string) (Rule, bool) {
	for _, c := range fw.Chains {
		if c.Hook != "postrouting" {
			continue
		}
		for _, r := range fw.flatten(c, 0) {
			if r.Src.IsValid() && !r.Src.Overlaps(p) {
				continue
			}
			if r.Out != "" && r.Out == dev {
				continue
			}
			switch r.Verdict {
			case "return", "accept":
				if r.Src.IsValid() {
					return Rule{}, false
				}
			case "masquerade", "snat":
				if r.Src.IsValid() && r.NotOut != "" {
					return r, true
				}
			}
		}
	}
	return Rule{}, false
}

// flatten lists c's rules with jumps expanded in place (a rough order: enough
// to see a RETURN before a MASQUERADE).
func (fw *Firewall) flatten(c *Chain, depth int) []Rule {
	if c == nil || depth > 8 {
		return nil
	}
	var out []Rule
	for _, r := range c.Rules {
		if r.Verdict == "jump" || r.Verdict == "goto" {
			out = append(out, fw.flatten(fw.chain(c, r.Target), depth+1)...)
			continue
		}
		out = append(out, r)
	}
	return out
}

// parseIptablesSave reads iptables-save output (several tables) as chains of
// family ("ip", or "ip6" for ip6tables-save). Output of both appended in one
// string reads as ip: the second dump's chains are skipped.
func parseIptablesSave(s, family string) []*Chain {
	var out []*Chain
	byName := map[string]*Chain{}
	for _, t := range iptables.ParseSave(s) {
		table := t.Name
		for _, sc := range t.Chains {
			c := &Chain{Family: family, Table: table, Chain: sc.Name}
			if sc.Policy != "" {
				c.Policy = strings.ToLower(sc.Policy)
				c.Hook = strings.ToLower(sc.Name)
			}
			if old := byName[table+" "+sc.Name]; old != nil {
				continue // ip6tables-save after iptables-save: same chain names
			}
			byName[table+" "+sc.Name] = c
			out = append(out, c)
		}
		for _, r := range t.Rules {
			f := strings.Fields(r.Line)
			if len(f) < 2 {
				continue
			}
			c := byName[table+" "+f[1]]
			if c == nil {
				continue
			}
			c.Rules = append(c.Rules, parseIptablesRule(r.Line, f[2:]))
		}
	}
	return out
}

func parseIptablesRule(text string, f []string) Rule {
	r := Rule{Text: text}
	not := false
	for i := 0; i < len(f); i++ {
		arg := func() string {
			if i+1 < len(f) {
				i++
				return f[i]
			}
			return ""
		}
		switch f[i] {
		case "!":
			not = true
			continue
		case "-i", "--in-interface":
			if v := arg(); not {
				r.NotIn = v
			} else {
				r.In = v
			}
		case "-o", "--out-interface":
			if v := arg(); not {
				r.NotOut = v
			} else {
				r.Out = v
			}
		case "-s", "--source":
			if p, ok := parsePrefix(arg()); ok && !not {
				r.Src = p
			} else {
				r.Other = true
			}
		case "-d", "--destination":
			if p, ok := parsePrefix(arg()); ok && !not {
				r.Dst = p
			} else {
				r.Other = true
			}
		case "-j", "-g":
			t := arg()
			switch strings.ToUpper(t) {
			case "ACCEPT", "DROP", "REJECT", "MASQUERADE", "SNAT", "RETURN":
				r.Verdict = strings.ToLower(t)
			default:
				r.Verdict, r.Target = "jump", t
				if f[i-1] == "-g" {
					r.Verdict = "goto"
				}
			}
		case "-m":
			m := arg()
			if m != "comment" {
				r.Other = true
			}
		case "--comment":
			arg()
		case "-c":
			arg()
			arg()
		default:
			if strings.HasPrefix(f[i], "-") {
				r.Other = true
			}
		}
		not = false
	}
	return r
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// parseNft reads `nft list ruleset` output.
func parseNft(s string) []*Chain {
	var out []*Chain
	var family, table string
	var cur *Chain
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "table" && len(f) >= 3:
			family, table, cur = f[1], f[2], nil
		case f[0] == "chain" && len(f) >= 2:
			cur = &Chain{Nft: true, Family: family, Table: table, Chain: f[1]}
			out = append(out, cur)
		case f[0] == "}":
			if cur != nil {
				cur = nil
			}
		case cur == nil:
		case f[0] == "type":
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "hook" {
					cur.Hook = f[i+1]
				}
				if f[i] == "policy" {
					cur.Policy = strings.TrimSuffix(f[i+1], ";")
				}
			}
			if cur.Hook != "" && cur.Policy == "" {
				cur.Policy = "accept"
			}
		default:
			cur.Rules = append(cur.Rules, parseNftRule(line, f))
		}
	}
	return out
}

func parseNftRule(text string, f []string) Rule {
	r := Rule{Text: text}
	unq := func(s string) string { return strings.Trim(s, `"`) }
	for i := 0; i < len(f); i++ {
		next := func() string {
			if i+1 < len(f) {
				i++
				return f[i]
			}
			return ""
		}
		switch f[i] {
		case "iifname", "oifname":
			which := f[i]
			v := next()
			not := false
			if v == "!=" {
				not, v = true, next()
			}
			v = unq(v)
			switch {
			case which == "iifname" && not:
				r.NotIn = v
			case which == "iifname":
				r.In = v
			case not:
				r.NotOut = v
			default:
				r.Out = v
			}
		case "ip", "ip6":
			dir := next()
			v := next()
			if v == "!=" || strings.HasPrefix(v, "{") {
				r.Other = true
				continue
			}
			p, ok := parsePrefix(v)
			switch {
			case !ok:
				r.Other = true
			case dir == "saddr":
				r.Src = p
			case dir == "daddr":
				r.Dst = p
			default:
				r.Other = true
			}
		case "counter":
			if i+4 < len(f) && f[i+1] == "packets" {
				i += 4
			}
		case "accept", "drop", "reject", "masquerade", "snat", "return":
			r.Verdict = f[i]
		case "jump", "goto":
			r.Verdict, r.Target = f[i], next()
		case "comment":
			next()
		default:
			r.Other = true
		}
	}
	return r
}
