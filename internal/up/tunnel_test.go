package up

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/hostnet"
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
