package up_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/netnstest"
)

// wgnetFirewallIptables forces wgnet's own table into iptables.
const wgnetFirewallIptables = "WGNET_FIREWALL=iptables"

// fwChains are the built-in chains wgnet's table in iptables jumps from.
var fwChains = [][2]string{{"mangle", "INPUT"}, {"mangle", "FORWARD"}, {"mangle", "OUTPUT"}}

// TestHubIptablesFirewall: a hub and two spokes brought up by the wgnet binary
// with WGNET_FIREWALL=iptables (as on a host whose nf_tables does not answer;
// an unknown setting refused first, leaving nothing behind):
// each host's table is in iptables (the hub's MSS clamp and redirect drops
// in mangle chains wgnet-IFACE-*), none in nftables; the spokes reach each other and
// each other's containers through the hub; a sync of the unchanged config
// finds nothing to change and leaves iptables as it was; down leaves filter
// and mangle of both families as before up.
func TestHubIptablesFirewall(t *testing.T) {
	netnstest.NeedsTool(t, "iptables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	netnstest.NeedsTool(t, "nftables", "nft")
	hubIptablesFirewall(t)
}

// TestHubIptablesLegacyFirewall is TestHubIptablesFirewall with
// iptables-legacy's programs first in PATH under the plain names (a host
// without nf_tables has legacy), for wgnet and for the test's own dumps.
func TestHubIptablesLegacyFirewall(t *testing.T) {
	netnstest.NeedsTool(t, "iptables", "iptables-legacy", "iptables-legacy-restore", "ip6tables-legacy-restore", "iptables-legacy-save", "ip6tables-legacy-save")
	netnstest.NeedsTool(t, "nftables", "nft")
	netnstest.IptablesLegacyFirst(t)
	hubIptablesFirewall(t)
}

func hubIptablesFirewall(t *testing.T) {
	l := newLab(t, "hub", "s1", "s2")
	hub, s1, s2 := l.hosts[0], l.hosts[1], l.hosts[2]
	dump := func(h *labHost) string { return iptablesDumpTables(t, h.ns, "filter", "mangle") }
	before := map[string]string{}
	for _, h := range l.hosts {
		touchIptablesChains(t, h.ns, fwChains)
		before[h.name] = dump(h)
	}
	// A setting wgnet does not know is refused, and nothing is left behind.
	l.env = []string{"WGNET_FIREWALL=xtables"}
	if out, err := l.wgnet(hub, "up", hub.conf); err == nil || !strings.Contains(out, `WGNET_FIREWALL: firewall backend "xtables": want auto, nftables or iptables`) {
		t.Errorf("up with WGNET_FIREWALL=xtables: %v\n%s", err, out)
	}
	if out, err := hub.ns.Try("ip", "link", "show", hub.ifname); err == nil || dump(hub) != before[hub.name] {
		t.Errorf("a refused up left the interface or iptables changed:\n%s\n%s", out, dump(hub))
	}
	l.env = []string{wgnetFirewallIptables}
	for _, h := range l.hosts {
		l.up(h)
	}
	during := dump(hub)
	t.Logf("the hub's iptables:\n%s", during)
	table := "wgnet-" + hub.ifname
	for _, w := range []string{
		"-A FORWARD -m comment --comment " + table + " -j " + table + "-fwd",
		"-A " + table + "-fwd -o " + hub.ifname + " -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
		"-A OUTPUT -m comment --comment " + table + " -j " + table + "-out",
		"-A " + table + "-out -o " + hub.ifname + " -p icmp -m icmp --icmp-type 5 -j DROP",
		"-A " + table + "-out -o " + hub.ifname + " -p ipv6-icmp -m icmp6 --icmpv6-type 137 -j DROP",
	} {
		if !strings.Contains(during, w+"\n") {
			t.Errorf("the hub's iptables lacks %q", w)
		}
	}
	for _, h := range l.hosts {
		if out := h.ns.Run(t, "nft", "list", "tables"); strings.Contains(out, "wgnet-") {
			t.Errorf("%s: wgnet's table is in nftables too:\n%s", h.name, out)
		}
	}
	for _, to := range []netip.Addr{s2.overlay4, s2.overlay6, s2.ctr4, s2.ctr6} {
		if err := ping(t, s1.ns, to); err != nil {
			t.Errorf("s1 -> %s through the hub: %v", to, err)
		}
	}
	if err := ping(t, s1.ctr, s2.ctr4); err != nil {
		t.Errorf("s1's container -> s2's container: %v", err)
	}
	if out, err := l.wgnet(hub, "sync", hub.conf); err != nil || !strings.Contains(out, "no changes") {
		t.Errorf("sync of the unchanged hub: %v\n%s", err, out)
	}
	if again := dump(hub); again != during {
		t.Errorf("sync changed the hub's iptables:\n%s", lineDiff(during, again))
	}
	for _, h := range l.hosts {
		if out, err := l.wgnet(h, "down", h.ifname); err != nil {
			t.Errorf("down on %s: %v\n%s", h.name, err, out)
		}
		if after := dump(h); after != before[h.name] {
			t.Errorf("%s: down left iptables changed:\n%s", h.name, lineDiff(before[h.name], after))
		}
	}
}

// TestPolicySpecAppDBIptables is TestPolicySpecAppDB with every host's table,
// the policy's filter included, in iptables (WGNET_FIREWALL=iptables): the
// same matrix, on a hub and on a mesh.
func TestPolicySpecAppDBIptables(t *testing.T) {
	netnstest.NeedsTool(t, "iptables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	appDBMatrix(t, func(l *lab, h *labHost) {
		l.env = []string{wgnetFirewallIptables}
		l.up(h)
	}, func(l *lab, app, db []*labHost) {
		l.policy = specPolicy(t, map[string][]*labHost{"app": app, "db": db},
			"allow app -> db tcp 5432", "deny app -> db", "deny db -> app")
		l.syncChanged(true)
		for _, h := range l.hosts {
			if out := h.ns.Run(t, "iptables-save", "-t", "mangle"); !strings.Contains(out, ":wgnet-"+h.ifname+"-pol - ") {
				t.Errorf("%s: no policy chain in iptables:\n%s", h.name, out)
			}
			if out := h.ns.Run(t, "nft", "list", "tables"); strings.Contains(out, "wgnet-") {
				t.Errorf("%s: wgnet's table is in nftables too:\n%s", h.name, out)
			}
		}
	})
}
