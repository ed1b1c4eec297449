package up

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/hostnet/hostnettest"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// clientConfig is a full-tunnel client as client generators write it.
func clientConfig() *wgconf.Config {
	return &wgconf.Config{
		Interface: wgconf.Interface{
			PrivateKey: fixedPrivate(11),
			Addresses:  pfxs("10.66.0.2/32", "fd00:66::2/128"),
		},
		Peers: []wgconf.Peer{
			{Name: "server", PublicKey: fixedPeer(12), AllowedIPs: pfxs("0.0.0.0/0", "::/0"), Endpoint: ep("198.18.0.1:51820")},
		},
	}
}

// TestFullTunnelFake brings a full-tunnel client up on the fakes and checks
// every part wg-quick's add_default makes, then down back to the host as it was
// but for src_valid_mark, which stays set as with wg-quick.
func TestFullTunnelFake(t *testing.T) {
	fx := newFixture(t)
	before := fx.host.Snapshot()
	_, plan, err := upWithPlan(t, fx, clientConfig())
	if err != nil {
		t.Fatalf("Up: %v\n%s", err, fx.log.String())
	}
	snap := fx.host.Snapshot()
	wantRules := []hostnet.Rule{
		{Family: 4, Priority: 32765, Table: 51820, Mark: 51820, Invert: true},
		{Family: 4, Priority: 32764, Table: hostnet.TableMain, SuppressDefault: true},
		{Family: 6, Priority: 32765, Table: 51820, Mark: 51820, Invert: true},
		{Family: 6, Priority: 32764, Table: hostnet.TableMain, SuppressDefault: true},
	}
	for _, r := range wantRules {
		if !slices.Contains(snap.Rules, r) {
			t.Errorf("rule %s missing: %v", r, snap.Rules)
		}
	}
	for _, dst := range []string{"0.0.0.0/0", "::/0"} {
		r := hostnet.Route{Dst: netip.MustParsePrefix(dst), Dev: "wg0", Table: 51820}
		if !slices.Contains(snap.Routes, r) {
			t.Errorf("route %v missing: %v", r, snap.Routes)
		}
		if slices.Contains(snap.Routes, hostnet.Route{Dst: r.Dst, Dev: "wg0"}) {
			t.Errorf("default route %s through wg0 in main", dst)
		}
	}
	tf, ok := snap.TunnelFirewalls["wg-quick-wg0"]
	wantTF := hostnet.TunnelFirewall{Table: "wg-quick-wg0", V4: true, V6: true, Iface: "wg0", Mark: 51820,
		Addrs: []netip.Addr{netip.MustParseAddr("10.66.0.2"), netip.MustParseAddr("fd00:66::2")}}
	if !ok || !tf.Equal(wantTF) {
		t.Errorf("tunnel tables: %+v, want %+v", tf, wantTF)
	}
	if v := snap.Sysctls[srcValidMark]; v != "1" {
		t.Errorf("src_valid_mark = %q, want 1", v)
	}
	if st, _ := fx.devs.devs["wg0"].State(); st.FwMark != 51820 {
		t.Errorf("device fwmark %d, want 51820", st.FwMark)
	}
	text := planText(plan)
	for _, w := range []string{"+ route 0.0.0.0/0 dev wg0 table 51820", "+ ip rule 32765: not from all fwmark 0xca6c lookup 51820",
		"+ ip rule -6 32764: from all lookup main suppress_prefixlength 0", "+ nft table ip, ip6 wg-quick-wg0", "fwmark 0x0 -> 0xca6c"} {
		if !strings.Contains(text, w) {
			t.Errorf("plan text lacks %q:\n%s", w, text)
		}
	}
	// A sync of the same config changes nothing: the table stays 51820 though
	// it is in use now.
	p, err := Sync(context.Background(), req("wg0", clientConfig(), false, false), fx.syncOpts())
	if err != nil || !p.Empty() {
		t.Fatalf("Sync of the same config: %v\n%s", err, planText(p))
	}
	fx.log.Reset()
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fx.log.String(), "net.ipv4.conf.all.src_valid_mark=1 stays set") {
		t.Errorf("down does not say src_valid_mark stays:\n%s", fx.log.String())
	}
	after := fx.host.Snapshot()
	after.Sysctls[srcValidMark] = "0"
	if diff := cmp.Diff(before, after, cmpOpts...); diff != "" {
		t.Errorf("down did not restore the host (-before +after):\n%s", diff)
	}
}

func upWithPlan(t *testing.T, fx *fixture, c *wgconf.Config) (*State, *Plan, error) {
	t.Helper()
	so := fx.syncOpts()
	so.defaults()
	return upLocked(context.Background(), req("wg0", c, false, false), &so)
}

// TestFullTunnelTableChoice: a table with routes is skipped, as wg-quick
// skips it; the config's FwMark is the table when set.
func TestFullTunnelTableChoice(t *testing.T) {
	fx := newFixture(t)
	if err := fx.host.AddRoute(hostnet.Route{Dst: netip.MustParsePrefix("10.1.0.0/16"), Dev: "eth0", Table: 51820}); err != nil {
		t.Fatal(err)
	}
	c := clientConfig()
	c.Peers[0].AllowedIPs = pfxs("0.0.0.0/0")
	if _, _, err := upWithPlan(t, fx, c); err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(fx.opts.StateDir, "wg0")
	if err != nil || st.Tunnel == nil || st.Tunnel.Table != 51821 {
		t.Fatalf("state tunnel %+v, %v; want table 51821", st.Tunnel, err)
	}
	if len(st.Tunnel.Rules) != 2 {
		t.Errorf("IPv4 only: rules %v, want 2", st.Tunnel.Rules)
	}
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	c.Interface.FwMark = 0x1234
	if _, _, err := upWithPlan(t, fx, c); err != nil {
		t.Fatal(err)
	}
	if st, _ := LoadState(fx.opts.StateDir, "wg0"); st.Tunnel.Table != 0x1234 {
		t.Errorf("with FwMark = 0x1234: table %d", st.Tunnel.Table)
	}
}

// TestFullTunnelUndo: a failure at each full-tunnel step undoes everything;
// a sync that drops the default route removes the tunnel, and one that brings
// it back adds it again.
func TestFullTunnelUndo(t *testing.T) {
	for method, after := range map[string]int{"AddRule": 2, "ApplyTunnelFirewall": 0} {
		t.Run(method, func(t *testing.T) {
			fx := newFixture(t)
			before := fx.host.Snapshot()
			fx.host.FailAfter(method, after, errors.New("injected"))
			if _, _, err := upWithPlan(t, fx, clientConfig()); err == nil || !strings.Contains(err.Error(), "everything undone") {
				t.Fatalf("Up: %v", err)
			}
			after := fx.host.Snapshot()
			after.Sysctls[srcValidMark] = before.Sysctls[srcValidMark]
			if diff := cmp.Diff(before, after, cmpOpts...); diff != "" {
				t.Errorf("not undone (-before +after):\n%s", diff)
			}
		})
	}
	t.Run("sync", func(t *testing.T) {
		fx := newFixture(t)
		if _, _, err := upWithPlan(t, fx, clientConfig()); err != nil {
			t.Fatal(err)
		}
		full := fx.host.Snapshot()
		split := clientConfig()
		split.Peers[0].AllowedIPs = pfxs("10.66.0.0/24")
		p, err := Sync(context.Background(), req("wg0", split, false, false), fx.syncOpts())
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Rules.Remove) != 4 || p.TunnelFirewall == nil || p.TunnelFirewall.Action != "delete" || p.FwMark == nil || p.FwMark.New != 0 {
			t.Errorf("plan to split tunnel:\n%s", planText(p))
		}
		snap := fx.host.Snapshot()
		if len(snap.Rules) != 5 || len(snap.TunnelFirewalls) != 0 {
			t.Errorf("after split: rules %v, tables %v", snap.Rules, snap.TunnelFirewalls)
		}
		if st, _ := LoadState(fx.opts.StateDir, "wg0"); st.Tunnel != nil {
			t.Errorf("state still records a tunnel: %+v", st.Tunnel)
		}
		if _, err := Sync(context.Background(), req("wg0", clientConfig(), false, false), fx.syncOpts()); err != nil {
			t.Fatal(err)
		}
		again := fx.host.Snapshot()
		if diff := cmp.Diff(full, again, cmpOpts...); diff != "" {
			t.Errorf("full tunnel again differs (-first +again):\n%s", diff)
		}
	})
}

// TestRtTableName: Table = NAME is resolved from rt_tables at up.
func TestRtTableName(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/rt_tables", "255\tlocal\n254\tmain\n# 7 commented\n200 vpn # ours\n")
	got, ok, err := lookupRtTable("vpn", []string{dir})
	if err != nil || !ok || got != 200 {
		t.Fatalf("lookupRtTable(vpn) = %d, %v, %v", got, ok, err)
	}
	fx := newFixture(t)
	fx.opts.RtTables = []string{dir}
	c := clientConfig()
	c.Interface.Table = "vpn"
	if _, _, err := upWithPlan(t, fx, c); err != nil {
		t.Fatal(err)
	}
	snap := fx.host.Snapshot()
	if !slices.Contains(snap.Routes, hostnet.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "wg0", Table: 200}) {
		t.Errorf("no default route in table 200: %v", snap.Routes)
	}
	if len(snap.Rules) != 5 {
		t.Errorf("an explicit table adds no rules: %v", snap.Rules)
	}
	c.Interface.Table = "nosuch"
	fx2 := newFixture(t)
	fx2.opts.RtTables = []string{dir}
	if _, _, err := upWithPlan(t, fx2, c); err == nil || !strings.Contains(err.Error(), "Table = nosuch: no table of that name in "+dir+"/rt_tables") {
		t.Errorf("unknown name: %v", err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFullTunnelSplitOrder: a sync from full tunnel to split tunnel removes
// the policy rules before anything they lead to (the fwmark, the /0 allowed
// IPs, table 51820's default routes, the nftables tables), the `not fwmark`
// rule of each family before its suppress rule; the sync back adds the rules
// after all of it, in the reverse order. (src_valid_mark stays 1 in between,
// as it is never reset.) The steps are read from the engine's log, which it writes
// before each step.
func TestFullTunnelSplitOrder(t *testing.T) {
	fx := newFixture(t)
	if _, _, err := upWithPlan(t, fx, clientConfig()); err != nil {
		t.Fatal(err)
	}
	split := clientConfig()
	split.Peers[0].AllowedIPs = pfxs("10.66.0.0/24")
	steps := func(c *wgconf.Config) []string {
		t.Helper()
		fx.log.Reset()
		if _, err := Sync(context.Background(), req("wg0", c, false, false), fx.syncOpts()); err != nil {
			t.Fatalf("Sync: %v\n%s", err, fx.log.String())
		}
		return strings.Split(strings.TrimSpace(fx.log.String()), "\n")
	}
	at := func(lines []string, what string) int {
		t.Helper()
		i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, what) })
		if i < 0 {
			t.Fatalf("no step %q in:\n%s", what, strings.Join(lines, "\n"))
		}
		return i
	}
	toSplit := steps(split)
	t.Logf("full -> split:\n%s", strings.Join(toSplit, "\n"))
	lastRule := 0
	for _, fam := range []string{"-4", "-6"} {
		notMark := at(toSplit, "ip rule del "+fam+" not fwmark 51820 table 51820")
		suppress := at(toSplit, "ip rule del "+fam+" table main suppress_prefixlength 0")
		if notMark > suppress {
			t.Errorf("family %s: the suppress rule goes before the not-fwmark rule", fam)
		}
		lastRule = max(lastRule, notMark, suppress)
	}
	for _, after := range []string{"wg set wg0 fwmark 0", "-allowed ip 0.0.0.0/0", "-allowed ip ::/0",
		"nft delete table ip/ip6 wg-quick-wg0", "ip route del 0.0.0.0/0 dev wg0 table 51820", "ip route del ::/0 dev wg0 table 51820"} {
		if i := at(toSplit, after); i < lastRule {
			t.Errorf("%q (step %d) comes before the last rule is removed (step %d)", after, i, lastRule)
		}
	}
	toFull := steps(clientConfig())
	t.Logf("split -> full:\n%s", strings.Join(toFull, "\n"))
	firstRule := at(toFull, "ip rule add")
	for _, fam := range []string{"-4", "-6"} {
		if at(toFull, "ip rule add "+fam+" table main suppress_prefixlength 0") > at(toFull, "ip rule add "+fam+" not fwmark 51820 table 51820") {
			t.Errorf("family %s: the not-fwmark rule is added before the suppress rule", fam)
		}
	}
	for _, before := range []string{"fwmark 51820", "+allowed ip 0.0.0.0/0", "+allowed ip ::/0",
		"nft: table ip, ip6 wg-quick-wg0", "ip route add 0.0.0.0/0 dev wg0 table 51820", "ip route add ::/0 dev wg0 table 51820"} {
		if i := at(toFull, before); i > firstRule {
			t.Errorf("%q (step %d) comes after the first rule is added (step %d)", before, i, firstRule)
		}
	}
}

// splitFixture is a fixture with clientConfig up as a split tunnel (the
// tunnel's subnet only).
func splitFixture(t *testing.T) *fixture {
	t.Helper()
	fx := newFixture(t)
	split := clientConfig()
	split.Peers[0].AllowedIPs = pfxs("10.66.0.0/24")
	if _, _, err := upWithPlan(t, fx, split); err != nil {
		t.Fatal(err)
	}
	return fx
}

// TestFullTunnelRollbackKeepsSrcValidMark: the rollback of a sync that made a
// split tunnel full takes every part of the tunnel away but leaves
// src_valid_mark set, as down (and wg-quick's down) does, and says so.
func TestFullTunnelRollbackKeepsSrcValidMark(t *testing.T) {
	fx := splitFixture(t)
	before := fx.world(t, "wg0")
	if v := before.Host.Sysctls[srcValidMark]; v != "0" {
		t.Fatalf("src_valid_mark = %q before the full tunnel", v)
	}
	opts := fx.syncOpts()
	opts.Confirm.Within = time.Minute
	if _, err := Sync(context.Background(), req("wg0", clientConfig(), false, false), opts); err != nil {
		t.Fatal(err)
	}
	if v := fx.host.Snapshot().Sysctls[srcValidMark]; v != "1" {
		t.Fatalf("src_valid_mark = %q with the full tunnel", v)
	}
	fx.log.Reset()
	if _, err := Rollback(context.Background(), "wg0", opts); err != nil {
		t.Fatal(err)
	}
	t.Logf("rollback:\n%s", fx.log.String())
	if !strings.Contains(fx.log.String(), "net.ipv4.conf.all.src_valid_mark=1 stays set (it was 0)") {
		t.Errorf("the rollback does not say src_valid_mark stays set:\n%s", fx.log.String())
	}
	after := fx.world(t, "wg0")
	if v := after.Host.Sysctls[srcValidMark]; v != "1" {
		t.Errorf("src_valid_mark = %q after the rollback, want 1 (as down leaves it)", v)
	}
	after.Host.Sysctls[srcValidMark] = "0"
	// The record is the one from before, but for what it keeps (downSaysKept).
	var recBefore, recAfter map[string]any
	if err := errors.Join(json.Unmarshal([]byte(before.State), &recBefore), json.Unmarshal([]byte(after.State), &recAfter)); err != nil {
		t.Fatal(err)
	}
	delete(recAfter, "kept")
	if diff := cmp.Diff(recBefore, recAfter); diff != "" {
		t.Errorf("the record is not rolled back but for kept (-before +after):\n%s", diff)
	}
	after.State = before.State
	if diff := cmp.Diff(before, after, worldOpts...); diff != "" {
		t.Errorf("not rolled back but for src_valid_mark (-before +after):\n%s", diff)
	}
	downSaysKept(t, fx, "the rollback")
}

// downSaysKept checks that the record of wg0 says src_valid_mark was set
// from 0 and stays set, and that down says so, as after up; after says what
// wrote the record.
func downSaysKept(t *testing.T, fx *fixture, after string) {
	t.Helper()
	st, err := LoadState(fx.opts.StateDir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	if want := (SysctlChange{Key: srcValidMark, Old: "0", New: "1"}); !slices.Contains(st.Kept, want) {
		t.Errorf("the record after %s keeps %v, want %v in it", after, st.Kept, want)
	}
	fx.log.Reset()
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fx.log.String(), "net.ipv4.conf.all.src_valid_mark=1 stays set (it was 0)") {
		t.Errorf("down after %s does not say src_valid_mark stays set:\n%s", after, fx.log.String())
	}
}

// TestFullTunnelFailedSyncKeepsSrcValidMark: a sync from split to full tunnel
// that fails after src_valid_mark is set (its first rule is refused) is
// undone but for src_valid_mark, which stays set, as after a rollback: the
// restored record says so, and down reports it.
func TestFullTunnelFailedSyncKeepsSrcValidMark(t *testing.T) {
	fx := splitFixture(t)
	fx.host.FailOn("AddRule", errors.New("injected"))
	fx.log.Reset()
	if _, err := Sync(context.Background(), req("wg0", clientConfig(), false, false), fx.syncOpts()); err == nil || !strings.Contains(err.Error(), "everything restored") {
		t.Fatalf("Sync: %v, want a failure undone\n%s", err, fx.log.String())
	}
	if !strings.Contains(fx.log.String(), "src_valid_mark=1 stays set (it was 0)") {
		t.Errorf("the restore does not say src_valid_mark stays set:\n%s", fx.log.String())
	}
	if rs := fx.host.Snapshot().Rules; slices.ContainsFunc(rs, func(r hostnet.Rule) bool { return r.Mark != 0 || r.SuppressDefault }) {
		t.Errorf("rules left after the restore: %v", rs)
	}
	downSaysKept(t, fx, "the failed sync")
}

// TestFullTunnelIptablesPlan: on a host whose tunnel firewall backend is
// iptables the plan says it writes iptables rules, the tables are written with
// that backend, and a sync of the same config changes nothing.
func TestFullTunnelIptablesPlan(t *testing.T) {
	fx := newFixture(t)
	fx.host.SetTunnelBackend(hostnet.TunnelIptables)
	_, plan, err := upWithPlan(t, fx, clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	text := planText(plan)
	if w := `+ iptables, ip6tables rules "wg-quick(8) rule for wg0" (raw, mangle) (drop packets to 10.66.0.2, fd00:66::2`; !strings.Contains(text, w) {
		t.Errorf("plan text lacks %q:\n%s", w, text)
	}
	if tf := fx.host.Snapshot().TunnelFirewalls["wg-quick-wg0"]; tf.Backend != hostnet.TunnelIptables {
		t.Errorf("tables written with %q, want iptables", tf.Backend)
	}
	if p, err := Sync(context.Background(), req("wg0", clientConfig(), false, false), fx.syncOpts()); err != nil || !p.Empty() {
		t.Fatalf("Sync of the same config: %v\n%s", err, planText(p))
	}
	// Forced back to nftables, a sync that changes nothing else leaves them.
	fx.host.SetTunnelBackend(hostnet.TunnelNftables)
	if p, err := Sync(context.Background(), req("wg0", clientConfig(), false, false), fx.syncOpts()); err != nil || !p.Empty() {
		t.Fatalf("Sync with the other backend: %v\n%s", err, planText(p))
	}
	fx.log.Reset()
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if w := `iptables -D the rules "wg-quick(8) rule for wg0"`; !strings.Contains(fx.log.String(), w) {
		t.Errorf("down does not say %q:\n%s", w, fx.log.String())
	}
}

// pathChecker is a log for the engine that, before each step it logs and
// whenever asked, works out from the fake host's rules and routes where two
// packets go in each family: WireGuard's own UDP to an endpoint (marked as
// the device marks it), which must never go into the tunnel (a loop), and an
// unmarked packet to the internet, which must (else it leaks out through
// main). It records every step before which either goes wrong. The host has
// a default route in main in both families (newPathChecker), as a host
// reaching its endpoints does.
type pathChecker struct {
	fx  *fixture
	bad []string
}

// newPathChecker gives fx's host an IPv6 default route beside its IPv4 one,
// and a checker for it.
func newPathChecker(t *testing.T, fx *fixture) *pathChecker {
	t.Helper()
	if err := fx.host.AddRoute(hostnet.Route{Dst: netip.MustParsePrefix("::/0"), Dev: "eth0"}); err != nil {
		t.Fatal(err)
	}
	return &pathChecker{fx: fx}
}

func (c *pathChecker) Write(p []byte) (int, error) {
	c.check("before " + strings.TrimSpace(string(p)))
	return c.fx.log.Write(p)
}

// check records what goes wrong now; when says when.
func (c *pathChecker) check(when string) {
	snap := c.fx.host.Snapshot()
	st, err := c.fx.devs.devs["wg0"].State()
	if err != nil {
		c.bad = append(c.bad, when+": "+err.Error())
		return
	}
	for _, f := range []struct {
		fam           int
		endpoint, net string
	}{{4, "198.18.0.1", "203.0.113.9"}, {6, "2001:db8::1", "2001:db8:9::9"}} {
		if dev := lookupPath(snap, f.fam, uint32(st.FwMark), netip.MustParseAddr(f.endpoint)); dev == "wg0" {
			c.bad = append(c.bad, fmt.Sprintf("%s: WireGuard's UDP (fwmark %#x) to %s goes into the tunnel", when, st.FwMark, f.endpoint))
		}
		if dev := lookupPath(snap, f.fam, 0, netip.MustParseAddr(f.net)); dev != "wg0" {
			c.bad = append(c.bad, fmt.Sprintf("%s: a packet to %s goes to %q, not into the tunnel", when, f.net, dev))
		}
	}
}

// lookupPath is the kernel's policy routing on the fake: the rules of the
// family in priority order (a rule whose table has no route for dst, or
// only the default one it suppresses, passes the packet on), longest prefix
// in a table. It returns the device, or "" for no route.
func lookupPath(snap hostnettest.Snapshot, fam int, mark uint32, dst netip.Addr) string {
	var rules []hostnet.Rule
	for _, r := range snap.Rules {
		if r.Family == fam {
			rules = append(rules, r)
		}
	}
	slices.SortStableFunc(rules, func(a, b hostnet.Rule) int { return a.Priority - b.Priority })
	norm := func(t int) int {
		if t == hostnet.TableMain {
			return 0
		}
		return t
	}
	for _, r := range rules {
		if r.Mark != 0 && (mark == r.Mark) == r.Invert {
			continue
		}
		best := -1
		dev := ""
		for _, rt := range snap.Routes {
			if norm(rt.Table) != norm(r.Table) || !rt.Dst.Contains(dst) || (r.SuppressDefault && rt.Dst.Bits() == 0) {
				continue
			}
			if rt.Dst.Bits() > best {
				best, dev = rt.Dst.Bits(), rt.Dev
			}
		}
		if best >= 0 {
			return dev
		}
	}
	return ""
}

// TestFullTunnelFwMarkOrder: a sync that changes a full tunnel's FwMark
// (0xca6c, table 51820, to 0xca6d, table 51821, and back) bridges the change
// with `fwmark NEW lookup main` in each family, added before the device's
// mark changes and removed after the old `not fwmark` rules: before every
// step of both syncs, WireGuard's own UDP stays out of the tunnel and every
// other packet goes into it (pathChecker, which is first shown to catch the
// mark changed under the old rules); the plan shows the bridge, nothing of
// it is left or recorded, and down takes the rest away.
func TestFullTunnelFwMarkOrder(t *testing.T) {
	fx := newFixture(t)
	pc := newPathChecker(t, fx)
	if _, _, err := upWithPlan(t, fx, clientConfig()); err != nil {
		t.Fatal(err)
	}
	if pc.check("after up"); len(pc.bad) > 0 {
		t.Fatalf("the full tunnel is wrong already: %v", pc.bad)
	}
	// The checker sees the loop: the device marks 0xca6d under rules for 0xca6c.
	dev := fx.devs.devs["wg0"]
	for _, m := range []int{51821, 51820} {
		if err := dev.Configure(device.Config{FwMark: &m}); err != nil {
			t.Fatal(err)
		}
		if m == 51821 {
			if pc.check("fwmark 0xca6d under the rules of 0xca6c"); len(pc.bad) != 2 || !strings.Contains(pc.bad[0], "198.18.0.1 goes into the tunnel") || !strings.Contains(pc.bad[1], "2001:db8::1 goes into the tunnel") {
				t.Fatalf("the checker does not see the loop: %v", pc.bad)
			}
		}
	}
	pc.bad = nil
	opts := fx.syncOpts()
	opts.Log = pc
	for _, c := range []struct{ from, to uint32 }{{51820, 51821}, {51821, 51820}} {
		conf := clientConfig()
		conf.Interface.FwMark = c.to
		fx.log.Reset()
		plan, err := Sync(context.Background(), req("wg0", conf, false, false), opts)
		if err != nil {
			t.Fatalf("Sync to fwmark %d: %v\n%s", c.to, err, fx.log.String())
		}
		pc.check("after the sync")
		lines := strings.Split(strings.TrimSpace(fx.log.String()), "\n")
		t.Logf("fwmark %d -> %d:\n%s", c.from, c.to, strings.Join(lines, "\n"))
		for _, b := range pc.bad {
			t.Errorf("fwmark %d -> %d: %s", c.from, c.to, b)
		}
		pc.bad = nil
		at := func(what string, last bool) int {
			t.Helper()
			f := slices.IndexFunc[[]string]
			if last {
				f = func(s []string, fn func(string) bool) int {
					for i := len(s) - 1; i >= 0; i-- {
						if fn(s[i]) {
							return i
						}
					}
					return -1
				}
			}
			i := f(lines, func(l string) bool { return strings.Contains(l, what) })
			if i < 0 {
				t.Fatalf("no step %q in:\n%s", what, strings.Join(lines, "\n"))
			}
			return i
		}
		bridge := fmt.Sprintf("fwmark %d table main", c.to)
		if at("ip rule add -4 "+bridge, true) > at(fmt.Sprintf("wg set wg0 fwmark %d", c.to), false) ||
			at("ip rule add -6 "+bridge, true) > at(fmt.Sprintf("wg set wg0 fwmark %d", c.to), false) {
			t.Errorf("fwmark %d -> %d: the bridge comes after the device's mark changes", c.from, c.to)
		}
		if at("ip rule del -4 "+bridge, false) < at(fmt.Sprintf("not fwmark %d", c.from), true) ||
			at("ip rule del -6 "+bridge, false) < at(fmt.Sprintf("not fwmark %d", c.from), true) {
			t.Errorf("fwmark %d -> %d: the bridge goes before the old rules", c.from, c.to)
		}
		if len(plan.Rules.Bridge) != 2 || !strings.Contains(planText(plan), fmt.Sprintf("from all fwmark %#x lookup main (while the fwmark changes)", c.to)) {
			t.Errorf("fwmark %d -> %d: the plan does not show the bridge: %v\n%s", c.from, c.to, plan.Rules.Bridge, planText(plan))
		}
		snap := fx.host.Snapshot()
		st, err := LoadState(fx.opts.StateDir, "wg0")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range slices.Concat(snap.Rules, st.Tunnel.Rules) {
			if r.Table == hostnet.TableMain && r.Mark != 0 {
				t.Errorf("fwmark %d -> %d: the bridge %s is left (host or record)", c.from, c.to, r)
			}
			if r.Mark == c.from {
				t.Errorf("fwmark %d -> %d: the old rule %s is left (host or record)", c.from, c.to, r)
			}
		}
		if st.Tunnel.Table != int(c.to) || len(st.Tunnel.Rules) != 4 {
			t.Errorf("fwmark %d -> %d: the record says table %d, rules %v", c.from, c.to, st.Tunnel.Table, st.Tunnel.Rules)
		}
	}
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if rs := fx.host.Snapshot().Rules; slices.ContainsFunc(rs, func(r hostnet.Rule) bool { return r.Mark != 0 || r.SuppressDefault }) {
		t.Errorf("rules left after down: %v", rs)
	}
}

// TestFullTunnelFwMarkRestore: a sync changing the fwmark that fails with its
// bridge in place (the first old rule's removal fails) is undone: the restore,
// a change of fwmark back, keeps WireGuard's UDP out of the tunnel and the
// rest in it before every step, and leaves the host, the device and the
// record as they were, no bridge behind.
func TestFullTunnelFwMarkRestore(t *testing.T) {
	fx := newFixture(t)
	pc := newPathChecker(t, fx)
	if _, _, err := upWithPlan(t, fx, clientConfig()); err != nil {
		t.Fatal(err)
	}
	before := fx.world(t, "wg0")
	stBefore, err := LoadState(fx.opts.StateDir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	opts := fx.syncOpts()
	opts.Log = pc
	conf := clientConfig()
	conf.Interface.FwMark = 51821
	// DelRule calls: the old `not fwmark` rules go first (removeRules).
	fx.host.FailOn("DelRule", errors.New("injected"))
	if _, err := Sync(context.Background(), req("wg0", conf, false, false), opts); err == nil || !strings.Contains(err.Error(), "everything restored") {
		t.Fatalf("Sync: %v, want a failure undone\n%s", err, fx.log.String())
	}
	t.Logf("failed sync and restore:\n%s", fx.log.String())
	if !strings.Contains(fx.log.String(), "ip rule add -4 fwmark 51820 table main") {
		t.Errorf("the restore does not bridge its own change of fwmark:\n%s", fx.log.String())
	}
	for _, b := range pc.bad {
		t.Error(b)
	}
	if diff := cmp.Diff(before, fx.world(t, "wg0"), worldOpts...); diff != "" {
		t.Errorf("not restored (-before +after):\n%s", diff)
	}
	st, err := LoadState(fx.opts.StateDir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Tunnel.Rules, stBefore.Tunnel.Rules) || st.Tunnel.Table != 51820 {
		t.Errorf("the record after the restore: %+v, want %+v", st.Tunnel, stBefore.Tunnel)
	}
}
