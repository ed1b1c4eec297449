package up_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pingLossRE reads ping's summary.
var pingLossRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// tunnelServer is the server's tunnel address, which the syncs' pings go to.
var tunnelServer = netip.MustParseAddr("10.66.0.1")

// endpointViaDefault makes the client reach the server's endpoint through
// its default route, as a VPN server on the internet is reached: the server
// also answers as the client's gateway 198.18.0.254 and listens on
// 198.18.1.1, off the client's subnet. Then WireGuard's own UDP is kept out
// of the tunnel only by its fwmark. Call it before startServer.
func (l *tunnelLab) endpointViaDefault(t *testing.T) {
	t.Helper()
	l.server.Run(t, "ip", "addr", "add", "198.18.0.254/24", "dev", "eth0", "nodad")
	l.server.Run(t, "ip", "addr", "add", "198.18.1.1/32", "dev", "eth0", "nodad")
	conf, err := os.ReadFile(l.clientConf)
	if err != nil {
		t.Fatal(err)
	}
	writeConf(t, l.clientConf, strings.Replace(string(conf), "Endpoint = 198.18.0.1:51820", "Endpoint = 198.18.1.1:51820", 1))
	if via := l.client.Run(t, "ip", "route", "get", "198.18.1.1"); !strings.Contains(via, "via 198.18.0.254") {
		t.Fatalf("the endpoint is not reached through the default route: %s", via)
	}
}

// loopCounter counts, with nft, WireGuard's own UDP routed into the tunnel
// on its way out (the loop a fwmark that the rules do not expect makes), and
// returns the counter's reader.
func (l *tunnelLab) loopCounter(t *testing.T) func() int {
	t.Helper()
	loopRules := filepath.Join(t.TempDir(), "loop.nft")
	writeConf(t, loopRules, "table inet wgtloop {\n\tchain post {\n\t\ttype filter hook postrouting priority 0; policy accept;\n\t\toifname \""+l.clientIf+"\" udp dport 51820 counter\n\t}\n}\n")
	l.client.Run(t, "nft", "-f", loopRules)
	return func() int {
		t.Helper()
		m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(l.client.Run(t, "nft", "list", "table", "inet", "wgtloop"))
		if m == nil {
			t.Fatal("no loop counter")
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
}

// maxLost is how many of syncUnderPing's pings may be lost: the loop
// counter is the proof of the order; a ping or two late under load is not
// counted against it.
const maxLost = 2

// newPingedTunnel is the lab of the syncs under ping: the endpoint reached
// through the default route, WireGuard's UDP into the tunnel counted, the
// client's full tunnel brought up by wgnet and reaching the internet and the
// server's tunnel address. It returns the loop counter's reader, and
// tunnelDump before the tunnel (without the device) and with it.
func newPingedTunnel(t *testing.T) (l *tunnelLab, looped func() int, before, full string) {
	t.Helper()
	l = newTunnelLab(t)
	l.endpointViaDefault(t)
	l.startServer(t)
	notRootNetns(t, l.client)
	looped = l.loopCounter(t)
	before = l.tunnelDump(t, false)
	if out, err := l.wgnet(t, "up", l.clientConf); err != nil {
		t.Fatalf("wgnet up: %v\n%s", err, out)
	}
	full = l.tunnelDump(t, true)
	l.reach(t, "full tunnel")
	if err := ping(t, l.client, tunnelServer); err != nil {
		t.Fatalf("the client does not reach the server's tunnel address: %v", err)
	}
	return l, looped, before, full
}

// variant writes a copy of the client's config with old replaced by new,
// named after it with -what (sync takes the interface's name as an
// argument), and returns its path.
func (l *tunnelLab) variant(t *testing.T, what, old, new string) string {
	t.Helper()
	src, err := os.ReadFile(l.clientConf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), old) {
		t.Fatalf("the client's config has no %q", old)
	}
	path := strings.TrimSuffix(l.clientConf, ".conf") + "-" + what + ".conf"
	writeConf(t, path, strings.Replace(string(src), old, new, 1))
	return path
}

// syncUnderPing runs `wgnet sync` of conf while the client pings the server's
// tunnel address every millisecond, 2000 times, and returns the sync's
// output, the pings sent and answered, and the WireGuard packets looped into
// the tunnel (looped, from loopCounter) during it.
func (l *tunnelLab) syncUnderPing(t *testing.T, looped func() int, conf string) (out string, sent, got, loops int) {
	t.Helper()
	loopedBefore := looped()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := l.client.Command(ctx, "ping", "-i", "0.001", "-c", "2000", "-W", "1", tunnelServer.String())
	var pout strings.Builder
	p.Stdout, p.Stderr = &pout, &pout
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // pings before the sync
	out, err := l.wgnet(t, "sync", l.clientIf, conf)
	if err != nil {
		p.Process.Kill()
		p.Wait()
		t.Fatalf("wgnet sync %s: %v\n%s", conf, err, out)
	}
	p.Wait() // exits 1 when a reply is missing; the summary says how many
	m := pingLossRE.FindStringSubmatch(pout.String())
	if m == nil {
		t.Fatalf("ping: no summary:\n%s", pout.String())
	}
	sent, _ = strconv.Atoi(m[1])
	got, _ = strconv.Atoi(m[2])
	loops = looped() - loopedBefore
	t.Logf("sync to %s: %d of %d pings answered, %d WireGuard packets looped into the tunnel\n%s", filepath.Base(conf), got, sent, loops, out)
	return out, sent, got, loops
}

// TestFullTunnelSyncSplitAndBack: a wgnet full tunnel synced to a split
// tunnel (AllowedIPs the tunnel's subnets only) and back, with a ping to the
// server's tunnel address running all through each sync (its route goes from
// table 51820's default to main's 10.66.0.0/24 and back, through the tunnel
// both times). Here the server's endpoint is reached through the client's
// default route (the server also answers as its gateway 198.18.0.254 and
// listens on 198.18.1.1, off the client's subnet), as a VPN server on the
// internet is: then WireGuard's own UDP is kept out of the tunnel only by its
// fwmark, and a fwmark reset while `not fwmark 51820 lookup 51820` is still
// there sends it into the tunnel, a loop. Checked: no ping lost and no
// WireGuard packet routed into the tunnel during either sync, the internet
// reached through the tunnel before and after (and through the underlay
// while split), the full tunnel after the round trip the same as before it,
// and down restoring the namespace.
func TestFullTunnelSyncSplitAndBack(t *testing.T) {
	l, looped, before, full := newPingedTunnel(t)
	splitConf := l.variant(t, "split", "AllowedIPs = 0.0.0.0/0, ::/0", "AllowedIPs = 10.66.0.0/24, fd00:66::/64")
	syncUnderPing := func(conf string) (string, int, int) {
		t.Helper()
		out, sent, got, loops := l.syncUnderPing(t, looped, conf)
		return out, sent - got, loops
	}
	// The loop counter is the proof (with the rules removed after the fwmark
	// reset, as before, 136-1118 packets looped and 1-4 of 2000 pings were
	// lost in five runs).
	out, lost, loops := syncUnderPing(splitConf)
	for _, w := range []string{"- ip rule 32765: not from all fwmark 0xca6c lookup 51820", "- nft tables ip/ip6 wg-quick-" + l.clientIf, "fwmark 0xca6c -> 0x0"} {
		if !strings.Contains(out, w) {
			t.Errorf("the sync to split does not say %q", w)
		}
	}
	if lost > maxLost || loops != 0 {
		t.Errorf("full -> split: %d pings to the server's tunnel address lost and %d WireGuard packets looped into the tunnel during the sync", lost, loops)
	}
	split := l.tunnelDump(t, true)
	for _, gone := range []string{"fwmark 0xca6c", "table 51820", "wg-quick-" + l.clientIf} {
		if strings.Contains(split, gone) {
			t.Errorf("split tunnel still has %q:\n%s", gone, split)
		}
	}
	if via := l.client.Run(t, "ip", "route", "get", l.target4.String()); !strings.Contains(via, "via 198.18.0.254 dev eth0") {
		t.Errorf("split tunnel: the internet is not reached through the underlay: %s", via)
	}
	out, lost, loops = syncUnderPing(l.clientConf)
	if lost > maxLost || loops != 0 {
		t.Errorf("split -> full: %d pings to the server's tunnel address lost and %d WireGuard packets looped into the tunnel during the sync", lost, loops)
	}
	if !strings.Contains(out, "+ ip rule 32765: not from all fwmark 0xca6c lookup 51820") {
		t.Errorf("the sync back to full does not add the rule:\n%s", out)
	}
	l.reach(t, "full tunnel again")
	if again := l.tunnelDump(t, true); again != full {
		t.Errorf("the full tunnel after the round trip differs (- first, + again):\n%s", lineDiff(full, again))
	}
	l.downRestores(t, before, func() string { return l.tunnelDump(t, false) }, "down did not restore the namespace but for src_valid_mark")
}

// TestFullTunnelSyncFwMark: a wgnet full tunnel whose FwMark changes (from
// wg-quick's default 0xca6c, table 51820, to 0xca6d, table 51821, and back)
// while the client pings the server's tunnel address every millisecond, the
// server's endpoint reached through the default route (endpointViaDefault).
// While the rules name one mark and the device marks its UDP with the other,
// WireGuard's own packets match `not fwmark OLD` and go into the tunnel (a
// loop); the sync bridges the change with `fwmark NEW lookup main` from
// before the device's mark changes until the old rules are gone. Checked:
// no WireGuard packet looped and no ping lost during either sync; the rules,
// the table's route, the nft tables' mark and the device's mark all the new
// ones after each, the bridge gone; the internet reached; the tunnel after
// the round trip the same as before it but for the rules' priorities; down
// restoring the namespace.
func TestFullTunnelSyncFwMark(t *testing.T) {
	l, looped, before, full := newPingedTunnel(t)
	bridgeRE := regexp.MustCompile(`from all fwmark 0x[0-9a-f]+ lookup main`)
	for _, c := range []struct {
		what          string
		old, new      string
		table, former string
	}{
		{"mark-ca6d", "0xca6c", "0xca6d", "51821", "51820"},
		{"mark-ca6c", "0xca6d", "0xca6c", "51820", "51821"},
	} {
		conf := l.variant(t, c.what, "[Interface]\n", "[Interface]\nFwMark = "+c.new+"\n")
		out, sent, got, loops := l.syncUnderPing(t, looped, conf)
		for _, w := range []string{"fwmark " + c.old + " -> " + c.new, "not from all fwmark " + c.new + " lookup " + c.table,
			"from all fwmark " + c.new + " lookup main (while the fwmark changes)"} {
			if !strings.Contains(out, w) {
				t.Errorf("the sync to fwmark %s does not say %q:\n%s", c.new, w, out)
			}
		}
		if sent-got > maxLost || loops != 0 {
			t.Errorf("fwmark %s -> %s: %d of %d pings to the server's tunnel address lost and %d WireGuard packets looped into the tunnel during the sync",
				c.old, c.new, sent-got, sent, loops)
		}
		now := l.tunnelDump(t, true)
		for _, w := range []string{"not from all fwmark " + c.new + " lookup " + c.table, "default dev " + l.clientIf + " table " + c.table,
			fmt.Sprintf("meta mark 0x%08x", mustHex(t, c.new)), "$ wg show " + l.clientIf + " fwmark\n" + c.new} {
			if !strings.Contains(now, w) {
				t.Errorf("after the sync to fwmark %s, no %q:\n%s", c.new, w, now)
			}
		}
		for _, gone := range []string{"fwmark " + c.old, fmt.Sprintf("meta mark 0x%08x", mustHex(t, c.old)), "lookup " + c.former, "table " + c.former} {
			if strings.Contains(now, gone) {
				t.Errorf("after the sync to fwmark %s, %q is left:\n%s", c.new, gone, now)
			}
		}
		if b := bridgeRE.FindString(now); b != "" {
			t.Errorf("after the sync to fwmark %s, the bridge rule %q is left", c.new, b)
		}
		l.reach(t, "fwmark "+c.new)
	}
	if again, first := rulePrioritiesOut(l.tunnelDump(t, true)), rulePrioritiesOut(full); again != first {
		t.Errorf("the full tunnel after the round trip differs but for rule priorities (- first, + again):\n%s", lineDiff(first, again))
	}
	l.downRestores(t, before, func() string { return l.tunnelDump(t, false) }, "down did not restore the namespace but for src_valid_mark")
}

// rulePriorityRE is a rule's priority as `ip rule` starts its line.
var rulePriorityRE = regexp.MustCompile(`(?m)^[0-9]+:`)

// rulePrioritiesOut is a tunnelDump with every rule's priority taken out,
// its lines sorted again: each change of the tunnel's rules adds the new ones
// before the others, as `ip rule add` without a priority does.
func rulePrioritiesOut(dump string) string {
	lines := strings.Split(rulePriorityRE.ReplaceAllString(dump, "P:"), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// mustHex reads a 0x-prefixed number.
func mustHex(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFullTunnelForeignRemoval: a wgnet full tunnel removed by another tool
// (`ip link del`, which leaves the rules and the firewall behind; `wg-quick
// down` of the same file, which removes most of it itself), with nftables
// and with the iptables fallback: the next `wgnet up` finds the record of an
// interface that is gone, removes what is left, and brings up the same full
// tunnel as the first time (no rule twice, no second table); down then
// restores the namespace.
func TestFullTunnelForeignRemoval(t *testing.T) {
	l := newTunnelLab(t)
	l.startServer(t)
	notRootNetns(t, l.client)
	touchIptables(t, l.client)
	dump := func() string { return l.tunnelDump(t, true) + iptablesDump(t, l.client) }
	before := l.tunnelDump(t, false) + iptablesDump(t, l.client)
	for _, c := range []struct{ how, backend string }{
		{"ip link del", "nftables"}, {"ip link del", "iptables"}, {"wg-quick down", "nftables"},
	} {
		t.Run(strings.ReplaceAll(c.how, " ", "-")+"/"+c.backend, func(t *testing.T) {
			up := func() string {
				t.Helper()
				notRootNetns(t, l.client)
				out, err := l.client.Try("env", "WGNET_TUNNEL_FIREWALL="+c.backend, "WGNET_STATE_DIR="+l.stateDir, wgnet(t), "up", l.clientConf)
				if err != nil {
					t.Fatalf("wgnet up: %v\n%s", err, out)
				}
				return out
			}
			up()
			first := dump()
			l.reach(t, "first up")
			if c.how == "ip link del" {
				l.client.Run(t, "ip", "link", "del", l.clientIf)
				left := l.tunnelDump(t, false) + iptablesDump(t, l.client)
				for _, w := range []string{"not from all fwmark 0xca6c lookup 51820", "from all lookup main suppress_prefixlength 0", "wg-quick(8) rule for " + l.clientIf} {
					if c.backend == "nftables" && strings.HasPrefix(w, "wg-quick(8)") {
						w = "table ip wg-quick-" + l.clientIf
					}
					if !strings.Contains(left, w) {
						t.Errorf("after ip link del, %q is not left behind (nothing to clean):\n%s", w, left)
					}
				}
			} else if out, err := l.client.Try("wg-quick", "down", l.clientConf); err != nil {
				t.Fatalf("wg-quick down: %v\n%s", err, out)
			}
			out := up()
			if !strings.Contains(out, "is gone but its record") {
				t.Errorf("up does not say it cleans up after the interface removed by %s:\n%s", c.how, out)
			}
			t.Logf("wgnet up after %s:\n%s", c.how, out)
			if again := dump(); again != first {
				t.Errorf("the full tunnel after %s and up differs from the first (- first, + again):\n%s", c.how, lineDiff(first, again))
			}
			l.reach(t, "up after "+c.how)
			l.downRestores(t, before, func() string { return l.tunnelDump(t, false) + iptablesDump(t, l.client) }, "down did not restore the namespace but for src_valid_mark")
		})
	}
}

// TestFullTunnelRollbackNetns: a split tunnel made full by `sync --confirm`
// with the iptables fallback, then rolled back (`wgnet confirm --rollback`,
// what the timer does at the deadline): the rules, the fwmark, table 51820
// and the iptables rules go, the split tunnel is as it was, and
// src_valid_mark stays 1, as down leaves it, which the rollback says.
func TestFullTunnelRollbackNetns(t *testing.T) {
	l := newTunnelLab(t)
	l.startServer(t)
	notRootNetns(t, l.client)
	touchIptables(t, l.client)
	src, err := os.ReadFile(l.clientConf)
	if err != nil {
		t.Fatal(err)
	}
	// The same name in another directory: up names the interface after the file.
	splitConf := filepath.Join(t.TempDir(), filepath.Base(l.clientConf))
	writeConf(t, splitConf, strings.Replace(string(src), "AllowedIPs = 0.0.0.0/0, ::/0", "AllowedIPs = 10.66.0.0/24, fd00:66::/64", 1))
	ipt := func(args ...string) (string, error) {
		return l.client.Try(append([]string{"env", "WGNET_TUNNEL_FIREWALL=iptables", "WGNET_STATE_DIR=" + l.stateDir, wgnet(t)}, args...)...)
	}
	if out, err := ipt("up", splitConf); err != nil {
		t.Fatalf("wgnet up (split): %v\n%s", err, out)
	}
	split := l.tunnelDump(t, true) + iptablesDump(t, l.client)
	notRootNetns(t, l.client)
	if out, err := ipt("sync", l.clientIf, l.clientConf, "--confirm", "2m"); err != nil {
		t.Fatalf("wgnet sync --confirm: %v\n%s", err, out)
	}
	full := l.tunnelDump(t, true) + iptablesDump(t, l.client)
	for _, w := range []string{"not from all fwmark 0xca6c lookup 51820", "src_valid_mark = 1", `--comment "wg-quick(8) rule for ` + l.clientIf + `" -j CONNMARK --save-mark`} {
		if !strings.Contains(full, w) {
			t.Errorf("the pending full tunnel lacks %q:\n%s", w, full)
		}
	}
	l.reach(t, "pending full tunnel")
	out, err := ipt("confirm", l.clientIf, "--rollback")
	if err != nil {
		t.Fatalf("wgnet confirm --rollback: %v\n%s", err, out)
	}
	t.Logf("rollback:\n%s", out)
	if !strings.Contains(out, "net.ipv4.conf.all.src_valid_mark=1 stays set (it was 0)") {
		t.Errorf("the rollback does not say src_valid_mark stays set:\n%s", out)
	}
	back := l.tunnelDump(t, true) + iptablesDump(t, l.client)
	if want := leftByDown(split); back != want {
		t.Errorf("after the rollback (- split but src_valid_mark, + now):\n%s", lineDiff(want, back))
	}
	// The record the rollback put back remembers src_valid_mark, as up's does.
	out, err = l.wgnet(t, "down", l.clientIf)
	if err != nil {
		t.Fatalf("wgnet down: %v\n%s", err, out)
	}
	if !strings.Contains(out, "net.ipv4.conf.all.src_valid_mark=1 stays set (it was 0)") {
		t.Errorf("down after the rollback does not say src_valid_mark stays set:\n%s", out)
	}
}
