package hostnettest

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/hostnet"
)

// Run is the conformance test every HostNet passes. newHost returns a HostNet and
// the name of a link on it that the test may change freely: administratively down,
// MTU 1500, no addresses, no routes, with the usual per-interface sysctls. It is
// called once per subtest.
func Run(t *testing.T, newHost func(t *testing.T) (hostnet.HostNet, string)) {
	pfx := netip.MustParsePrefix
	cmpOpts := []cmp.Option{cmpopts.EquateComparable(netip.Prefix{}), cmpopts.EquateEmpty()}
	sorted := func(ps []netip.Prefix) []netip.Prefix {
		ps = slices.Clone(ps)
		slices.SortFunc(ps, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
		return ps
	}
	mustNotFound := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, hostnet.ErrNotFound) {
			t.Errorf("%s: got %v, want an error wrapping ErrNotFound", what, err)
		}
	}

	t.Run("link", func(t *testing.T) {
		h, link := newHost(t)
		l, err := h.Link(link)
		if err != nil {
			t.Fatal(err)
		}
		if l.Name != link || l.Index == 0 || l.Up {
			t.Errorf("Link(%q) = %+v, want that name, an index, down", link, l)
		}
		if err := h.SetMTU(link, 1380); err != nil {
			t.Fatal(err)
		}
		if err := h.SetUp(link, true); err != nil {
			t.Fatal(err)
		}
		l, err = h.Link(link)
		if err != nil {
			t.Fatal(err)
		}
		if l.MTU != 1380 || !l.Up {
			t.Errorf("after SetMTU 1380 and SetUp: %+v", l)
		}
		if err := h.SetUp(link, false); err != nil {
			t.Fatal(err)
		}
		if l, _ := h.Link(link); l.Up {
			t.Errorf("after SetUp false: still up")
		}
		all, err := h.Links()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(all, func(x hostnet.Link) bool { return x.Name == link && x.Index == l.Index }) {
			t.Errorf("Links() = %+v: %s missing", all, link)
		}
		_, err = h.Link("wgt-nonexist0")
		mustNotFound(t, "Link of a missing link", err)
		mustNotFound(t, "SetUp of a missing link", h.SetUp("wgt-nonexist0", true))
	})

	t.Run("addresses", func(t *testing.T) {
		h, link := newHost(t)
		want := []netip.Prefix{pfx("10.99.0.1/24"), pfx("fd00:99::1/64"), pfx("10.98.0.1/32")}
		for _, p := range want {
			if err := h.AddAddr(link, p); err != nil {
				t.Fatal(err)
			}
		}
		got, err := h.Addrs(link)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sorted(want), sorted(got), cmpOpts...); diff != "" {
			t.Errorf("Addrs (-want +got):\n%s", diff)
		}
		if err := h.AddAddr(link, want[0]); !errors.Is(err, hostnet.ErrExists) {
			t.Errorf("adding an address twice: %v, want ErrExists", err)
		}
		if err := h.SetUp(link, true); err != nil {
			t.Fatal(err)
		}
		routes, err := h.Routes(link, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(routes, hostnet.Route{Dst: pfx("10.99.0.0/24"), Dev: link}) {
			t.Errorf("no prefix route for 10.99.0.1/24 in %v", routes)
		}
		for _, p := range want {
			if err := h.DelAddr(link, p); err != nil {
				t.Fatal(err)
			}
		}
		got, err = h.Addrs(link)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("after deleting every address: %v", got)
		}
		mustNotFound(t, "deleting a missing address", h.DelAddr(link, want[0]))
	})

	t.Run("routes", func(t *testing.T) {
		h, link := newHost(t)
		if err := h.SetMTU(link, 1380); err != nil {
			t.Fatal(err)
		}
		if err := h.SetUp(link, true); err != nil {
			t.Fatal(err)
		}
		main := []hostnet.Route{
			{Dst: pfx("10.10.2.0/24"), Dev: link},
			{Dst: pfx("10.10.0.0/16"), Dev: link},
			{Dst: pfx("fd00:10::/48"), Dev: link},
		}
		other := hostnet.Route{Dst: pfx("10.10.3.0/24"), Dev: link, Table: 4242}
		for _, r := range append(slices.Clone(main), other) {
			if err := h.AddRoute(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.AddRoute(main[0]); !errors.Is(err, hostnet.ErrExists) {
			t.Errorf("adding a route twice: %v, want ErrExists", err)
		}
		for _, tc := range []struct {
			table int
			want  []hostnet.Route
		}{{0, main}, {4242, []hostnet.Route{other}}} {
			got, err := h.Routes(link, tc.table)
			if err != nil {
				t.Fatal(err)
			}
			byDst := func(a, b hostnet.Route) int { return strings.Compare(a.Dst.String(), b.Dst.String()) }
			slices.SortFunc(got, byDst)
			want := slices.Clone(tc.want)
			slices.SortFunc(want, byDst)
			if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
				t.Errorf("Routes(%s, %d) (-want +got):\n%s", link, tc.table, diff)
			}
		}
		mtu, err := h.RouteMTU(netip.MustParseAddr("10.10.2.7"))
		if err != nil || mtu != 1380 {
			t.Errorf("RouteMTU(10.10.2.7) = %d, %v; want 1380", mtu, err)
		}
		mtu, err = h.RouteMTU(netip.MustParseAddr("192.0.2.1"))
		if err != nil || mtu != 0 {
			t.Errorf("RouteMTU with no route = %d, %v; want 0, nil", mtu, err)
		}
		for _, r := range append(slices.Clone(main), other) {
			if err := h.DelRoute(r); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := h.Routes(link, 0); len(got) != 0 {
			t.Errorf("after deleting: %v", got)
		}
		mustNotFound(t, "deleting a missing route", h.DelRoute(main[0]))
	})

	t.Run("route batches", func(t *testing.T) {
		h, link := newHost(t)
		if err := h.SetUp(link, true); err != nil {
			t.Fatal(err)
		}
		var rs []hostnet.Route
		for i := range 300 {
			rs = append(rs, hostnet.Route{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, byte(i >> 8), byte(i)}), 32), Dev: link})
		}
		rs = append(rs, hostnet.Route{Dst: pfx("fd00:77::/64"), Dev: link}, hostnet.Route{Dst: pfx("10.78.0.0/16"), Dev: link, Table: 4242})
		if err := h.AddRoute(rs[7]); err != nil {
			t.Fatal(err)
		}
		if err := h.AddRoutes(rs); err != nil {
			t.Fatalf("AddRoutes with one route already there: %v", err)
		}
		got, err := h.Routes(link, 0)
		if err != nil {
			t.Fatal(err)
		}
		t4242, err := h.Routes(link, 4242)
		if err != nil {
			t.Fatal(err)
		}
		byDst := func(a, b hostnet.Route) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) }
		got = append(got, t4242...)
		slices.SortFunc(got, byDst)
		want := slices.Clone(rs)
		slices.SortFunc(want, byDst)
		if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Errorf("Routes after AddRoutes (-want +got):\n%s", diff)
		}
		if err := h.DelRoute(rs[9]); err != nil {
			t.Fatal(err)
		}
		if err := h.DelRoutes(rs); err != nil {
			t.Fatalf("DelRoutes with one route gone: %v", err)
		}
		got, _ = h.Routes(link, 0)
		t4242, _ = h.Routes(link, 4242)
		if len(got)+len(t4242) != 0 {
			t.Errorf("after DelRoutes: %v %v", got, t4242)
		}
		if err := h.AddRoutes(nil); err != nil {
			t.Errorf("AddRoutes(nil): %v", err)
		}
		gone := []hostnet.Route{{Dst: pfx("10.79.0.0/24"), Dev: "wgt-nonexist0"}}
		mustNotFound(t, "AddRoutes through a missing link", h.AddRoutes(gone))
	})

	t.Run("sysctl", func(t *testing.T) {
		h, link := newHost(t)
		key := fmt.Sprintf("net/ipv4/conf/%s/forwarding", link)
		for _, v := range []string{"1", "0"} {
			if err := h.SetSysctl(key, v); err != nil {
				t.Fatal(err)
			}
			got, err := h.Sysctl(key)
			if err != nil || got != v {
				t.Errorf("Sysctl(%s) = %q, %v; want %q", key, got, err, v)
			}
		}
		_, err := h.Sysctl("net/ipv4/conf/wgt-nonexist0/forwarding")
		mustNotFound(t, "reading a missing sysctl", err)
		mustNotFound(t, "writing a missing sysctl", h.SetSysctl("net/ipv4/conf/wgt-nonexist0/forwarding", "1"))
	})

	t.Run("firewall", func(t *testing.T) {
		h, link := newHost(t)
		table := "wgnet-test"
		for _, fw := range []hostnet.Firewall{
			{Table: table, ClampMSS: []string{link}},
			{Table: table, ClampMSS: []string{link, "wg9"}}, // replaces
			{Table: table, ClampMSS: []string{link}, DropRedirects: []string{link}},
			{Table: table, DropRedirects: []string{link, "wg9"}},
			{Table: table},
		} {
			if err := h.ApplyFirewall(fw); err != nil {
				t.Fatal(err)
			}
			got, err := h.Firewall(table)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fw, got, cmpOpts...); diff != "" {
				t.Errorf("Firewall (-want +got):\n%s", diff)
			}
		}
		if err := h.DeleteFirewall(table); err != nil {
			t.Fatal(err)
		}
		_, err := h.Firewall(table)
		mustNotFound(t, "reading a deleted table", err)
		mustNotFound(t, "deleting a deleted table", h.DeleteFirewall(table))
	})

	t.Run("filter", func(t *testing.T) {
		h, link := newHost(t)
		table := "wgnet-test"
		for i, fw := range FilterCases(table, link) {
			if err := h.ApplyFirewall(fw); err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			got, err := h.Firewall(table)
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			if diff := cmp.Diff(fw, got, cmpOpts...); diff != "" {
				t.Errorf("case %d: Firewall (-want +got):\n%s", i, diff)
			}
		}
		before, err := h.Firewall(table)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []hostnet.FilterRule{
			{Proto: "", Ports: []hostnet.PortRange{{From: 22, To: 22}}},
			{Proto: "sctp"},
			{Proto: "tcp", Ports: []hostnet.PortRange{{From: 30, To: 20}}},
			{Src: []netip.Prefix{pfx("fd00::/64")}},
			{Src: []netip.Prefix{pfx("10.1.0.0/16"), pfx("10.1.2.0/24")}},
			{Dst: []netip.Prefix{pfx("10.1.2.3/24")}},
		} {
			fw := hostnet.Firewall{Table: table, Filter: &hostnet.Filter{Iface: link, Rules: []hostnet.FilterRule{bad}}}
			if err := h.ApplyFirewall(fw); err == nil {
				t.Errorf("ApplyFirewall took the bad rule %+v", bad)
			}
		}
		if got, err := h.Firewall(table); err != nil || !cmp.Equal(before, got, cmpOpts...) {
			t.Errorf("a refused ApplyFirewall changed the table: %+v, %v", got, err)
		}
		if err := h.DeleteFirewall(table); err != nil {
			t.Fatal(err)
		}
		n, err := h.ForgetFlows(func(hostnet.Flow) bool { return false })
		if err != nil || n != 0 {
			t.Errorf("ForgetFlows of nothing = %d, %v", n, err)
		}
	})
	runTunnel(t, newHost)
}

// FilterCases are the firewalls the conformance test writes and reads back, in
// order, each replacing the one before: every kind of filter rule, in both
// families, with and without the MSS clamp, and back to no filter.
func FilterCases(table, link string) []hostnet.Firewall {
	pfx := netip.MustParsePrefix
	ps := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, pfx(s))
		}
		return out
	}
	full := &hostnet.Filter{Iface: link, Rules: []hostnet.FilterRule{
		{Src: ps("10.10.1.0/24", "10.10.2.0/24", "10.99.0.3/32"), Dst: ps("10.10.4.0/24"), Proto: "tcp",
			Ports: []hostnet.PortRange{{From: 5432, To: 5432}, {From: 8000, To: 8080}, {From: 65000, To: 65535}}, Accept: true, Comment: "policy.rules[0]: allow app -> db tcp 5432"},
		{V6: true, Src: ps("fd00:10:1::/64"), Dst: ps("fd00:10:4::/64", "fd00:99::4/128"), Proto: "tcp", Ports: []hostnet.PortRange{{From: 5432, To: 5432}}, Accept: true},
		{Src: ps("0.0.0.0/8", "255.255.255.0/24"), Proto: "udp", Ports: []hostnet.PortRange{{From: 0, To: 53}}, Accept: true},
		{Dst: ps("10.10.4.0/24"), Proto: "icmp", Accept: true},
		{V6: true, Proto: "icmp", Accept: true},
		{V6: true, Src: ps("ffff::/16"), Accept: false, Comment: "deny the top"},
		{Proto: "udp"},
		{Accept: true},
	}}
	small := &hostnet.Filter{Iface: link, DefaultAccept: true, Rules: []hostnet.FilterRule{
		{Src: ps("10.10.2.0/24"), Dst: ps("10.10.3.0/24"), Comment: "s2 -> s3's containers: deny"},
	}}
	return []hostnet.Firewall{
		{Table: table, Filter: full},
		{Table: table, ClampMSS: []string{link}, DropRedirects: []string{link}, Filter: small},
		{Table: table, Filter: &hostnet.Filter{Iface: link}}, // default deny, no rule
		{Table: table, Filter: &hostnet.Filter{Iface: link, DefaultAccept: true}},
		{Table: table, ClampMSS: []string{link}},
	}
}
