package up

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/intent"
)

// The segmentation policy on the host: the compiled intent.Filter becomes a
// hostnet.Filter in wgnet's table (filtering only what enters through the
// WireGuard interface), shown in plans as `+ rule` and `- rule` lines, applied by
// sync in the one transaction that replaces the table. A change that denies
// what the running filter lets through needs a confirmation deadline (or
// SyncOptions.AllowPolicyDeny), and deletes the conntrack entries of the
// connections it now denies.

// ErrNeedsConfirm: a sync whose policy change denies more than the running
// filter, without a confirmation deadline or AllowPolicyDeny.
var ErrNeedsConfirm = errors.New("the policy change needs a confirmation deadline")

// hostFilter converts the compiled filter of interface name into the host's
// form: each rule once per family it can match (IPv4 first), canonical, its
// origin as the comment. A disabled filter is nil.
func hostFilter(f intent.Filter, name string) (*hostnet.Filter, error) {
	if !f.Enabled {
		return nil, nil
	}
	out := &hostnet.Filter{Iface: name, DefaultAccept: f.DefaultAccept, Rules: []hostnet.FilterRule{}}
	for _, r := range f.Rules {
		switch r.Proto {
		case "", "icmp":
			if len(r.Ports) > 0 {
				return nil, fmt.Errorf("policy rule %q: ports need proto tcp or udp", r.Origin)
			}
		case "tcp", "udp":
		default:
			return nil, fmt.Errorf("policy rule %q: proto %q: want tcp, udp or icmp", r.Origin, r.Proto)
		}
		var ports []hostnet.PortRange
		for _, p := range r.Ports {
			if p.From > p.To {
				return nil, fmt.Errorf("policy rule %q: ports %d-%d: the first is above the last", r.Origin, p.From, p.To)
			}
			ports = append(ports, hostnet.PortRange{From: p.From, To: p.To})
		}
		for _, v6 := range []bool{false, true} {
			src, dst := ofFamily(r.Src, v6), ofFamily(r.Dst, v6)
			if len(r.Src) > 0 && len(src) == 0 || len(r.Dst) > 0 && len(dst) == 0 {
				continue // nothing of this family
			}
			hr := hostnet.FilterRule{V6: v6, Src: src, Dst: dst, Proto: r.Proto, Ports: ports, Accept: r.Accept, Comment: r.Origin}
			out.Rules = append(out.Rules, hr.Canonical())
		}
	}
	return out, nil
}

func ofFamily(ps []netip.Prefix, v6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Unmap().Is6() == v6 {
			out = append(out, p)
		}
	}
	return out
}

// withFilter puts the plan's filter into the target's table (creating the
// table when nothing else needs it).
func (t *target) withFilter(f *hostnet.Filter) {
	if f == nil {
		return
	}
	t.firewallManaged = true
	if t.firewall == nil {
		t.firewall = &hostnet.Firewall{Table: t.firewallTable}
	}
	t.firewall.Filter = f
}

// RuleChange is a filter rule added (+) or removed (-).
type RuleChange struct {
	Op   string `json:"op"`
	Rule string `json:"rule"` // as nft shows it
	// Origin is the policy rule it was compiled from.
	Origin string `json:"origin,omitempty"`
}

// policyChange fills in what the firewall change does to the filter: the rules
// added and removed (in order, by a longest common subsequence), the default
// verdict, whether it denies more than before, and which conntrack entries it
// deletes. tunnel are the prefixes that arrive through the interface (every
// peer's allowed IPs): only connections from there are forgotten.
func (fw *FirewallChange) policyChange(old, new *hostnet.Filter, tunnel []netip.Prefix) {
	rules := func(f *hostnet.Filter) []hostnet.FilterRule {
		if f == nil {
			return nil
		}
		return f.Rules
	}
	a, b := rules(old), rules(new)
	fw.Rules = append(fw.Rules, ruleDiff(a, b)...)
	if d := [2]string{verdictName(old), verdictName(new)}; d[0] != d[1] {
		fw.Default = &Change[string]{Old: d[0], New: d[1]}
	}
	if new == nil {
		return
	}
	denied, example := deniesMore(old, new)
	fw.DeniesMore = denied || !new.DefaultAccept && (old == nil || old.DefaultAccept)
	fw.Denied = example
	if !denied {
		return
	}
	oldF, newF := old.Clone(), new.Clone()
	fw.forget = func(f hostnet.Flow) bool {
		if !slices.ContainsFunc(tunnel, func(p netip.Prefix) bool { return p.Contains(f.Src) }) {
			return false
		}
		accepted := oldF == nil
		if oldF != nil {
			accepted, _ = oldF.Verdict(f)
		}
		now, _ := newF.Verdict(f)
		return accepted && !now
	}
}

func verdictName(f *hostnet.Filter) string {
	switch {
	case f == nil:
		return "none"
	case f.DefaultAccept:
		return "accept"
	}
	return "deny"
}

// ruleDiff lists the rules of a not in b's order as removed and those of b not
// in a's as added, by a longest common subsequence: a rule that stays, stays
// silent.
func ruleDiff(a, b []hostnet.FilterRule) []RuleChange {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i].Equal(b[j]) {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []RuleChange
	change := func(op string, r hostnet.FilterRule) {
		out = append(out, RuleChange{Op: op, Rule: r.String(), Origin: r.Comment})
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i].Equal(b[j]):
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			change(PeerAdd, b[j])
			j++
		default:
			change(PeerRemove, a[i])
			i++
		}
	}
	return out
}

// maxCells bounds the exact comparison of two filters (deniesMore); beyond it a
// change counts as denying more.
const maxCells = 1 << 22

// deniesMore reports whether new denies the first packet of some connection
// that old (nil: no filter) accepts, with an example. It is exact: the packet
// space is cut where any rule's prefixes or ports begin or end, and both filters
// are asked about one packet of each piece.
func deniesMore(old, new *hostnet.Filter) (bool, string) {
	all := slices.Concat(new.Rules)
	if old != nil {
		all = append(all, old.Rules...)
	}
	for _, v6 := range []bool{false, true} {
		var srcs, dsts []netip.Prefix
		var ports []hostnet.PortRange
		for _, r := range all {
			if r.V6 == v6 {
				srcs, dsts, ports = append(srcs, r.Src...), append(dsts, r.Dst...), append(ports, r.Ports...)
			}
		}
		zero := netip.IPv4Unspecified()
		icmp := uint8(1)
		if v6 {
			zero, icmp = netip.IPv6Unspecified(), 58
		}
		ss, ds, ps := cuts(srcs, zero), cuts(dsts, zero), portCuts(ports)
		if len(ss)*len(ds)*(2*len(ps)+2) > maxCells {
			return true, fmt.Sprintf("too many rules to compare exactly (%d x %d pieces)", len(ss), len(ds))
		}
		for _, s := range ss {
			for _, d := range ds {
				for _, proto := range []uint8{6, 17, icmp, 47} {
					pp := []uint16{0}
					if proto == 6 || proto == 17 {
						pp = ps
					}
					for _, port := range pp {
						f := hostnet.Flow{Proto: proto, Src: s, Dst: d, DstPort: port}
						was := old == nil
						if old != nil {
							was, _ = old.Verdict(f)
						}
						if now, rule := new.Verdict(f); was && !now {
							return true, flowText(f, new, rule)
						}
					}
				}
			}
		}
	}
	return false, ""
}

// cuts returns the first address of every piece the prefixes cut their
// family's address space into, sorted, from zero.
func cuts(ps []netip.Prefix, zero netip.Addr) []netip.Addr {
	out := []netip.Addr{zero}
	for _, p := range ps {
		out = append(out, p.Masked().Addr())
		if next := hostnet.LastAddr(p).Next(); next.IsValid() {
			out = append(out, next)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func portCuts(rs []hostnet.PortRange) []uint16 {
	out := []uint16{0}
	for _, r := range rs {
		out = append(out, r.From)
		if r.To < 65535 {
			out = append(out, r.To+1)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// flowText describes a connection a filter denies: "tcp 10.0.1.0 -> 10.0.2.0
// port 22 (rule 3: ...)".
func flowText(f hostnet.Flow, fl *hostnet.Filter, rule int) string {
	proto := map[uint8]string{6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}[f.Proto]
	if proto == "" {
		proto = fmt.Sprintf("proto %d", f.Proto)
	}
	s := fmt.Sprintf("%s %s -> %s", proto, f.Src, f.Dst)
	if (f.Proto == 6 || f.Proto == 17) && f.DstPort != 0 {
		s += fmt.Sprintf(" port %d", f.DstPort)
	}
	if rule < 0 {
		return s + " (default deny)"
	}
	r := fl.Rules[rule]
	return s + " (" + cmp.Or(r.Comment, r.String()) + ")"
}

// tunnelPrefixes are the prefixes that arrive through the interface: every
// peer's allowed IPs, wanted or running.
func tunnelPrefixes(r *running, t *target) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range r.dev.Peers {
		out = append(out, p.AllowedIPs...)
	}
	for _, p := range t.dev.Peers {
		out = append(out, p.AllowedIPs...)
	}
	return out
}

// checkPolicyConfirm refuses a sync whose policy change denies more than the
// running filter, unless it is provisional (a confirmation deadline) or
// AllowPolicyDeny says so: a rule must not cut off the session it is run over.
func (s *syncer) checkPolicyConfirm() error {
	fw := s.plan.Firewall
	if fw == nil || !fw.DeniesMore || s.opts.Confirm.Within > 0 || s.opts.AllowPolicyDeny {
		return nil
	}
	what := "it switches to default deny"
	if fw.Denied != "" {
		what = "e.g. " + fw.Denied
	}
	return &StateError{Kind: ErrNeedsConfirm, Name: s.p.name,
		Msg: fmt.Sprintf("sync %s: the policy change denies traffic the running filter lets through (%s), which could cut off the session you run this over", s.p.name, what)}
}

// forgetFlows deletes the conntrack entries of the connections the change now
// denies, right after the new table is in place.
func (a *applier) forgetFlows(fw *FirewallChange) bool {
	if fw.forget == nil {
		return true
	}
	n, err := a.h.ForgetFlows(fw.forget)
	if err == nil {
		a.o.logf("conntrack: %d connection(s) the new policy denies deleted", n)
	}
	return a.step(err)
}

// ruleSummary counts the policy's rule changes for a plan's summary line:
// " (policy: 2 rules added, 1 removed)", or "" when there are none.
func (fw *FirewallChange) ruleSummary() string {
	added := 0
	for _, r := range fw.Rules {
		if r.Op == PeerAdd {
			added++
		}
	}
	removed := len(fw.Rules) - added
	if added+removed == 0 {
		return ""
	}
	return fmt.Sprintf(" (policy: %d rule(s) added, %d removed)", added, removed)
}
