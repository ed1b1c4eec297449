package hostnet

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/wgnet/wgnet/internal/iptables"
)

// wgnet's table in iptables, for a host where nf_tables does not answer (or
// when asked: FirewallBackendEnv). The same rules as the nftables table
// (firewall_linux.go, filter_linux.go), in both families, in chains of wgnet's
// own in the mangle table named after the table, each reached by one jump at
// the top of a built-in chain that carries the table's name as its comment.
// For `wgnet-wg0` with a clamp, a redirect drop and a filter, iptables-save
// prints (IPv4; IPv6 has `-p ipv6-icmp -m icmp6 --icmpv6-type 137`):
//
//	*mangle
//	-A INPUT -m comment --comment wgnet-wg0 -j wgnet-wg0-in
//	-A FORWARD -m comment --comment wgnet-wg0 -j wgnet-wg0-fwd
//	-A OUTPUT -m comment --comment wgnet-wg0 -j wgnet-wg0-out
//	-A wgnet-wg0-fwd -o wg0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
//	-A wgnet-wg0-fwd -i wg0 -j wgnet-wg0-pol
//	-A wgnet-wg0-fwd -i wg0 -j RETURN
//	-A wgnet-wg0-fwd -o wg0 -p tcp -m tcp --tcp-flags SYN,RST NONE -m conntrack --ctstate NEW -j DROP
//	-A wgnet-wg0-in -i wg0 -j wgnet-wg0-pol
//	-A wgnet-wg0-out -o wg0 -p icmp -m icmp --icmp-type 5 -j DROP
//	-A wgnet-wg0-out -o wg0 -p tcp -m tcp --tcp-flags SYN,RST NONE -m conntrack --ctstate NEW -j DROP
//	-A wgnet-wg0-pol -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
//	-A wgnet-wg0-pol -s 10.10.1.0/24 -d 10.10.4.0/24 -p tcp -m multiport --dports 5432 -m comment --comment "r0 allow app -> db" -j RETURN
//	-A wgnet-wg0-pol -m comment --comment "default: deny" -j DROP
//
// The mangle table, because its chains run before the filter table's at the
// same hook: an ACCEPT in filter (Docker's DOCKER-USER jump and its accepts,
// dockerfw's, ufw's) cannot let a packet past the policy's drops, as an
// accept in another nftables table cannot past wgnet's. The filter's accept is
// RETURN, not ACCEPT: as an accept in wgnet's nftables table is not final for
// the host's other tables, a packet the policy lets through goes on through
// the rest of the built-in chain and the filter table (a host's own drops
// still apply); its drops are final, as in nftables. A filter rule with
// several prefixes or port ranges is one iptables rule per source, per
// destination and per group of at most 15 ports (multiport), each with the
// comment "rINDEX COMMENT", so that it reads back as the one rule it is. The
// FORWARD chain is there even when empty: it is what says the table exists.

// The suffixes of wgnet's chains after the table's name.
const (
	iptFwdChain = "-fwd"
	iptInChain  = "-in"
	iptOutChain = "-out"
	iptPolChain = "-pol"
)

// iptablesTables are the tables wgnet's chains are in, in order (a jump
// goes only to a chain of its own table).
var iptablesTables = []string{"mangle"}

// iptRule is one rule of wgnet's table in one iptables table: its chain and
// its arguments in the order iptables-save prints them.
type iptRule struct {
	chain string
	args  []string
}

// iptFamily is what wgnet's table is in one family of iptables: by iptables
// table, the chains of wgnet's and the rules (the jumps from built-in chains
// first).
type iptFamily map[string]*iptTable

type iptTable struct {
	chains []string
	rules  []iptRule
}

func (f iptFamily) add(table, chain string, args ...string) {
	t := f[table]
	if t == nil {
		t = &iptTable{}
		f[table] = t
	}
	t.rules = append(t.rules, iptRule{chain, args})
}

// chain declares wgnet's chain name in table, with a jump to it from the
// built-in chain from.
func (f iptFamily) chain(table, from, name, comment string) {
	f.add(table, from, slices.Concat(iptables.Comment(comment), []string{"-j", name})...)
	f[table].chains = append(f[table].chains, name)
}

func clampArgs(ifname string) []string {
	return []string{"-o", ifname, "-p", "tcp", "-m", "tcp", "--tcp-flags", "SYN,RST", "SYN", "-j", "TCPMSS", "--clamp-mss-to-pmtu"}
}

func redirectArgs(ifname string, six bool) []string {
	if six {
		return []string{"-o", ifname, "-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", "137", "-j", "DROP"}
	}
	return []string{"-o", ifname, "-p", "icmp", "-m", "icmp", "--icmp-type", "5", "-j", "DROP"}
}

func midStreamArgs(ifname string) []string {
	return []string{"-o", ifname, "-p", "tcp", "-m", "tcp", "--tcp-flags", "SYN,RST", "NONE", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"}
}

var establishedArgs = []string{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"}

// iptablesFirewall is fw in one family of iptables.
func iptablesFirewall(fw Firewall, six bool) iptFamily {
	f := iptFamily{}
	t := fw.Table
	f.chain("mangle", "FORWARD", t+iptFwdChain, t)
	for _, ifname := range fw.ClampMSS {
		f.add("mangle", t+iptFwdChain, clampArgs(ifname)...)
	}
	if fw.Filter != nil || len(fw.DropRedirects) > 0 {
		f.chain("mangle", "OUTPUT", t+iptOutChain, t)
	}
	for _, ifname := range fw.DropRedirects {
		f.add("mangle", t+iptOutChain, redirectArgs(ifname, six)...)
	}
	if fw.Filter == nil {
		return f
	}
	ifname, pol := fw.Filter.Iface, t+iptPolChain
	f.chain("mangle", "INPUT", t+iptInChain, t)
	f["mangle"].chains = append(f["mangle"].chains, pol)
	f.add("mangle", t+iptInChain, "-i", ifname, "-j", pol)
	f.add("mangle", t+iptFwdChain, "-i", ifname, "-j", pol)
	f.add("mangle", t+iptFwdChain, "-i", ifname, "-j", "RETURN")
	f.add("mangle", t+iptFwdChain, midStreamArgs(ifname)...)
	f.add("mangle", t+iptOutChain, midStreamArgs(ifname)...)
	f.add("mangle", pol, establishedArgs...)
	for i, r := range fw.Filter.Rules {
		if r.V6 == six {
			for _, args := range filterRuleArgs(i, r) {
				f.add("mangle", pol, args...)
			}
		}
	}
	if !fw.Filter.DefaultAccept {
		f.add("mangle", pol, slices.Concat(iptables.Comment(defaultDenyComment), []string{"-j", "DROP"})...)
	}
	return f
}

// multiportMax is how many ports one multiport match takes (a range counts
// two).
const multiportMax = 15

// filterRuleArgs is rule i of a filter as iptables rules: one per source, per
// destination and per group of ports.
func filterRuleArgs(i int, r FilterRule) [][]string {
	opt := func(flag string, ps []netip.Prefix) [][]string {
		if len(ps) == 0 {
			return [][]string{nil}
		}
		var out [][]string
		for _, p := range ps {
			out = append(out, []string{flag, p.String()})
		}
		return out
	}
	var proto []string
	switch {
	case r.Proto == "icmp" && r.V6:
		proto = []string{"-p", "ipv6-icmp"}
	case r.Proto != "":
		proto = []string{"-p", r.Proto}
	}
	ports := [][]string{nil}
	if len(r.Ports) > 0 {
		ports = nil
		var group []string
		n := 0
		for _, pr := range r.Ports {
			s, cost := strconv.Itoa(int(pr.From)), 1
			if pr.To != pr.From {
				s, cost = fmt.Sprintf("%d:%d", pr.From, pr.To), 2
			}
			if n+cost > multiportMax {
				ports = append(ports, []string{"-m", "multiport", "--dports", strings.Join(group, ",")})
				group, n = nil, 0
			}
			group, n = append(group, s), n+cost
		}
		ports = append(ports, []string{"-m", "multiport", "--dports", strings.Join(group, ",")})
	}
	verdict := []string{"-j", "DROP"}
	if r.Accept {
		verdict = []string{"-j", "RETURN"}
	}
	c := "r" + strconv.Itoa(i)
	if r.Comment != "" {
		c += " " + r.Comment
	}
	comment := iptables.Comment(c)
	var out [][]string
	for _, s := range opt("-s", r.Src) {
		for _, d := range opt("-d", r.Dst) {
			for _, p := range ports {
				out = append(out, slices.Concat(s, d, proto, p, comment, verdict))
			}
		}
	}
	return out
}

// checkIptablesFirewall refuses what iptables could not hold or read back:
// names too long for a chain, comments with control characters.
func checkIptablesFirewall(fw Firewall) error {
	if len(fw.Table)+len(iptFwdChain) > 28 || fw.Table == "" || strings.ContainsFunc(fw.Table, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r > '~' }) {
		return fmt.Errorf("firewall %s: the name cannot be an iptables chain (at most 24 printable characters)", fw.Table)
	}
	for _, ifname := range slices.Concat(fw.ClampMSS, fw.DropRedirects) {
		if ifname == "" || len(ifname) >= 16 {
			return fmt.Errorf("firewall %s: interface name %q: must be 1-15 characters", fw.Table, ifname)
		}
	}
	if err := fw.Filter.Validate(); err != nil {
		return fmt.Errorf("firewall %s: %w", fw.Table, err)
	}
	if fw.Filter != nil {
		for i, r := range fw.Filter.Rules {
			if strings.ContainsFunc(r.Comment, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				return fmt.Errorf("firewall %s: filter rule %d: comment %q: iptables cannot hold a control character", fw.Table, i, r.Comment)
			}
		}
	}
	return nil
}

// ourChains are the names of every chain wgnet's table may have.
func ourChains(table string) []string {
	return []string{table + iptFwdChain, table + iptInChain, table + iptOutChain, table + iptPolChain}
}

// target is the chain a rule jumps or goes to ("" for none).
func target(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-j" || args[i] == "-g" {
			return args[i+1]
		}
	}
	return ""
}

// iptablesFirewallInput is the iptables-restore -n input that makes wgnet's
// table in one family of iptables exactly want (nil: none), from the family's
// tables as iptables-save printed them: every jump to one of its chains
// deleted, the chains it wants declared (made, or emptied), the others emptied
// and deleted, the jumps inserted at the top of their built-in chains and the
// rules appended. had says whether anything of the table was there.
func iptablesFirewallInput(saved []*iptables.Table, table string, want iptFamily) (input string, had bool) {
	ours := ourChains(table)
	var in iptables.Input
	for _, name := range iptablesTables {
		var cur *iptables.Table
		for _, t := range saved {
			if t.Name == name {
				cur = t
			}
		}
		w := want[name]
		if w == nil {
			w = &iptTable{}
		}
		var jumps []string
		var gone []string
		if cur != nil {
			for _, r := range cur.Rules {
				if !slices.Contains(ours, r.Chain) && slices.Contains(ours, target(iptables.Fields(r.Spec))) {
					jumps = append(jumps, r.Line)
				}
			}
			for _, c := range cur.Chains {
				if slices.Contains(ours, c.Name) && !slices.Contains(w.chains, c.Name) {
					gone = append(gone, c.Name)
				}
			}
			had = had || len(jumps) > 0 || slices.ContainsFunc(cur.Chains, func(c iptables.Chain) bool { return slices.Contains(ours, c.Name) })
		}
		if len(jumps)+len(gone)+len(w.chains)+len(w.rules) == 0 {
			continue
		}
		in.Table(name)
		for _, l := range jumps {
			in.Line("-D" + strings.TrimPrefix(l, "-A"))
		}
		for _, c := range w.chains {
			in.Chain(c)
		}
		for _, c := range gone {
			in.Rule("-F", c)
		}
		for _, c := range gone {
			in.Rule("-X", c)
		}
		for _, r := range w.rules {
			if slices.Contains(ours, r.chain) {
				in.Rule("-A", r.chain, r.args...)
			} else {
				in.Rule("-I", r.chain, append([]string{"1"}, r.args...)...)
			}
		}
	}
	return in.String(), had
}

// ourIptables is what of wgnet's table one family's iptables-save shows: by
// iptables table, its chains and its rules (the jumps to its chains
// included), each rule's arguments unquoted.
func ourIptables(saved []*iptables.Table, table string) iptFamily {
	ours := ourChains(table)
	f := iptFamily{}
	for _, t := range saved {
		if !slices.Contains(iptablesTables, t.Name) {
			continue
		}
		for _, c := range t.Chains {
			if slices.Contains(ours, c.Name) {
				if f[t.Name] == nil {
					f[t.Name] = &iptTable{}
				}
				f[t.Name].chains = append(f[t.Name].chains, c.Name)
			}
		}
		for _, r := range t.Rules {
			args := iptables.Fields(r.Spec)
			if slices.Contains(ours, r.Chain) || slices.Contains(ours, target(args)) {
				f.add(t.Name, r.Chain, args...)
			}
		}
	}
	return f
}

// readIptablesFirewall rebuilds wgnet's table from what both families of
// iptables hold of it (v4, v6), and then checks that it is exactly what
// ApplyFirewall writes for that table, so that a rule wgnet did not write is
// an error, never taken for one of its own. found is false when neither
// family has any of it.
func readIptablesFirewall(table string, v4, v6 iptFamily) (fw Firewall, found bool, err error) {
	if len(v4) == 0 && len(v6) == 0 {
		return Firewall{}, false, nil
	}
	fw = Firewall{Table: table}
	ruleArgs := func(f iptFamily, tbl, chain string) [][]string {
		var out [][]string
		if t := f[tbl]; t != nil {
			for _, r := range t.rules {
				if r.chain == chain {
					out = append(out, r.args)
				}
			}
		}
		return out
	}
	for _, args := range ruleArgs(v4, "mangle", table+iptFwdChain) {
		if len(args) > 1 && slices.Equal(args, clampArgs(args[1])) {
			fw.ClampMSS = append(fw.ClampMSS, args[1])
		}
	}
	for _, args := range ruleArgs(v4, "mangle", table+iptOutChain) {
		if len(args) > 1 && slices.Equal(args, redirectArgs(args[1], false)) {
			fw.DropRedirects = append(fw.DropRedirects, args[1])
		}
	}
	if slices.Contains(v4.chains("mangle"), table+iptPolChain) || slices.Contains(v6.chains("mangle"), table+iptPolChain) {
		fw.Filter = readIptablesFilter(table, v4, v6, ruleArgs)
	}
	for _, six := range []bool{false, true} {
		got := map[bool]iptFamily{false: v4, true: v6}[six]
		if err := sameIptables(iptablesFirewall(fw, six), got, six); err != nil {
			return Firewall{}, true, fmt.Errorf("firewall %s: %w", table, err)
		}
	}
	return fw, true, nil
}

func (f iptFamily) chains(table string) []string {
	if t := f[table]; t != nil {
		return t.chains
	}
	return nil
}

// readIptablesFilter rebuilds the filter from the policy chains of both
// families: each rule from the iptables rules with its index in their
// comments (prefixes and ports gathered in order).
func readIptablesFilter(table string, v4, v6 iptFamily, ruleArgs func(iptFamily, string, string) [][]string) *Filter {
	f := &Filter{DefaultAccept: true}
	for _, args := range ruleArgs(v4, "mangle", table+iptInChain) {
		if len(args) > 1 && args[0] == "-i" {
			f.Iface = args[1]
		}
	}
	byIndex := map[int]*FilterRule{}
	for _, six := range []bool{false, true} {
		rules := ruleArgs(map[bool]iptFamily{false: v4, true: v6}[six], "mangle", table+iptPolChain)
		for _, args := range rules {
			r, i, ok := parseIptablesFilterRule(args, six)
			switch {
			case !six && slices.Equal(args, slices.Concat(iptables.Comment(defaultDenyComment), []string{"-j", "DROP"})):
				f.DefaultAccept = false
			case !ok:
			case byIndex[i] == nil:
				byIndex[i] = &r
			default:
				b := byIndex[i]
				for _, p := range r.Src {
					if !slices.Contains(b.Src, p) {
						b.Src = append(b.Src, p)
					}
				}
				for _, p := range r.Dst {
					if !slices.Contains(b.Dst, p) {
						b.Dst = append(b.Dst, p)
					}
				}
				for _, p := range r.Ports {
					if !slices.Contains(b.Ports, p) {
						b.Ports = append(b.Ports, p)
					}
				}
			}
		}
	}
	for i := 0; byIndex[i] != nil; i++ {
		f.Rules = append(f.Rules, *byIndex[i])
	}
	return f
}

// parseIptablesFilterRule reads one iptables rule of a filter rule, and the
// index in its comment.
func parseIptablesFilterRule(args []string, six bool) (FilterRule, int, bool) {
	r := FilterRule{V6: six}
	index := -1
	for i := 0; i+1 < len(args); i++ {
		v := args[i+1]
		switch args[i] {
		case "-s", "-d":
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return r, 0, false
			}
			if args[i] == "-s" {
				r.Src = append(r.Src, p)
			} else {
				r.Dst = append(r.Dst, p)
			}
		case "-p":
			r.Proto = map[string]string{"ipv6-icmp": "icmp"}[v]
			if r.Proto == "" {
				r.Proto = v
			}
		case "--dports":
			for _, s := range strings.Split(v, ",") {
				from, to, rng := strings.Cut(s, ":")
				a, err1 := strconv.ParseUint(from, 10, 16)
				b, err2 := strconv.ParseUint(to, 10, 16)
				if !rng {
					b, err2 = a, nil
				}
				if err1 != nil || err2 != nil {
					return r, 0, false
				}
				r.Ports = append(r.Ports, PortRange{uint16(a), uint16(b)})
			}
		case "--comment":
			head, rest, _ := strings.Cut(v, " ")
			n, err := strconv.Atoi(strings.TrimPrefix(head, "r"))
			if !strings.HasPrefix(head, "r") || err != nil || n < 0 {
				return r, 0, false
			}
			index, r.Comment = n, rest
		case "-j":
			r.Accept = v == "RETURN"
		}
	}
	return r, index, index >= 0
}

// sameIptables reports how got, what one family holds of wgnet's table,
// differs from want.
func sameIptables(want, got iptFamily, six bool) error {
	prog := strings.TrimSuffix(iptables.Save(six), "-save")
	for _, name := range iptablesTables {
		w, g := want[name], got[name]
		if w == nil {
			w = &iptTable{}
		}
		if g == nil {
			g = &iptTable{}
		}
		if !slices.Equal(slices.Sorted(slices.Values(w.chains)), slices.Sorted(slices.Values(g.chains))) {
			return fmt.Errorf("%s table %s: chains %v, not wgnet's %v", prog, name, g.chains, w.chains)
		}
		byChain := func(rs []iptRule) map[string][]string {
			m := map[string][]string{}
			for _, r := range rs {
				m[r.chain] = append(m[r.chain], strings.Join(r.args, "\x00"))
			}
			return m
		}
		wr, gr := byChain(w.rules), byChain(g.rules)
		for _, r := range g.rules {
			if !slices.Equal(wr[r.chain], gr[r.chain]) {
				return fmt.Errorf("%s table %s chain %s holds a rule wgnet did not write: %s", prog, name, r.chain, strings.Join(r.args, " "))
			}
		}
		for _, r := range w.rules {
			if !slices.Equal(wr[r.chain], gr[r.chain]) {
				return fmt.Errorf("%s table %s chain %s lacks wgnet's rule: %s", prog, name, r.chain, strings.Join(r.args, " "))
			}
		}
	}
	return nil
}
