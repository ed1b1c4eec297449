package up_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/up"
)

// TestRoutedSubnetsJustWork is issue 11's network: three servers (hub, s1, s2),
// each with a container behind a bridge on its routed subnet, ip_forward=0 and
// rp_filter=1 everywhere, and nothing set by hand. After wgnet up on each, all
// 30 pairs of hosts and containers reach each other; spoke-to-spoke pings
// through the hub see no ICMP redirects; down restores each namespace exactly.
func TestRoutedSubnetsJustWork(t *testing.T) {
	l := newBareLab(t, "hub", "s1", "s2")
	hub, s1, s2 := l.hosts[0], l.hosts[1], l.hosts[2]
	before := map[string]string{}
	for _, h := range l.hosts {
		before[h.name] = snapshot(t, h.ns)
	}
	for _, h := range l.hosts {
		out, err := l.wgnet(h, "up", h.conf)
		if err != nil {
			t.Fatalf("wgnet up on %s: %v\n%s", h.name, err, out)
		}
		t.Logf("wgnet up on %s:\n%s", h.name, out)
		// The plan turns on forwarding in front of the subnets, narrowly.
		for _, want := range []string{"net.ipv4.conf.cbr0.forwarding=1", "net.ipv6.conf.cbr0.force_forwarding=1"} {
			if !strings.Contains(out, want) {
				t.Errorf("up on %s does not set %s:\n%s", h.name, want, out)
			}
		}
		if v := strings.TrimSpace(h.ns.Run(t, "sysctl", "-n", "net.ipv4.ip_forward")); v != "0" {
			t.Errorf("up on %s turned on global ip_forward (%s)", h.name, v)
		}
	}

	allPairs(t, l)

	// The hub's table drops the redirects it would send spokes.
	table := hub.ns.Run(t, "nft", "list", "table", "inet", up.FirewallTable(hub.ifname))
	t.Logf("nft list table inet %s:\n%s", up.FirewallTable(hub.ifname), table)
	for _, want := range []string{
		`oifname "` + hub.ifname + `" icmp type redirect drop`,
		`oifname "` + hub.ifname + `" icmpv6 type nd-redirect drop`,
	} {
		if !strings.Contains(table, want) {
			t.Errorf("wgnet's table on the hub has no %q", want)
		}
	}
	for _, c := range []struct {
		from *netnstest.NS
		to   netip.Addr
	}{{s1.ns, s2.overlay4}, {s2.ns, s1.overlay4}, {s1.ctr, s2.ctr4}, {s1.ns, s2.overlay6}} {
		out, err := c.from.Try("ping", "-c", "5", "-i", "0.2", "-W", "1", c.to.String())
		if err != nil {
			t.Errorf("ping %s: %v\n%s", c.to, err, out)
		}
		if strings.Contains(out, "Redirect") {
			t.Errorf("ping %s through the hub shows redirects:\n%s", c.to, out)
		}
	}

	// And it is that rule that stops them: without it the hub redirects.
	hub.ns.Run(t, "nft", "delete", "chain", "inet", up.FirewallTable(hub.ifname), "output")
	if out, _ := s2.ctr.Try("ping", "-c", "5", "-i", "0.2", "-W", "1", s1.ctr4.String()); !strings.Contains(out, "Redirect") {
		t.Errorf("without the rule, ping %s through the hub shows no redirect (so the check above proves nothing):\n%s", s1.ctr4, out)
	}

	for _, h := range l.hosts {
		if out, err := l.wgnet(h, "down", h.ifname); err != nil {
			t.Errorf("down on %s: %v\n%s", h.name, err, out)
		}
		if after := snapshot(t, h.ns); after != before[h.name] {
			t.Errorf("down did not restore %s:\n%s", h.name, lineDiff(before[h.name], after))
		}
	}
}
