package up_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/netnstest"
)

// pathWithout returns a PATH holding every program of the test's PATH but
// those named: a directory of symlinks, so that `type -p nft` in wg-quick
// finds nothing.
func pathWithout(t *testing.T, hide ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if slices.Contains(hide, e.Name()) || e.IsDir() {
				continue
			}
			link := filepath.Join(dir, e.Name())
			if _, err := os.Lstat(link); err == nil {
				continue // an earlier PATH entry wins, as in a lookup
			}
			if err := os.Symlink(filepath.Join(d, e.Name()), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, h := range hide {
		if _, err := os.Stat(filepath.Join(dir, h)); err == nil {
			t.Fatalf("%s still in %s", h, dir)
		}
	}
	return dir
}

// iptCountersRE is a chain's counters in iptables-save.
var iptCountersRE = regexp.MustCompile(`\[[0-9]+:[0-9]+\]`)

// iptablesDump is the raw and mangle tables of both families as
// iptables-save prints them, counters and comment lines left out, each
// table's lines sorted (compared as sets).
func iptablesDump(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	return iptablesDumpTables(t, ns, "raw", "mangle")
}

// iptablesDumpTables is iptablesDump of the tables named.
func iptablesDumpTables(t *testing.T, ns *netnstest.NS, tables ...string) string {
	t.Helper()
	var b strings.Builder
	for _, prog := range []string{"iptables-save", "ip6tables-save"} {
		for _, table := range tables {
			out, err := ns.Try(prog, "-t", table)
			if err != nil {
				t.Fatalf("%s -t %s: %v\n%s", prog, table, err, out)
			}
			var lines []string
			for _, l := range strings.Split(out, "\n") {
				if l == "" || strings.HasPrefix(l, "#") {
					continue
				}
				lines = append(lines, linkLocalRE.ReplaceAllString(iptCountersRE.ReplaceAllString(l, "[N:N]"), "fe80::LL"))
			}
			slices.Sort(lines)
			b.WriteString("$ " + prog + " -t " + table + "\n" + strings.Join(lines, "\n") + "\n")
		}
	}
	return b.String()
}

// touchIptables makes the raw and mangle tables and chains the tunnel's rules
// go in, with an ACCEPT added and deleted in each: iptables (either backend)
// leaves a table and its built-in chains once made, with wg-quick's rules as
// with wgnet's, so that "as before" is about the rules the tools write.
func touchIptables(t *testing.T, ns *netnstest.NS) {
	t.Helper()
	touchIptablesChains(t, ns, [][2]string{{"raw", "PREROUTING"}, {"mangle", "PREROUTING"}, {"mangle", "POSTROUTING"}})
}

// touchIptablesChains is touchIptables of the tables and chains given.
func touchIptablesChains(t *testing.T, ns *netnstest.NS, chains [][2]string) {
	t.Helper()
	for _, prog := range []string{"iptables", "ip6tables"} {
		for _, tc := range chains {
			for _, op := range []string{"-A", "-D"} {
				ns.Run(t, prog, "-t", tc[0], op, tc[1], "-j", "ACCEPT")
			}
		}
	}
}

// TestFullTunnelIptablesSameAsWgQuick: the full-tunnel client brought up by the
// stock wg-quick with nft hidden from its PATH (so it writes its raw and
// mangle rules with iptables-restore) and by wgnet with
// WGNET_TUNNEL_FIREWALL=iptables, in turn, in the same namespace: the same
// iptables and ip6tables raw and mangle tables, rules, routes, sysctls, the
// same nft ruleset (iptables here is iptables-nft), the internet reached both
// times; wgnet's down (in the default, auto mode: it clears both backends)
// leaves the namespace as before but for src_valid_mark, and as wg-quick's
// down does.
func TestFullTunnelIptablesSameAsWgQuick(t *testing.T) {
	netnstest.NeedsTool(t, "iptables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	l := newTunnelLab(t)
	l.startServer(t)
	noNft := "PATH=" + pathWithout(t, "nft")
	touchIptables(t, l.client)
	dump := func() string { return l.tunnelDump(t, true) + iptablesDump(t, l.client) }
	dumpDown := func() string { return l.tunnelDump(t, false) + iptablesDump(t, l.client) }
	notRootNetns(t, l.client)
	before := dumpDown()
	if !strings.Contains(before, "src_valid_mark = 0") {
		t.Fatalf("src_valid_mark is already on:\n%s", before)
	}
	if !noPing(l.client, l.target4) {
		t.Fatal("the client reaches the internet without a tunnel")
	}
	// A setting wgnet does not know is refused before anything is touched.
	if out, err := l.client.Try("env", "WGNET_TUNNEL_FIREWALL=xtables", "WGNET_STATE_DIR="+l.stateDir, wgnet(t), "up", l.clientConf); err == nil ||
		!strings.Contains(out, `WGNET_TUNNEL_FIREWALL: tunnel firewall backend "xtables": want auto, nftables or iptables`) {
		t.Errorf("wgnet up with WGNET_TUNNEL_FIREWALL=xtables: %v\n%s", err, out)
	} else if now := dumpDown(); now != before {
		t.Errorf("the refused up changed the namespace (- before, + after):\n%s", lineDiff(before, now))
	}
	if out, err := l.client.Try("env", noNft, "wg-quick", "up", l.clientConf); err != nil {
		t.Fatalf("wg-quick up: %v\n%s", err, out)
	} else if !strings.Contains(out, "iptables-restore -n") || strings.Contains(out, "nft -f") {
		t.Fatalf("wg-quick did not fall back to iptables-restore:\n%s", out)
	}
	quick := dump()
	l.reach(t, "wg-quick (iptables)")
	if out, err := l.client.Try("env", noNft, "wg-quick", "down", l.clientConf); err != nil {
		t.Fatalf("wg-quick down: %v\n%s", err, out)
	}
	afterQuick := dumpDown()

	l.client.Sysctl(t, "net.ipv4.conf.all.src_valid_mark", "0")
	notRootNetns(t, l.client)
	out, err := l.client.Try("env", "WGNET_TUNNEL_FIREWALL=iptables", "WGNET_STATE_DIR="+l.stateDir, wgnet(t), "up", l.clientConf)
	if err != nil {
		t.Fatalf("wgnet up: %v\n%s", err, out)
	}
	t.Logf("wgnet up:\n%s", out)
	ours := dump()
	l.reach(t, "wgnet (iptables)")
	if ours != quick {
		t.Errorf("wgnet and wg-quick disagree (- wg-quick, + wgnet):\n%s\n\nwg-quick:\n%s", lineDiff(quick, ours), quick)
	}
	for _, w := range []string{`-A PREROUTING -d 10.66.0.2/32 ! -i ` + l.clientIf + ` -m addrtype ! --src-type LOCAL -m comment --comment "wg-quick(8) rule for ` + l.clientIf + `" -j DROP`,
		`-A POSTROUTING -p udp -m mark --mark 0xca6c -m comment --comment "wg-quick(8) rule for ` + l.clientIf + `" -j CONNMARK --save-mark`,
		"not from all fwmark 0xca6c lookup 51820", "src_valid_mark = 1"} {
		if !strings.Contains(ours, w) {
			t.Errorf("wgnet's full tunnel lacks %q:\n%s", w, ours)
		}
	}
	if strings.Contains(ours, "wg-quick-"+l.clientIf) {
		t.Errorf("wgnet in iptables mode wrote nftables tables of its own:\n%s", ours)
	}
	out, err = l.wgnet(t, "down", l.clientIf)
	if err != nil {
		t.Fatalf("wgnet down: %v\n%s", err, out)
	}
	t.Logf("wgnet down:\n%s", out)
	afterOurs := dumpDown()
	if afterOurs != afterQuick {
		t.Errorf("after down, wgnet and wg-quick leave different namespaces (- wg-quick, + wgnet):\n%s", lineDiff(afterQuick, afterOurs))
	}
	want := leftByDown(before)
	if afterOurs != want {
		t.Errorf("wgnet down did not restore the namespace but for src_valid_mark (- before, + after):\n%s", lineDiff(want, afterOurs))
	}
}

// TestFullTunnelAdoptIptablesFromWgQuick: a full tunnel the stock wg-quick
// brought up without nft (its rules in iptables) is adopted by `wgnet sync`
// of the same file, in the default (auto) mode, with nothing to change: the
// rules stay in iptables; `wgnet down` then removes all of it.
func TestFullTunnelAdoptIptablesFromWgQuick(t *testing.T) {
	netnstest.NeedsTool(t, "iptables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	l := newTunnelLab(t)
	l.startServer(t)
	touchIptables(t, l.client)
	notRootNetns(t, l.client)
	before := l.tunnelDump(t, false) + iptablesDump(t, l.client)
	if out, err := l.client.Try("env", "PATH="+pathWithout(t, "nft"), "wg-quick", "up", l.clientConf); err != nil {
		t.Fatalf("wg-quick up: %v\n%s", err, out)
	}
	quick := l.tunnelDump(t, true) + iptablesDump(t, l.client)
	out, err := l.wgnet(t, "sync", l.clientIf, l.clientConf)
	if err != nil {
		t.Fatalf("wgnet sync: %v\n%s", err, out)
	}
	t.Logf("wgnet sync:\n%s", out)
	if !strings.Contains(out, "already matches the config") {
		t.Errorf("sync of wg-quick's full tunnel with iptables rules changes something:\n%s", out)
	}
	if now := l.tunnelDump(t, true) + iptablesDump(t, l.client); now != quick {
		t.Errorf("the adopting sync changed the namespace (- wg-quick, + after sync):\n%s", lineDiff(quick, now))
	}
	l.reach(t, "adopted")
	l.downRestores(t, before, func() string { return l.tunnelDump(t, false) + iptablesDump(t, l.client) }, "wgnet down of the adopted full tunnel left")
}
