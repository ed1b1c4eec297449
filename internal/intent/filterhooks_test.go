package intent

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/wgconf"
)

// TestFilterHooksRoundTrip renders filters of every shape (both families,
// any on either side, icmp for both, port ranges, default deny) into a
// wg-quick file and reads them back as they were.
func TestFilterHooksRoundTrip(t *testing.T) {
	p := netip.MustParsePrefix
	filters := []Filter{
		{Enabled: true, DefaultAccept: true},
		{Enabled: true, Rules: []FilterRule{
			{Accept: true, Proto: "icmp", Origin: "policy.rules[0]: allow any -> any icmp"},
			{Accept: true, Src: []netip.Prefix{p("10.0.0.0/8"), p("fd00::/8")}, Proto: "udp", Ports: []PortRange{{53, 53}, {1000, 2000}}, Origin: "two families, any destination"},
			{Accept: false, Dst: []netip.Prefix{p("fd00:100::21/128")}},
			{Accept: true, Src: []netip.Prefix{p("192.168.100.11/32")}, Dst: []netip.Prefix{p("192.168.100.21/32"), p("10.0.21.0/24")}, Proto: "tcp"},
			{Accept: false},
		}},
	}
	for i, f := range filters {
		h := &Host{Name: "x", Comments: []string{"header"}}
		h.Firewall.Filter = f
		h.Hooks.PostUp = []string{"echo mine"}
		h.Hooks.PreDown = []string{"echo bye"}
		text := h.WgQuick()
		c, err := wgconf.Parse("x.conf", text)
		if err != nil {
			t.Fatalf("filter %d: %v\n%s", i, err, text)
		}
		back, _ := FromConfig(c)
		want := f.Clone()
		for j := range want.Rules {
			want.Rules[j].Dst = sortedPrefixes(want.Rules[j].Dst)
		}
		if diff := cmp.Diff(want, back.Firewall.Filter, cmpopts.EquateComparable(netip.Prefix{}), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("filter %d (-rendered +read):\n%s\n%s", i, diff, text)
		}
		if !cmp.Equal(back.Hooks.PostUp, []string{"echo mine"}) || !cmp.Equal(back.Hooks.PreDown, []string{"echo bye"}) || !cmp.Equal(back.Comments, []string{"header"}) {
			t.Errorf("filter %d: user hooks %q %q, comments %q", i, back.Hooks.PostUp, back.Hooks.PreDown, back.Comments)
		}
		if i == 1 && !strings.Contains(string(text), `segment meta l4proto { icmp, ipv6-icmp } accept comment "rule 0"'`) {
			t.Errorf("icmp of both families is not one line:\n%s", text)
		}
	}
}

// FuzzFilterHooks: any PostUp and PreDown lines read without panicking; when
// they read as a filter, that filter renders as the same lines.
func FuzzFilterHooks(f *testing.F) {
	h := &Host{Name: "x"}
	h.Firewall.Filter = Filter{Enabled: true, Rules: []FilterRule{
		{Accept: true, Src: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Proto: "tcp", Ports: []PortRange{{5432, 5432}}},
		{Accept: true, Proto: "icmp"},
	}}
	c := h.Config()
	f.Add(strings.Join(c.Interface.PostUp, "\n"), strings.Join(c.Interface.PreDown, "\n"))
	f.Add("nft 'add table inet wgnet-policy-%i'", "")
	f.Fuzz(func(t *testing.T, postUp, preDown string) {
		c := &wgconf.Config{Name: "x"}
		c.Interface.PostUp = strings.Split(postUp, "\n")
		c.Interface.PreDown = strings.Split(preDown, "\n")
		back, _ := FromConfig(c)
		if !back.Firewall.Filter.Enabled {
			return
		}
		again := back.Config()
		var filterLines []string
		for _, l := range c.Interface.PostUp {
			if IsFilterHook(l) {
				filterLines = append(filterLines, l)
			}
		}
		var rendered []string
		for _, l := range again.Interface.PostUp {
			if IsFilterHook(l) {
				rendered = append(rendered, l)
			}
		}
		if strings.Join(filterLines, "\n") != strings.Join(rendered, "\n") {
			t.Fatalf("read as a filter, but renders differently:\n%s\n---\n%s", strings.Join(filterLines, "\n"), strings.Join(rendered, "\n"))
		}
	})
}
