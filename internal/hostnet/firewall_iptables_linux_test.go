package hostnet_test

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/hostnet/hostnettest"
	"github.com/wgnet/wgnet/internal/netnstest"
)

// TestLinuxFirewallIptablesConformance: wgnet's own table written with
// iptables-restore (TableBackend iptables) passes the whole conformance
// test, firewall and filter cases included, as the nftables one does.
func TestLinuxFirewallIptablesConformance(t *testing.T) {
	netnstest.NeedsTool(t, "iptables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	if !netnstest.InNetns(t) {
		return
	}
	runFirewallIptablesConformance(t)
}

// TestLinuxFirewallIptablesLegacyConformance: the same with iptables-legacy
// first in PATH.
func TestLinuxFirewallIptablesLegacyConformance(t *testing.T) {
	netnstest.NeedsTool(t, "iptables-legacy", "iptables-legacy-restore", "ip6tables-legacy-restore", "iptables-legacy-save", "ip6tables-legacy-save")
	netnstest.IptablesLegacyFirst(t)
	if !netnstest.InNetns(t) {
		return
	}
	runFirewallIptablesConformance(t)
}

func runFirewallIptablesConformance(t *testing.T) {
	hostnettest.Run(t, func(t *testing.T) (hostnet.HostNet, string) {
		return &hostnet.Linux{TableBackend: hostnet.TunnelIptables}, newVeth(t)
	})
}

// TestLinuxFirewallBackendSwitch: an apply in one backend removes the table
// from the other; applying the same table again leaves iptables-save as it
// was (one jump per built-in chain of mangle, at the top); a rule in wgnet's chains
// that it did not write makes the read fail; DeleteFirewall (auto) removes
// it from both, leaving iptables as before.
func TestLinuxFirewallBackendSwitch(t *testing.T) {
	netnstest.NeedsTool(t, "iptables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	netnstest.NeedsTool(t, "nftables", "nft")
	if !netnstest.InNetns(t) {
		return
	}
	name := newVeth(t)
	// A rule of the host's own at the top of mangle FORWARD: wgnet's jump goes
	// above it.
	if out, err := exec.Command("iptables", "-t", "mangle", "-I", "FORWARD", "-i", "eth9", "-j", "ACCEPT").CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	before := iptablesRules(t)
	nft, ipt := &hostnet.Linux{TableBackend: hostnet.TunnelNftables}, &hostnet.Linux{TableBackend: hostnet.TunnelIptables}
	table := "wgnet-" + name
	fw := hostnettest.FilterCases(table, name)[1]
	nftHas := func() bool {
		out, _ := exec.Command("nft", "list", "tables").CombinedOutput()
		return strings.Contains(string(out), "inet "+table+"\n")
	}
	var once string
	for i, h := range []*hostnet.Linux{nft, ipt, ipt, nft, ipt} {
		if err := h.ApplyFirewall(fw); err != nil {
			t.Fatal(err)
		}
		got, err := h.Firewall(table)
		if err != nil || !got.Filter.Equal(fw.Filter) || !slices.Equal(got.ClampMSS, fw.ClampMSS) || !slices.Equal(got.DropRedirects, fw.DropRedirects) {
			t.Errorf("step %d (%s): read back %+v, %v", i, h.TableBackend, got, err)
		}
		rules := iptablesRules(t)
		if inIpt := strings.Contains(rules, table); inIpt != (h == ipt) || nftHas() != (h == nft) {
			t.Errorf("step %d (%s): nft has it %v; iptables:\n%s", i, h.TableBackend, nftHas(), rules)
		}
		if h == ipt && once == "" {
			once = rules
		} else if h == ipt && rules != once {
			t.Errorf("step %d: applied again, iptables differs:\n%s\nwas:\n%s", i, rules, once)
		}
	}
	if !strings.Contains(once, "iptables-save: -A FORWARD -m comment --comment "+table+" -j "+table+"-fwd\niptables-save: -A FORWARD -i eth9 -j ACCEPT\n") {
		t.Errorf("wgnet's jump is not at the top of FORWARD:\n%s", once)
	}
	// A rule with more ports than one multiport match takes: two groups.
	var ports []hostnet.PortRange
	for p := uint16(1000); p < 1030; p += 2 {
		ports = append(ports, hostnet.PortRange{From: p, To: p})
	}
	ports = append(ports, hostnet.PortRange{From: 2000, To: 2100})
	many := hostnet.Firewall{Table: table, Filter: &hostnet.Filter{Iface: name, Rules: []hostnet.FilterRule{{Proto: "tcp", Ports: ports, Accept: true}}}}
	if err := ipt.ApplyFirewall(many); err != nil {
		t.Fatal(err)
	}
	if got, err := ipt.Firewall(table); err != nil || !got.Filter.Equal(many.Filter) {
		t.Errorf("17 ports: read back %+v, %v", got.Filter, err)
	}
	if n := strings.Count(iptablesRules(t), "-m multiport --dports"); n != 2 {
		t.Errorf("17 ports: %d multiport rules, want 2", n)
	}
	foreign := []string{"-t", "mangle", "-A", table + "-pol", "-p", "tcp", "-j", "ACCEPT"}
	if out, err := exec.Command("iptables", foreign...).CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	if got, err := ipt.Firewall(table); err == nil || !strings.Contains(err.Error(), "did not write") {
		t.Errorf("with a foreign rule: %+v, %v", got, err)
	}
	if err := (&hostnet.Linux{}).DeleteFirewall(table); err != nil {
		t.Fatal(err)
	}
	if after := iptablesRules(t); after != before || nftHas() {
		t.Errorf("after DeleteFirewall, iptables:\n%s\nbefore:\n%s", after, before)
	}
	if err := (&hostnet.Linux{}).DeleteFirewall(table); !errors.Is(err, hostnet.ErrNotFound) {
		t.Errorf("deleting again: %v", err)
	}
}

// TestFirewallBackendSetting: the setting is checked and named.
func TestFirewallBackendSetting(t *testing.T) {
	if _, err := (&hostnet.Linux{TableBackend: "xtables"}).FirewallBackend(); err == nil || !strings.Contains(err.Error(), `WGNET_FIREWALL: firewall backend "xtables": want auto, nftables or iptables`) {
		t.Errorf("a bad setting: %v", err)
	}
	if err := (&hostnet.Linux{TableBackend: "xtables"}).ApplyFirewall(hostnet.Firewall{Table: "wgnet-x"}); err == nil || !strings.Contains(err.Error(), "WGNET_FIREWALL") {
		t.Errorf("ApplyFirewall with a bad setting: %v", err)
	}
	t.Setenv(hostnet.FirewallBackendEnv, "iptables")
	if got := hostnet.New().TableBackend; got != "iptables" {
		t.Errorf("New with %s=iptables: %q", hostnet.FirewallBackendEnv, got)
	}
}
