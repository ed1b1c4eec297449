package hostnet_test

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/hostnet/hostnettest"
	"github.com/wgnet/wgnet/internal/netnstest"
)

// TestLinuxTunnelIptablesConformance: the tunnel firewall written with
// iptables-restore (TunnelBackend iptables) passes the same conformance as the
// nftables one.
func TestLinuxTunnelIptablesConformance(t *testing.T) {
	netnstest.NeedsTool(t, "iptables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	if !netnstest.InNetns(t) {
		return
	}
	runIptablesConformance(t)
}

func runIptablesConformance(t *testing.T) {
	hostnettest.RunTunnel(t, func(t *testing.T) (hostnet.HostNet, string) {
		return &hostnet.Linux{TunnelBackend: hostnet.TunnelIptables}, newVeth(t)
	})
}

// newVeth makes a veth pair in the test's namespace, deleted at cleanup, and
// returns the name of its first end (the peer stays down).
func newVeth(t *testing.T) string {
	t.Helper()
	name := "wgt" + netnstest.Unique(6)
	if out, err := exec.Command("ip", "link", "add", name, "type", "veth", "peer", "name", name+"p").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	return name
}

// TestLinuxTunnelIptablesLegacyConformance: the same with iptables-legacy
// first in PATH (Debian's iptables is iptables-nft; a host without nf_tables
// has legacy): its iptables-save prints the rules the same way, and the
// tables are found through /proc/net/ip_tables_names.
func TestLinuxTunnelIptablesLegacyConformance(t *testing.T) {
	netnstest.NeedsTool(t, "iptables-legacy", "iptables-legacy-restore", "ip6tables-legacy-restore", "iptables-legacy-save", "ip6tables-legacy-save")
	netnstest.IptablesLegacyFirst(t)
	if !netnstest.InNetns(t) {
		return
	}
	runIptablesConformance(t)
}

// TestLinuxTunnelBackendSwitch: an apply in one backend replaces the tables
// of the other; a read names where the rules are; a delete clears both, as
// wg-quick's down does; the iptables rules are wg-quick's, as iptables-save
// prints them.
func TestLinuxTunnelBackendSwitch(t *testing.T) {
	netnstest.NeedsTool(t, "iptables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	if !netnstest.InNetns(t) {
		return
	}
	name := newVeth(t)
	nft, ipt := &hostnet.Linux{TunnelBackend: hostnet.TunnelNftables}, &hostnet.Linux{TunnelBackend: hostnet.TunnelIptables}
	table := hostnet.TunnelTablePrefix + name
	tf := hostnet.TunnelFirewall{Table: table, V4: true, V6: true, Iface: name, Mark: 51820,
		Addrs: []netip.Addr{netip.MustParseAddr("10.66.0.2"), netip.MustParseAddr("10.66.0.3"), netip.MustParseAddr("fd00:66::2")}}
	nftTables := func() string {
		out, _ := exec.Command("nft", "list", "tables").CombinedOutput()
		return string(out)
	}
	for _, step := range []struct {
		h       *hostnet.Linux
		backend string
	}{{nft, hostnet.TunnelNftables}, {ipt, hostnet.TunnelIptables}, {nft, hostnet.TunnelNftables}, {ipt, hostnet.TunnelIptables}} {
		if err := step.h.ApplyTunnelFirewall(tf); err != nil {
			t.Fatal(err)
		}
		got, err := nft.TunnelFirewall(table)
		if err != nil {
			t.Fatal(err)
		}
		if got.Backend != step.backend || !got.Equal(tf) {
			t.Errorf("applied with %s: read back %+v", step.backend, got)
		}
		rules, tables := iptablesRules(t), nftTables()
		if inNft := strings.Contains(tables, table); inNft != (step.backend == hostnet.TunnelNftables) {
			t.Errorf("applied with %s: nft tables:\n%s", step.backend, tables)
		}
		if inIpt := strings.Contains(rules, hostnet.IptablesComment(table)); inIpt != (step.backend == hostnet.TunnelIptables) {
			t.Errorf("applied with %s: iptables rules:\n%s", step.backend, rules)
		}
	}
	rules := iptablesRules(t)
	t.Logf("iptables rules:\n%s", rules)
	c := `-m comment --comment "wg-quick(8) rule for ` + name + `"`
	for _, w := range []string{
		"iptables-save: -A PREROUTING -d 10.66.0.2/32 ! -i " + name + " -m addrtype ! --src-type LOCAL " + c + " -j DROP",
		"iptables-save: -A PREROUTING -d 10.66.0.3/32 ! -i " + name + " -m addrtype ! --src-type LOCAL " + c + " -j DROP",
		"ip6tables-save: -A PREROUTING -d fd00:66::2/128 ! -i " + name + " -m addrtype ! --src-type LOCAL " + c + " -j DROP",
		"iptables-save: -A POSTROUTING -p udp -m mark --mark 0xca6c " + c + " -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff",
		"ip6tables-save: -A PREROUTING -p udp " + c + " -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff",
	} {
		if !strings.Contains(rules, w+"\n") {
			t.Errorf("iptables lacks %q", w)
		}
	}
	// A rule with the comment that is not wgnet's is never taken for one.
	foreign := []string{"-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "-m", "comment", "--comment", hostnet.IptablesComment(table), "-j", "ACCEPT"}
	if out, err := exec.Command("iptables", foreign...).CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	if got, err := ipt.TunnelFirewall(table); err == nil || !strings.Contains(err.Error(), "did not write") {
		t.Errorf("with a foreign rule: %+v, %v", got, err)
	}
	foreign[2] = "-D"
	exec.Command("iptables", foreign...).Run()
	if err := nft.DeleteTunnelFirewall(table); err != nil {
		t.Fatal(err)
	}
	if rules := iptablesRules(t); strings.Contains(rules, hostnet.IptablesComment(table)) {
		t.Errorf("delete (auto backend) left iptables rules:\n%s", rules)
	}
}

// TestTunnelBackendSetting: the setting is checked; a forced one is taken as
// it is.
func TestTunnelBackendSetting(t *testing.T) {
	if _, err := (&hostnet.Linux{TunnelBackend: "xtables"}).TunnelFirewallBackend(); err == nil || !strings.Contains(err.Error(), `WGNET_TUNNEL_FIREWALL: tunnel firewall backend "xtables": want auto, nftables or iptables`) {
		t.Errorf("a bad setting: %v", err)
	}
	for _, b := range []string{hostnet.TunnelNftables, hostnet.TunnelIptables} {
		if got, err := (&hostnet.Linux{TunnelBackend: b}).TunnelFirewallBackend(); err != nil || got != b {
			t.Errorf("forced %s: %q, %v", b, got, err)
		}
	}
	t.Setenv(hostnet.TunnelBackendEnv, "iptables")
	if got := hostnet.New().TunnelBackend; got != "iptables" {
		t.Errorf("New with %s=iptables: %q", hostnet.TunnelBackendEnv, got)
	}
}
