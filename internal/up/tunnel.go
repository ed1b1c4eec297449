package up

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/wgnet/wgnet/internal/hostnet"
)

// The full tunnel, as wg-quick's add_default does it. With Table = auto, a peer
// whose AllowedIPs hold 0.0.0.0/0 or ::/0 takes the host's default route: the
// device gets a fwmark M (the config's FwMark, else the first table from 51820 up
// with no route in either family), the default route goes into table M, and per
// family with a default route
//
//	ip rule add not fwmark M table M
//	ip rule add table main suppress_prefixlength 0
//
// send everything but WireGuard's own (marked) UDP through table M, while routes
// more specific than the default in main still win. net.ipv4.conf.all.src_valid_mark=1
// and the nftables tables wg-quick-NAME (families ip and ip6: see
// hostnet.TunnelFirewall) keep rp_filter from dropping the replies and drop
// packets to the tunnel's addresses arriving from elsewhere. The tables carry
// wg-quick's own name, so that either tool's down removes them.
//
// Everything is recorded in State.Tunnel ahead of each step and undone by down
// and by a rollback; src_valid_mark is left set on down, as wg-quick leaves it
// (State.Kept), and down says so.

// TunnelState records a full tunnel's parts: its table (= fwmark), the rules
// added (with their priorities) and the nftables tables' name.
type TunnelState struct {
	Table    int            `json:"table"`
	Rules    []hostnet.Rule `json:"rules,omitempty"`
	Firewall string         `json:"firewall,omitempty"`
}

// TunnelTable is the name of the nftables tables (ip and ip6) of interface
// name's full tunnel: wg-quick's.
func TunnelTable(name string) string { return hostnet.TunnelTablePrefix + name }

// srcValidMark is the sysctl a full tunnel turns on, and leaves on.
const srcValidMark = "net/ipv4/conf/all/src_valid_mark"

// keptSysctl reports whether a sysctl change is one wg-quick leaves set on down,
// and wgnet with it: recorded in State.Kept, never restored.
func keptSysctl(key string) bool { return key == srcValidMark }

// firstTunnelTable is where wg-quick starts looking for a free table.
const firstTunnelTable = 51820

// tunnelFamilies reports which families have a default route through the tunnel:
// a /0 in the allowed IPs with Table = auto.
func (p *plan) tunnelFamilies() (v4, v6 bool) {
	if !p.autoTable || p.noRoutes {
		return false, false
	}
	for _, a := range p.allowed {
		if a.Bits() == 0 {
			if a.Addr().Is4() {
				v4 = true
			} else {
				v6 = true
			}
		}
	}
	return v4, v6
}

// tunnelTarget is the full tunnel a target wants: rules with their priorities,
// and the nftables tables (nil: none). The table and route are in target.dev's
// fwmark and target.routes.
type tunnelTarget struct {
	table int
	rules []hostnet.Rule
	fw    *hostnet.TunnelFirewall
	// backend is what tables created or replaced are written with: fw's
	// Backend when it names one (a snapshot's), else the host's. Tables
	// already there stay in the backend they are in when nothing else
	// changes.
	backend string
}

// addTunnel adds to t the full tunnel of p (or none: then running tunnel parts
// are removed). adopt says the interface was made by another tool, whose rules
// of the same kind are taken as this interface's.
func addTunnel(t *target, p *plan, prev *State, h hostnet.HostNet, adopt bool) error {
	t.tunnel = &tunnelTarget{}
	v4, v6 := p.tunnelFamilies()
	if !v4 && !v6 {
		if prev != nil && prev.Tunnel != nil && p.fwMark == 0 {
			zero := 0
			t.dev.FwMark = &zero // the tunnel's mark goes with it
		}
		return nil
	}
	table, err := tunnelTableOf(p, prev, h)
	if err != nil {
		return err
	}
	t.tunnel.table = table
	mark := table
	t.dev.FwMark = &mark
	var owned []hostnet.Rule
	if prev != nil && prev.Tunnel != nil {
		owned = prev.Tunnel.Rules
	}
	for _, fam := range []struct {
		on  bool
		n   int
		dst netip.Prefix
	}{{v4, 4, netip.PrefixFrom(netip.IPv4Unspecified(), 0)}, {v6, 6, netip.PrefixFrom(netip.IPv6Unspecified(), 0)}} {
		if !fam.on {
			continue
		}
		t.routes = append(t.routes, hostnet.Route{Dst: fam.dst, Dev: p.name, Table: table})
		rs, err := tunnelRules(h, fam.n, table, owned, adopt)
		if err != nil {
			return err
		}
		t.tunnel.rules = append(t.tunnel.rules, rs...)
	}
	slices.SortFunc(t.routes, compareRoute)
	if v4 {
		if t.sysctls == nil {
			t.sysctls = map[string]string{}
		}
		t.sysctls[srcValidMark] = "1"
	}
	fw := &hostnet.TunnelFirewall{Table: TunnelTable(p.name), V4: v4, V6: v6, Iface: p.name, Mark: uint32(table)}
	for _, a := range p.addresses {
		fw.Addrs = append(fw.Addrs, a.Addr())
	}
	fw.Addrs = fw.FamilyAddrs()
	t.tunnel.fw = fw
	if t.tunnel.backend, err = h.TunnelFirewallBackend(); err != nil {
		return fmt.Errorf("full tunnel: %w", err)
	}
	return nil
}

// needTunnelBackend checks, before anything is touched, that the host can
// say what a full tunnel's firewall is written with (a bad
// WGNET_TUNNEL_FIREWALL is refused here, not half-way through up).
func (p *plan) needTunnelBackend(h hostnet.HostNet) error {
	if v4, v6 := p.tunnelFamilies(); !v4 && !v6 {
		return nil
	}
	if _, err := h.TunnelFirewallBackend(); err != nil {
		return fmt.Errorf("up %s: full tunnel: %w", p.name, err)
	}
	return nil
}

// tunnelTableOf picks the table (and fwmark) as wg-quick does: the config's
// FwMark; else the one this interface already uses (recorded, or its routes are
// there); else the first table from 51820 up with no routes.
func tunnelTableOf(p *plan, prev *State, h hostnet.HostNet) (int, error) {
	if p.fwMark != 0 {
		return int(p.fwMark), nil
	}
	if prev != nil && prev.Tunnel != nil && prev.Tunnel.Table != 0 {
		return prev.Tunnel.Table, nil
	}
	for table := firstTunnelTable; table < firstTunnelTable+1000; table++ {
		used, err := h.TableInUse(table)
		if err != nil {
			return 0, err
		}
		if !used {
			return table, nil
		}
		// An interface wg-quick brought up (adopted) has its routes there.
		if rs, err := h.Routes(p.name, table); err == nil && len(rs) > 0 {
			return table, nil
		}
	}
	return 0, fmt.Errorf("full tunnel: no free routing table in %d-%d", firstTunnelTable, firstTunnelTable+999)
}

// tunnelRules works out the family's two rules with their priorities: a rule
// this interface owns (recorded; or, adopting, any of the same kind) keeps its
// priority; a new one gets the priority the kernel would give it, after the
// ones before it, as `ip rule add` without pref does.
func tunnelRules(h hostnet.HostNet, family, table int, owned []hostnet.Rule, adopt bool) ([]hostnet.Rule, error) {
	host, err := h.Rules(family)
	if err != nil {
		return nil, err
	}
	want := []hostnet.Rule{
		{Family: family, Table: table, Mark: uint32(table), Invert: true},
		{Family: family, Table: hostnet.TableMain, SuppressDefault: true},
	}
	same := func(a, b hostnet.Rule) bool { a.Priority, b.Priority = 0, 0; return a == b }
	var out []hostnet.Rule
	for _, w := range want {
		i := slices.IndexFunc(host, func(r hostnet.Rule) bool {
			return same(r, w) && (slices.Contains(owned, r) || adopt)
		})
		if i >= 0 {
			out = append(out, host[i])
			continue
		}
		w.Priority = hostnet.DefaultRulePriority(host)
		host = append(host, w)
		out = append(out, w)
	}
	return out, nil
}

// tunnelRunning is what readRunning finds of the full tunnel: the rules in
// scope that are there, and the tunnel tables.
type tunnelRunning struct {
	rules []hostnet.Rule
	fw    *hostnet.TunnelFirewall
}

// readTunnel reads the rules in scope (recorded or wanted) and the tunnel tables.
func readTunnel(h hostnet.HostNet, sc readScope) (*tunnelRunning, error) {
	tr := &tunnelRunning{}
	for _, fam := range []int{4, 6} {
		if !slices.ContainsFunc(sc.rules, func(r hostnet.Rule) bool { return r.Family == fam }) {
			continue
		}
		rs, err := h.Rules(fam)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if slices.Contains(sc.rules, r) && !slices.Contains(tr.rules, r) {
				tr.rules = append(tr.rules, r)
			}
		}
	}
	fw, err := h.TunnelFirewall(TunnelTable(sc.name))
	switch {
	case err == nil:
		tr.fw = &fw
	case !errors.Is(err, hostnet.ErrNotFound):
		return nil, err
	}
	return tr, nil
}

// RuleChanges are policy rules added and removed.
type RuleChanges struct {
	Add    []hostnet.Rule `json:"add"`
	Remove []hostnet.Rule `json:"remove"`
	// Bridge are rules `fwmark NEW lookup main` that a change of a full
	// tunnel's fwmark adds before the device's mark changes and removes once
	// the old mark's rules are gone (see bridgeRules).
	Bridge []hostnet.Rule `json:"bridge,omitempty"`
}

// TunnelFirewallChange creates, replaces or deletes the full tunnel's tables.
type TunnelFirewallChange struct {
	Action string `json:"action"` // "create", "replace" or "delete"
	Table  string `json:"table"`
	// Backend is "nftables" or "iptables" (iptables-restore, as wg-quick
	// without nft); a delete clears both.
	Backend string `json:"backend,omitempty"`
	// Families are "ip", "ip6" or both; Mark the UDP's fwmark; Drop the
	// addresses whose packets from other interfaces are dropped.
	Families []string     `json:"families,omitempty"`
	Mark     uint32       `json:"fwmark,omitempty"`
	Drop     []netip.Addr `json:"drop,omitempty"`

	want *hostnet.TunnelFirewall
}

// diffTunnel adds to plan the full tunnel's changes from r to t.
func diffTunnel(plan *Plan, r *running, t *target) {
	if t.tunnel == nil || r.tunnel == nil {
		return
	}
	rc := RuleChanges{Add: []hostnet.Rule{}, Remove: []hostnet.Rule{}}
	for _, w := range t.tunnel.rules {
		if !slices.Contains(r.tunnel.rules, w) {
			rc.Add = append(rc.Add, w)
		}
	}
	for _, x := range r.tunnel.rules {
		if !slices.Contains(t.tunnel.rules, x) {
			rc.Remove = append(rc.Remove, x)
		}
	}
	// A rule into the tunnel's table is added after and removed before the
	// suppress rules (each has its priority already), so that routes more
	// specific than the default in main never lose to the tunnel's default
	// route for a moment (see removeRules).
	intoTable := func(r hostnet.Rule) int {
		if r.Table == hostnet.TableMain {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(rc.Add, func(a, b hostnet.Rule) int { return cmp.Compare(intoTable(a), intoTable(b)) })
	slices.SortStableFunc(rc.Remove, func(a, b hostnet.Rule) int { return cmp.Compare(intoTable(b), intoTable(a)) })
	mark := r.dev.FwMark
	if plan.FwMark != nil {
		mark = plan.FwMark.New
	}
	rc.Bridge = bridgeRules(uint32(mark), r.tunnel.rules, rc)
	// A bridge left by a change cut short goes with the new one.
	rc.Remove = slices.DeleteFunc(rc.Remove, func(x hostnet.Rule) bool { return slices.Contains(rc.Bridge, x) })
	if len(rc.Add)+len(rc.Remove) > 0 {
		plan.Rules = rc // omitted from JSON when nothing changes
	}
	tw, rw := t.tunnel.fw, r.tunnel.fw
	backend := t.tunnel.backend
	if tw != nil && tw.Backend != "" {
		backend = tw.Backend
	}
	switch {
	case tw == nil && rw != nil:
		plan.TunnelFirewall = &TunnelFirewallChange{Action: "delete", Table: rw.Table, Backend: rw.Backend}
	case tw != nil && rw == nil:
		plan.TunnelFirewall = tunnelFirewallChange("create", tw, backend)
	case tw != nil && !tw.Equal(*rw):
		plan.TunnelFirewall = tunnelFirewallChange("replace", tw, backend)
	}
}

// bridgeRules are the rules that carry a full tunnel through a change of its
// fwmark from OLD to mark. Every packet but WireGuard's own (marked) UDP goes
// into the tunnel by `not fwmark OLD lookup OLD`, and after the change by
// `not fwmark NEW lookup NEW`; no order of those alone is safe: while the
// device marks its UDP NEW and `not fwmark OLD` is there, that rule sends the
// UDP into the tunnel (a loop: every packet through the tunnel lost), and
// both rules together send every packet, whatever its mark, into the tunnel;
// without either, traffic leaks out through main. So, per family whose `not
// fwmark OLD` rule goes while the device's mark is to be mark (not 0: a
// tunnel taken down needs none, see removeRules), `fwmark NEW lookup main`
// is added ahead of every rule of the tunnel (one priority before the first
// of those running and added, as `ip rule add` without a priority would
// place it) before the device's mark changes, and removed once the old
// rules are gone (applyPlan): the UDP marked NEW then takes main, as with
// the new rules alone, and the rest the tunnel all along. (Where main has no
// route at all for the UDP's destination, the bridge passes it on to the old
// rule and into the tunnel, where the new rules leave it unroutable: that
// UDP cannot reach its endpoint either way.)
func bridgeRules(mark uint32, running []hostnet.Rule, rc RuleChanges) []hostnet.Rule {
	if mark == 0 {
		return nil
	}
	var out []hostnet.Rule
	for _, fam := range []int{4, 6} {
		if !slices.ContainsFunc(rc.Remove, func(r hostnet.Rule) bool {
			return r.Family == fam && r.Invert && r.Mark != 0 && r.Mark != mark
		}) {
			continue
		}
		first := -1
		for _, r := range slices.Concat(running, rc.Add) {
			if r.Family == fam && (first < 0 || r.Priority < first) && !(r.Table == hostnet.TableMain && r.Mark == mark && !r.Invert) {
				first = r.Priority
			}
		}
		out = append(out, hostnet.Rule{Family: fam, Priority: max(first-1, 0), Table: hostnet.TableMain, Mark: mark})
	}
	return out
}

func tunnelFirewallChange(action string, tf *hostnet.TunnelFirewall, backend string) *TunnelFirewallChange {
	want := *tf
	want.Backend = backend
	c := &TunnelFirewallChange{Action: action, Table: tf.Table, Backend: backend, Mark: tf.Mark, Drop: tf.FamilyAddrs(), want: &want}
	if tf.V4 {
		c.Families = append(c.Families, "ip")
	}
	if tf.V6 {
		c.Families = append(c.Families, "ip6")
	}
	return c
}

// tunnelEmpty reports whether the plan leaves the full tunnel as it is.
func (p *Plan) tunnelEmpty() bool {
	return len(p.Rules.Add)+len(p.Rules.Remove) == 0 && p.TunnelFirewall == nil
}

// what says what the tables do.
func (c *TunnelFirewallChange) what() string {
	var drop []string
	for _, a := range c.Drop {
		drop = append(drop, a.String())
	}
	s := fmt.Sprintf("save and restore fwmark %#x on UDP in conntrack", c.Mark)
	if len(drop) > 0 {
		s = "drop packets to " + strings.Join(drop, ", ") + " from other interfaces; " + s
	}
	return s
}

// tunnelText adds the full tunnel's lines to a plan's text.
func tunnelText(p *Plan, line func(op, format string, a ...any)) {
	for _, r := range p.Rules.Add {
		line(PeerAdd, "ip rule %s", r)
	}
	for _, r := range p.Rules.Remove {
		line(PeerRemove, "ip rule %s", r)
	}
	for _, r := range p.Rules.Bridge {
		line(PeerUpdate, "ip rule %s (while the fwmark changes)", r)
	}
	if c := p.TunnelFirewall; c != nil {
		switch c.Action {
		case "delete":
			line(PeerRemove, "%s", c.where())
		case "create":
			line(PeerAdd, "%s (%s)", c.where(), c.what())
		default:
			line(PeerUpdate, "%s (%s)", c.where(), c.what())
		}
	}
}

// where names the tables, or the iptables rules, of the change.
func (c *TunnelFirewallChange) where() string {
	switch {
	case c.Action == "delete" && c.Backend == hostnet.TunnelIptables:
		return fmt.Sprintf("iptables rules %q (raw, mangle)", hostnet.IptablesComment(c.Table))
	case c.Action == "delete":
		return "nft tables ip/ip6 " + c.Table
	case c.Backend == hostnet.TunnelIptables:
		var progs []string
		for _, f := range c.Families {
			progs = append(progs, f+"tables") // iptables, ip6tables
		}
		return fmt.Sprintf("%s rules %q (raw, mangle)", strings.Join(progs, ", "), hostnet.IptablesComment(c.Table))
	}
	return fmt.Sprintf("nft table %s %s", strings.Join(c.Families, ", "), c.Table)
}

// tunnelSummary counts the full tunnel's changes for a plan's summary.
func (p *Plan) tunnelSummary() []string {
	var parts []string
	switch n := len(p.Rules.Add) + len(p.Rules.Remove) + len(p.Rules.Bridge); {
	case n == 1:
		parts = append(parts, "1 rule")
	case n > 1:
		parts = append(parts, fmt.Sprintf("%d rules", n))
	}
	if p.TunnelFirewall != nil {
		parts = append(parts, "tunnel firewall")
	}
	return parts
}

// addRules records the new rules ahead, then adds them in order (wg-quick's).
func (a *applier) addRules() bool { return a.addRuleList(a.plan.Rules.Add) }

// addBridge adds the bridge of a change of fwmark (bridgeRules), before the
// device's mark changes.
func (a *applier) addBridge() bool { return a.addRuleList(a.plan.Rules.Bridge) }

// removeBridge removes the bridge once the old mark's rules are gone.
func (a *applier) removeBridge() bool { return a.removeRuleList(a.plan.Rules.Bridge) }

// addRuleList records rs ahead, then adds them in order.
func (a *applier) addRuleList(rs []hostnet.Rule) bool {
	if len(rs) == 0 {
		return true
	}
	if !a.step(a.rec(applied{rules: rs})) {
		return false
	}
	for _, r := range rs {
		a.o.logf("ip rule add %s", ruleArgs(r))
		if !a.step(tolerate(a.h.AddRule(r), hostnet.ErrExists)) {
			return false
		}
	}
	return true
}

// removeRules removes the old rules, then records it. applyPlan calls it
// before anything a rule leads to goes: while `not fwmark M lookup M` is there,
// a fwmark reset to 0 would send WireGuard's own UDP into table M, back into
// the tunnel (a loop: every packet lost), a /0 taken off the peer would drop
// what table M sends to the device, and table M's default route taken away
// would let the traffic fall through to main, outside the tunnel (a leak).
// Without the rules, traffic takes the main table at once, which is what the
// plan wants. So a full tunnel goes: rules, then the fwmark and the /0
// (configure remove), the nftables tables, table M's route; and comes in the
// reverse order, its rules last. Within the rules, the `not fwmark` one goes
// first, as wg-quick's down does, so that routes more specific than the
// default in main never lose to the tunnel. (A fwmark that changes to
// another one is bridged: bridgeRules.)
func (a *applier) removeRules() bool { return a.removeRuleList(a.plan.Rules.Remove) }

// removeRuleList removes rs in order, then records it.
func (a *applier) removeRuleList(rs []hostnet.Rule) bool {
	if len(rs) == 0 {
		return true
	}
	for _, r := range rs {
		a.o.logf("ip rule del %s", ruleArgs(r))
		if !a.step(tolerate(a.h.DelRule(r), hostnet.ErrNotFound)) {
			return false
		}
	}
	return a.step(a.rec(applied{rules: rs, removed: true}))
}

// ruleArgs is r as `ip rule` arguments: "-4 not fwmark 51820 table 51820 pref 32765".
func ruleArgs(r hostnet.Rule) string {
	var b strings.Builder
	fmt.Fprintf(&b, "-%d ", r.Family)
	if r.Invert {
		b.WriteString("not ")
	}
	if r.Mark != 0 {
		fmt.Fprintf(&b, "fwmark %d ", r.Mark)
	}
	if r.Table == hostnet.TableMain {
		b.WriteString("table main ")
	} else {
		fmt.Fprintf(&b, "table %d ", r.Table)
	}
	if r.SuppressDefault {
		b.WriteString("suppress_prefixlength 0 ")
	}
	fmt.Fprintf(&b, "pref %d", r.Priority)
	return b.String()
}

// tunnelFirewall creates or replaces (on) or deletes (off) the tunnel tables.
func (a *applier) tunnelFirewall(on bool) bool {
	c := a.plan.TunnelFirewall
	if c == nil || (c.Action != "delete") != on {
		return true
	}
	if on {
		if c.Backend == hostnet.TunnelIptables {
			a.o.logf("iptables-restore -n: %s: %s", c.where(), c.what())
		} else {
			a.o.logf("nft: table %s %s: %s", strings.Join(c.Families, ", "), c.Table, c.what())
		}
		return a.step(a.rec(applied{tunnelFW: c.Table})) && a.step(a.h.ApplyTunnelFirewall(*c.want))
	}
	logDeleteTunnelFirewall(a.o, c.Table)
	return a.step(tolerate(a.h.DeleteTunnelFirewall(c.Table), hostnet.ErrNotFound)) &&
		a.step(a.rec(applied{tunnelFW: c.Table, removed: true}))
}

// logDeleteTunnelFirewall says what deleting the tunnel firewall does: both
// backends are cleared, as wg-quick's down clears them.
func logDeleteTunnelFirewall(o *Options, table string) {
	o.logf("nft delete table ip/ip6 %s; iptables -D the rules %q", table, hostnet.IptablesComment(table))
}

// recordTunnel keeps State.Tunnel up to date with one applied step.
func (s *syncer) recordTunnel(ev applied) {
	if s.st.Tunnel == nil {
		s.st.Tunnel = &TunnelState{}
	}
	tu := s.st.Tunnel
	if s.target.tunnel != nil && s.target.tunnel.table != 0 {
		tu.Table = s.target.tunnel.table
	}
	switch {
	case len(ev.rules) > 0:
		tu.Rules = recordItems(tu.Rules, ev.rules, ev.removed)
	case ev.removed:
		tu.Firewall = ""
	default:
		tu.Firewall = ev.tunnelFW
	}
	if tu.Firewall == "" && len(tu.Rules) == 0 {
		s.st.Tunnel = nil
	}
}

// finishTunnel sets the state's record of the full tunnel to what the target
// has, once a sync is applied and verified.
func (s *syncer) finishTunnel() {
	tt := s.target.tunnel
	if tt == nil || (tt.fw == nil && len(tt.rules) == 0) {
		s.st.Tunnel = nil
		return
	}
	s.st.Tunnel = &TunnelState{Table: tt.table, Rules: slices.Clone(tt.rules)}
	if tt.fw != nil {
		s.st.Tunnel.Firewall = tt.fw.Table
	}
}

// teardownTunnel removes the tunnel tables and rules st records, and forgets
// each as it goes.
func teardownTunnel(st *State, o *Options) []error {
	tu := st.Tunnel
	if tu == nil {
		return nil
	}
	gone := func(err error) bool { return err == nil || errors.Is(err, hostnet.ErrNotFound) }
	var errs []error
	if tu.Firewall != "" {
		logDeleteTunnelFirewall(o, tu.Firewall)
		if err := o.Host.DeleteTunnelFirewall(tu.Firewall); !gone(err) {
			errs = append(errs, err)
		} else {
			tu.Firewall = ""
		}
	}
	for i := len(tu.Rules) - 1; i >= 0; i-- {
		o.logf("ip rule del %s", ruleArgs(tu.Rules[i]))
		if err := o.Host.DelRule(tu.Rules[i]); !gone(err) {
			errs = append(errs, err)
			continue
		}
		tu.Rules = tu.Rules[:i]
	}
	if len(errs) == 0 {
		st.Tunnel = nil
	}
	return errs
}

// reportKept says which host-wide sysctls stay set after down (and its PostDown
// hooks), as wg-quick leaves them: src_valid_mark of a full tunnel, forwarding a
// hook turned on.
func reportKept(st *State, o *Options) {
	for _, c := range st.Kept {
		if cur, err := o.Host.Sysctl(c.Key); err != nil || cur != c.New {
			continue // a PostDown put it back, or it is gone
		}
		logKept(o, c)
	}
}

func logKept(o *Options, c SysctlChange) {
	o.logf("%s=%s stays set (it was %s): wg-quick leaves it set on down too, as other tunnels and services (Docker) may rely on it", hostnet.SysctlName(c.Key), c.New, c.Old)
}

// restoredSysctls are the sysctls a rollback puts back: all it read before the
// change but those wg-quick leaves set (keptSysctl), which a rollback leaves
// set as down does.
func restoredSysctls(before map[string]string) map[string]string {
	out := maps.Clone(before)
	maps.DeleteFunc(out, func(k, _ string) bool { return keptSysctl(k) })
	return out
}

// reportKeptOnRestore says, after a rollback to a snapshot whose sysctls were
// before, which kept sysctls the undone change had set and stay set, and
// returns them, for the record the rollback writes (keepAlso).
func reportKeptOnRestore(before map[string]string, o *Options) []SysctlChange {
	var kept []SysctlChange
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if !keptSysctl(k) {
			continue
		}
		if cur, err := o.Host.Sysctl(k); err == nil && cur != before[k] {
			c := SysctlChange{Key: k, Old: before[k], New: cur}
			logKept(o, c)
			kept = append(kept, c)
		}
	}
	return kept
}

// keepAlso adds to st.Kept the kept sysctls a rollback left set (from
// reportKeptOnRestore) that it does not hold yet: the record put back is the
// one from before the change, which never set them, and down says what
// stays set from st.Kept (reportKept). It reports whether st changed.
func keepAlso(st *State, kept []SysctlChange) bool {
	changed := false
	for _, c := range kept {
		if !slices.ContainsFunc(st.Kept, func(x SysctlChange) bool { return x.Key == c.Key }) {
			st.Kept = append(st.Kept, c)
			changed = true
		}
	}
	return changed
}
