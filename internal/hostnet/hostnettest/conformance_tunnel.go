package hostnettest

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/hostnet"
)

// runTunnel is the conformance of the full-tunnel parts: policy rules, the
// table-in-use test and the tunnel tables.
func runTunnel(t *testing.T, newHost func(t *testing.T) (hostnet.HostNet, string)) {
	cmpOpts := []cmp.Option{cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()}
	t.Run("rules", func(t *testing.T) {
		h, _ := newHost(t)
		for _, fam := range []int{4, 6} {
			before, err := h.Rules(fam)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(before, func(r hostnet.Rule) bool { return r.Table == hostnet.TableMain && r.Priority == 32766 }) {
				t.Fatalf("family %d: no main rule at 32766 in %v", fam, before)
			}
			p := hostnet.DefaultRulePriority(before)
			mark := hostnet.Rule{Family: fam, Priority: p, Table: 51899, Mark: 51899, Invert: true}
			if err := h.AddRule(mark); err != nil {
				t.Fatal(err)
			}
			rs, _ := h.Rules(fam)
			suppress := hostnet.Rule{Family: fam, Priority: hostnet.DefaultRulePriority(rs), Table: hostnet.TableMain, SuppressDefault: true}
			if suppress.Priority != p-1 {
				t.Errorf("family %d: the second rule's default priority is %d, want %d", fam, suppress.Priority, p-1)
			}
			// Another tunnel's rule, equal but for its priority.
			other := suppress
			other.Priority -= 10
			for _, r := range []hostnet.Rule{suppress, other} {
				if err := h.AddRule(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.AddRule(mark); !errors.Is(err, hostnet.ErrExists) {
				t.Errorf("family %d: adding a rule twice: %v, want ErrExists", fam, err)
			}
			got, err := h.Rules(fam)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []hostnet.Rule{mark, suppress, other} {
				if !slices.Contains(got, r) {
					t.Errorf("family %d: rule %s not read back; got %v", fam, r, got)
				}
			}
			if !slices.IsSortedFunc(got, func(a, b hostnet.Rule) int { return a.Priority - b.Priority }) {
				t.Errorf("family %d: rules not in priority order: %v", fam, got)
			}
			// Deleting one of two rules that differ only in priority takes that one.
			if err := h.DelRule(suppress); err != nil {
				t.Fatal(err)
			}
			got, _ = h.Rules(fam)
			if slices.Contains(got, suppress) || !slices.Contains(got, other) {
				t.Errorf("family %d: after deleting %s: %v", fam, suppress, got)
			}
			for _, r := range []hostnet.Rule{other, mark} {
				if err := h.DelRule(r); err != nil {
					t.Fatal(err)
				}
			}
			mustNotFoundT(t, "deleting a missing rule", h.DelRule(mark))
			after, _ := h.Rules(fam)
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("family %d: rules not as before (-before +after):\n%s", fam, diff)
			}
		}
	})

	t.Run("table in use", func(t *testing.T) {
		h, link := newHost(t)
		if err := h.SetUp(link, true); err != nil {
			t.Fatal(err)
		}
		for _, dst := range []string{"0.0.0.0/0", "::/0"} {
			if used, err := h.TableInUse(51898); err != nil || used {
				t.Fatalf("TableInUse(51898) = %v, %v before any route", used, err)
			}
			r := hostnet.Route{Dst: netip.MustParsePrefix(dst), Dev: link, Table: 51898}
			if err := h.AddRoute(r); err != nil {
				t.Fatal(err)
			}
			if used, err := h.TableInUse(51898); err != nil || !used {
				t.Errorf("TableInUse(51898) = %v, %v with %s in it", used, err, dst)
			}
			got, err := h.Routes(link, 51898)
			if err != nil || !slices.ContainsFunc(got, func(x hostnet.Route) bool { return x.Dst == r.Dst }) {
				t.Errorf("Routes(%s, 51898) = %v, %v; want the default route %s", link, got, err, dst)
			}
			if err := h.DelRoute(r); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("tunnel firewall", func(t *testing.T) {
		h, link := newHost(t)
		table := "wgnet-tuntest"
		a4, a6 := netip.MustParseAddr("10.77.0.2"), netip.MustParseAddr("fd77::2")
		for _, tf := range []hostnet.TunnelFirewall{
			{Table: table, V4: true, Iface: link, Mark: 51820, Addrs: []netip.Addr{a4}},
			{Table: table, V4: true, V6: true, Iface: link, Mark: 51821, Addrs: []netip.Addr{a4, a6}}, // replaces
			{Table: table, V6: true, Iface: link, Mark: 0xca6c, Addrs: []netip.Addr{a6}},
			{Table: table, V4: true, Mark: 7}, // no addresses: no interface to read back
		} {
			if err := h.ApplyTunnelFirewall(tf); err != nil {
				t.Fatal(err)
			}
			got, err := h.TunnelFirewall(table)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tf) {
				t.Errorf("TunnelFirewall: got %+v, want %+v", got, tf)
			}
			if diff := cmp.Diff(tf.FamilyAddrs(), slices.DeleteFunc(got.Addrs, netip.Addr.IsLinkLocalUnicast), cmpOpts...); diff != "" {
				t.Errorf("TunnelFirewall addresses (-want +got):\n%s", diff)
			}
		}
		if err := h.DeleteTunnelFirewall(table); err != nil {
			t.Fatal(err)
		}
		_, err := h.TunnelFirewall(table)
		mustNotFoundT(t, "reading a deleted tunnel table", err)
		mustNotFoundT(t, "deleting a deleted tunnel table", h.DeleteTunnelFirewall(table))
	})
}

func mustNotFoundT(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, hostnet.ErrNotFound) {
		t.Errorf("%s: got %v, want an error wrapping ErrNotFound", what, err)
	}
}

// RunTunnel runs only the full-tunnel part of Run: for a second setting of the
// same HostNet (the Linux one writing its tunnel firewall with iptables).
func RunTunnel(t *testing.T, newHost func(t *testing.T) (hostnet.HostNet, string)) {
	runTunnel(t, newHost)
}
