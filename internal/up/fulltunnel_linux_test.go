package up_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// The full-tunnel tests build, out of network namespaces only:
//
//	client ──veth 198.18.0.0/24── server ──veth 198.19.0.0/24── internet
//
// The server runs the stock wg-quick (on Debian's wireguard-go) with a config as
// wg-quick tutorials write it: forwarding on, MASQUERADE out of its uplink with
// iptables. The client's only other way out is a default route to a gateway
// that does not exist, so that what reaches the internet namespace went through
// the tunnel. The client's rp_filter is strict, as src_valid_mark and the
// conntrack mark restore are what let the encrypted replies in.

// linkIndexRE is the link index `ip addr` starts a link's line with: the two
// tools' interfaces are made one after the other.
var linkIndexRE = regexp.MustCompile(`^[0-9]+: `)

// nftCounterRE is a rule's packet counter in `nft list ruleset` (iptables-nft
// counts every rule).
var nftCounterRE = regexp.MustCompile(`counter packets [0-9]+ bytes [0-9]+`)

type tunnelLab struct {
	client, server, inet *netnstest.NS
	dir, stateDir        string
	clientIf, serverIf   string
	clientConf           string
	serverConf           string
	target4, target6     netip.Addr
	// the keys: the server's private and the client's public, for other
	// server configs.
	serverPriv, clientPub string
}

func newTunnelLab(t *testing.T) *tunnelLab {
	requireWgQuick(t)
	netnstest.NeedsTool(t, "iptables", "iptables", "ip6tables")
	l := &tunnelLab{
		client: netnstest.New(t, "ftc"), server: netnstest.New(t, "fts"), inet: netnstest.New(t, "fti"),
		dir: t.TempDir(), stateDir: t.TempDir(),
		// UAPI sockets share /var/run/wireguard across namespaces: unique names.
		clientIf: "wgc" + netnstest.Unique(6), serverIf: "wgs" + netnstest.Unique(6),
		target4: netip.MustParseAddr("198.19.0.10"), target6: netip.MustParseAddr("fd00:19::10"),
	}
	netnstest.Veth(t, l.client, "eth0", l.server, "eth0")
	netnstest.Veth(t, l.server, "eth1", l.inet, "eth0")
	for _, c := range []struct {
		ns    *netnstest.NS
		dev   string
		addrs []string
	}{
		{l.client, "eth0", []string{"198.18.0.2/24", "fd00:18::2/64"}},
		{l.server, "eth0", []string{"198.18.0.1/24", "fd00:18::1/64"}},
		{l.server, "eth1", []string{"198.19.0.1/24", "fd00:19::1/64"}},
		{l.inet, "eth0", []string{"198.19.0.10/24", "fd00:19::10/64"}},
	} {
		for _, a := range c.addrs {
			c.ns.Run(t, "ip", "addr", "add", a, "dev", c.dev, "nodad")
		}
	}
	// The client's own default routes lead nowhere; the internet's lead back
	// to the server (only its masqueraded address needs them, but a real
	// internet routes everything).
	l.client.Run(t, "ip", "route", "add", "default", "via", "198.18.0.254")
	l.client.Run(t, "ip", "-6", "route", "add", "default", "via", "fd00:18::254")
	l.inet.Run(t, "ip", "route", "add", "default", "via", "198.19.0.1")
	l.inet.Run(t, "ip", "-6", "route", "add", "default", "via", "fd00:19::1")
	for _, k := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter", "net.ipv4.conf.eth0.rp_filter"} {
		l.client.Sysctl(t, k, "1")
	}
	cpriv, cpub := genKey(t)
	spriv, spub := genKey(t)
	server := fmt.Sprintf(`[Interface]
Address = 10.66.0.1/24, fd00:66::1/64
ListenPort = 51820
PrivateKey = %s
PostUp = sysctl -w net.ipv4.ip_forward=1; sysctl -w net.ipv6.conf.all.forwarding=1
PostUp = iptables -t nat -A POSTROUTING -o eth1 -j MASQUERADE; ip6tables -t nat -A POSTROUTING -o eth1 -j MASQUERADE
PostDown = iptables -t nat -D POSTROUTING -o eth1 -j MASQUERADE; ip6tables -t nat -D POSTROUTING -o eth1 -j MASQUERADE

[Peer]
PublicKey = %s
AllowedIPs = 10.66.0.2/32, fd00:66::2/128
`, spriv, cpub)
	client := fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = 10.66.0.2/32, fd00:66::2/128

[Peer]
PublicKey = %s
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = 198.18.0.1:51820
PersistentKeepalive = 25
`, cpriv, spub)
	l.serverConf = filepath.Join(l.dir, l.serverIf+".conf")
	l.clientConf = filepath.Join(l.dir, l.clientIf+".conf")
	l.serverPriv, l.clientPub = spriv, cpub
	writeConf(t, l.serverConf, server)
	writeConf(t, l.clientConf, client)
	return l
}

// startServer brings the server's config up with the stock wg-quick.
func (l *tunnelLab) startServer(t *testing.T) {
	t.Helper()
	if out, err := l.server.Try("wg-quick", "up", l.serverConf); err != nil {
		t.Fatalf("wg-quick up on the server: %v\n%s", err, out)
	}
	t.Cleanup(func() { l.server.Try("wg-quick", "down", l.serverConf) })
}

func genKey(t *testing.T) (priv, pub string) {
	t.Helper()
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Base64(), k.Public().String()
}

func writeConf(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// notRootNetns fails the test unless ns is a network namespace other than the
// root one (pid 1's): one slip would hand the machine's default route to the test.
func notRootNetns(t *testing.T, ns *netnstest.NS) {
	t.Helper()
	// The test's own namespace, and pid 1's where it can be read (not in
	// every container).
	var outside []string
	for _, p := range []string{"/proc/self/ns/net", "/proc/1/ns/net"} {
		if l, err := os.Readlink(p); err == nil {
			outside = append(outside, l)
		}
	}
	if len(outside) == 0 {
		t.Fatal("cannot read /proc/self/ns/net")
	}
	here := strings.TrimSpace(ns.Run(t, "readlink", "/proc/self/ns/net"))
	if here == "" || slices.Contains(outside, here) {
		t.Fatalf("namespace %s is not a namespace of its own (%s, outside %v): refusing to bring a full tunnel up", ns.Name, here, outside)
	}
}

func (l *tunnelLab) wgnet(t *testing.T, args ...string) (string, error) {
	argv := append([]string{"env", "WGNET_STATE_DIR=" + l.stateDir, wgnet(t)}, args...)
	return l.client.Try(argv...)
}

// leftByDown is the namespace dump before, as down leaves it: the same, but
// for src_valid_mark, which down leaves at 1 as wg-quick does.
func leftByDown(before string) string {
	return strings.Replace(before, "src_valid_mark = 0", "src_valid_mark = 1", 1)
}

// downRestores takes the client's tunnel down with wgnet and checks that dump
// reads the namespace as leftByDown(before); what says what failed.
func (l *tunnelLab) downRestores(t *testing.T, before string, dump func() string, what string) {
	t.Helper()
	if out, err := l.wgnet(t, "down", l.clientIf); err != nil {
		t.Fatalf("wgnet down: %v\n%s", err, out)
	}
	want := leftByDown(before)
	if after := dump(); after != want {
		t.Errorf("%s (- before, + after):\n%s", what, lineDiff(want, after))
	}
}

// tunnelDump is what a full tunnel changes in the client's namespace: rules,
// routes of every table, the nft ruleset, the device's fwmark and the sysctls,
// each section's lines sorted (compared as sets).
func (l *tunnelLab) tunnelDump(t *testing.T, withDevice bool) string {
	t.Helper()
	return nsDump(t, l.client, l.clientIf, withDevice)
}

// nsDump is tunnelDump of any namespace and interface.
func nsDump(t *testing.T, ns *netnstest.NS, ifname string, withDevice bool) string {
	t.Helper()
	settle(t, ns)
	cmds := [][]string{
		{"ip", "rule"},
		{"ip", "-6", "rule"},
		{"ip", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"},
		{"nft", "list", "ruleset"},
		{"sysctl", "net.ipv4.conf.all.src_valid_mark", "net.ipv4.conf.all.rp_filter", "net.ipv4.ip_forward"},
		{"ip", "addr", "show", "dev", ifname},
	}
	if withDevice {
		cmds = append(cmds, []string{"wg", "show", ifname, "fwmark"})
	}
	var b strings.Builder
	for _, argv := range cmds {
		out, err := ns.Try(argv...)
		if err != nil && !strings.Contains(err.Error(), "does not exist") {
			t.Fatal(err)
		}
		var lines []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "valid_lft") || strings.TrimSpace(line) == "" {
				continue
			}
			line = linkIndexRE.ReplaceAllString(line, "N: ")
			line = nftCounterRE.ReplaceAllString(line, "counter")
			lines = append(lines, linkLocalRE.ReplaceAllString(line, "fe80::LL"))
		}
		slices.Sort(lines)
		fmt.Fprintf(&b, "$ %s\n%s\n", strings.Join(argv, " "), strings.Join(lines, "\n"))
	}
	return b.String()
}

// reach checks that the client reaches both internet addresses.
func (l *tunnelLab) reach(t *testing.T, who string) {
	t.Helper()
	for _, a := range []netip.Addr{l.target4, l.target6} {
		if err := ping(t, l.client, a); err != nil {
			t.Errorf("%s: the client does not reach %s through the tunnel: %v", who, a, err)
		}
	}
}

// TestFullTunnelSameAsWgQuick brings one full-tunnel client config up with the
// stock wg-quick and with wgnet, in turn, in the same namespace: the same rules,
// routes, marks, sysctls and nft ruleset; the internet reached through the
// tunnel both times; and down leaves the namespace as it was but for
// src_valid_mark, which both leave set.
func TestFullTunnelSameAsWgQuick(t *testing.T) {
	l := newTunnelLab(t)
	l.startServer(t)
	notRootNetns(t, l.client)
	before := l.tunnelDump(t, false)
	if !strings.Contains(before, "src_valid_mark = 0") {
		t.Fatalf("src_valid_mark is already on:\n%s", before)
	}
	if !noPing(l.client, l.target4) {
		t.Fatal("the client reaches the internet without a tunnel")
	}

	out, err := l.client.Try("wg-quick", "up", l.clientConf)
	if err != nil {
		t.Fatalf("wg-quick up: %v\n%s", err, out)
	}
	quick := l.tunnelDump(t, true)
	l.reach(t, "wg-quick")
	if out, err := l.client.Try("wg-quick", "down", l.clientConf); err != nil {
		t.Fatalf("wg-quick down: %v\n%s", err, out)
	}
	afterQuick := l.tunnelDump(t, false)

	// The same namespace again: src_valid_mark back to 0 so that wgnet's up is
	// seen to set it.
	l.client.Sysctl(t, "net.ipv4.conf.all.src_valid_mark", "0")
	notRootNetns(t, l.client)
	if out, err := l.wgnet(t, "up", l.clientConf); err != nil {
		t.Fatalf("wgnet up: %v\n%s", err, out)
	} else {
		t.Logf("wgnet up:\n%s", out)
	}
	ours := l.tunnelDump(t, true)
	l.reach(t, "wgnet")
	if ours != quick {
		t.Errorf("wgnet and wg-quick disagree (- wg-quick, + wgnet):\n%s\n\nwg-quick:\n%s", lineDiff(quick, ours), quick)
	}
	for _, w := range []string{"not from all fwmark 0xca6c lookup 51820", "from all lookup main suppress_prefixlength 0",
		"default dev " + l.clientIf + " table 51820", "ct mark set meta mark", "fib saddr type != local drop", "src_valid_mark = 1", "51820"} {
		if !strings.Contains(ours, w) {
			t.Errorf("wgnet's full tunnel lacks %q:\n%s", w, ours)
		}
	}
	out, err = l.wgnet(t, "down", l.clientIf)
	if err != nil {
		t.Fatalf("wgnet down: %v\n%s", err, out)
	}
	if !strings.Contains(out, "src_valid_mark=1 stays set") {
		t.Errorf("wgnet down does not say src_valid_mark stays set:\n%s", out)
	}
	afterOurs := l.tunnelDump(t, false)
	if afterOurs != afterQuick {
		t.Errorf("after down, wgnet and wg-quick leave different namespaces (- wg-quick, + wgnet):\n%s", lineDiff(afterQuick, afterOurs))
	}
	want := leftByDown(before)
	if afterOurs != want {
		t.Errorf("wgnet down did not restore the namespace but for src_valid_mark (- before, + after):\n%s", lineDiff(want, afterOurs))
	}
}

// replies pings the internet from the client five times (after a first ping
// that waits for the handshake) and returns how many came back.
func (l *tunnelLab) replies(t *testing.T) int {
	t.Helper()
	ping(t, l.client, l.target4) // the handshake; its result is not counted
	out, _ := l.client.Try("ping", "-c", "5", "-i", "0.2", "-W", "2", l.target4.String())
	m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping: no summary:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestMasqueradeServerSameAsWgQuick: a VPN server config as wg-easy writes it
// (empty PreUp/PreDown, MASQUERADE and FORWARD accepts with iptables in one
// PostUp) plus `PostUp = sysctl -w net.ipv4.ip_forward=1` as the tutorials add
// it, brought up in turn by the stock wg-quick and by wgnet in the server's
// namespace, with global forwarding off before each. A full-tunnel client
// (stock wg-quick) pings the internet behind it: every reply must come back
// with both (with the hook turned into forwarding on the tunnel only, as wgnet
// did before, the replies from the uplink were dropped: 0 of 5). Both leave
// ip_forward=1 after down; wgnet says so.
func TestMasqueradeServerSameAsWgQuick(t *testing.T) {
	l := newTunnelLab(t)
	easy := fmt.Sprintf(`# Note: Do not edit this file directly.
# Your changes will be overwritten!

# Server
[Interface]
PrivateKey = %s
Address = 10.66.0.1/24
ListenPort = 51820
PreUp = 
PostUp = sysctl -w net.ipv4.ip_forward=1
PostUp =  iptables -t nat -A POSTROUTING -s 10.66.0.0/24 -o eth1 -j MASQUERADE; iptables -A INPUT -p udp -m udp --dport 51820 -j ACCEPT; iptables -A FORWARD -i %%i -j ACCEPT; iptables -A FORWARD -o %%i -j ACCEPT;
PreDown = 
PostDown =  iptables -t nat -D POSTROUTING -s 10.66.0.0/24 -o eth1 -j MASQUERADE; iptables -D INPUT -p udp -m udp --dport 51820 -j ACCEPT; iptables -D FORWARD -i %%i -j ACCEPT; iptables -D FORWARD -o %%i -j ACCEPT;

# Client: laptop (6d5f1c1e-2f2b-4c7e-9a53-3f2f0f0e1a11)
[Peer]
PublicKey = %s
AllowedIPs = 10.66.0.2/32
`, l.serverPriv, l.clientPub)
	writeConf(t, l.serverConf, easy)
	state := t.TempDir()
	wgnetServer := func(args ...string) (string, error) {
		return l.server.Try(append([]string{"env", "WGNET_STATE_DIR=" + state, wgnet(t)}, args...)...)
	}
	// iptables (nf_tables backend) leaves the tables and chains it made when
	// the last rule goes: run the hooks' rules in and out once first, so that
	// "as before" is about what the tools do.
	for _, c := range []string{"-A", "-D"} {
		l.server.Run(t, "iptables", "-t", "nat", c, "POSTROUTING", "-s", "10.66.0.0/24", "-o", "eth1", "-j", "MASQUERADE")
		l.server.Run(t, "iptables", c, "INPUT", "-p", "udp", "-m", "udp", "--dport", "51820", "-j", "ACCEPT")
		l.server.Run(t, "iptables", c, "FORWARD", "-i", l.serverIf, "-j", "ACCEPT")
	}
	got := map[string]int{}
	for _, tool := range []string{"wg-quick", "wgnet"} {
		l.server.Sysctl(t, "net.ipv4.ip_forward", "0")
		before := nsDump(t, l.server, l.serverIf, false)
		var up, down func() (string, error)
		if tool == "wg-quick" {
			up = func() (string, error) { return l.server.Try("wg-quick", "up", l.serverConf) }
			down = func() (string, error) { return l.server.Try("wg-quick", "down", l.serverConf) }
		} else {
			up = func() (string, error) { return wgnetServer("up", l.serverConf) }
			down = func() (string, error) { return wgnetServer("down", l.serverIf) }
		}
		out, err := up()
		if err != nil {
			t.Fatalf("%s up on the server: %v\n%s", tool, err, out)
		}
		// The client: full tunnel, on the stock wg-quick, the same for both
		// servers; brought up afresh so that no session of the other server's
		// is left to wait out.
		if out, err := l.client.Try("wg-quick", "up", l.clientConf); err != nil {
			t.Fatalf("wg-quick up on the client: %v\n%s", err, out)
		}
		got[tool] = l.replies(t)
		if out, err := l.client.Try("wg-quick", "down", l.clientConf); err != nil {
			t.Fatalf("wg-quick down on the client: %v\n%s", err, out)
		}
		t.Logf("%s server: %d of 5 replies", tool, got[tool])
		out, err = down()
		if err != nil {
			t.Fatalf("%s down on the server: %v\n%s", tool, err, out)
		}
		if v := strings.TrimSpace(l.server.Run(t, "sysctl", "-n", "net.ipv4.ip_forward")); v != "1" {
			t.Errorf("after %s down: ip_forward = %s; wg-quick leaves it 1", tool, v)
		}
		// Everything else as it was: routes, rules, the ruleset (the
		// MASQUERADE and FORWARD rules gone with PostDown), the interface.
		want := strings.Replace(before, "net.ipv4.ip_forward = 0", "net.ipv4.ip_forward = 1", 1)
		if after := nsDump(t, l.server, l.serverIf, false); after != want {
			t.Errorf("after %s down, the server's namespace differs but for ip_forward (- before, + after):\n%s", tool, lineDiff(want, after))
		}
		if tool == "wgnet" && !strings.Contains(out, "net.ipv4.ip_forward=1 stays set") {
			t.Errorf("wgnet down does not say ip_forward stays set:\n%s", out)
		}
	}
	if got["wg-quick"] != 5 || got["wgnet"] != 5 {
		t.Errorf("replies: wg-quick %d of 5, wgnet %d of 5; want 5 and 5", got["wg-quick"], got["wgnet"])
	}
}

// TestFullTunnelAdoptFromWgQuick: a full tunnel the stock wg-quick brought up is
// adopted by `wgnet sync` of the same file with nothing to change (its table,
// fwmark, rules and nft tables are taken as they are), and `wgnet down` then
// removes all of it, leaving the namespace as wg-quick down would.
func TestFullTunnelAdoptFromWgQuick(t *testing.T) {
	l := newTunnelLab(t)
	l.startServer(t)
	notRootNetns(t, l.client)
	before := l.tunnelDump(t, false)
	if out, err := l.client.Try("wg-quick", "up", l.clientConf); err != nil {
		t.Fatalf("wg-quick up: %v\n%s", err, out)
	}
	l.reach(t, "wg-quick")
	out, err := l.wgnet(t, "sync", l.clientIf, l.clientConf)
	if err != nil {
		t.Fatalf("wgnet sync: %v\n%s", err, out)
	}
	for _, bad := range []string{"+ ip rule", "- ip rule", "+ route", "- route", "fwmark 0x", "nft table"} {
		if strings.Contains(out, bad) {
			t.Errorf("sync of wg-quick's full tunnel changes %q:\n%s", bad, out)
		}
	}
	t.Logf("wgnet sync:\n%s", out)
	if !strings.Contains(out, "adopts it") {
		t.Errorf("sync does not say it adopts the interface:\n%s", out)
	}
	l.reach(t, "adopted")
	l.downRestores(t, before, func() string { return l.tunnelDump(t, false) }, "wgnet down of the adopted full tunnel left")
}

// TestDNSSameAsWgQuick: `DNS = ` with a stub resolvconf first in PATH (the real
// package rewrites /etc/resolv.conf, which a network namespace does not
// isolate, so it is never used) that records its arguments and input: wg-quick
// and wgnet make the same calls with the same input, on up and on down.
func TestDNSSameAsWgQuick(t *testing.T) {
	l := newTunnelLab(t)
	l.startServer(t)
	notRootNetns(t, l.client)
	stub := t.TempDir()
	log := filepath.Join(stub, "calls")
	writeConf(t, filepath.Join(stub, "resolvconf"), "#!/bin/sh\n{ echo \"resolvconf $*\"; [ \"$1\" = -a ] && sed 's/^/  < /'; } >> "+log+"\n")
	if err := os.Chmod(filepath.Join(stub, "resolvconf"), 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(l.clientConf)
	if err != nil {
		t.Fatal(err)
	}
	writeConf(t, l.clientConf, strings.Replace(string(src), "[Peer]", "DNS = 198.19.0.53, fd00:19::53, corp.example, lab.example\n\n[Peer]", 1))
	path := "PATH=" + stub + ":" + os.Getenv("PATH")
	calls := map[string]string{}
	for _, tool := range []string{"wg-quick", "wgnet"} {
		os.Remove(log)
		var up, down []string
		if tool == "wg-quick" {
			up, down = []string{"wg-quick", "up", l.clientConf}, []string{"wg-quick", "down", l.clientConf}
		} else {
			w := []string{"WGNET_STATE_DIR=" + l.stateDir, wgnet(t)}
			up, down = append(slices.Clone(w), "up", l.clientConf), append(slices.Clone(w), "down", l.clientIf)
		}
		for _, argv := range [][]string{up, down} {
			if out, err := l.client.Try(append([]string{"env", path}, argv...)...); err != nil {
				t.Fatalf("%s: %v\n%s", tool, err, out)
			}
		}
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatalf("%s made no resolvconf call: %v", tool, err)
		}
		calls[tool] = string(b)
	}
	t.Logf("resolvconf calls:\n%s", calls["wgnet"])
	if calls["wgnet"] != calls["wg-quick"] {
		t.Errorf("resolvconf calls differ (- wg-quick, + wgnet):\n%s\n\nwg-quick:\n%s", lineDiff(calls["wg-quick"], calls["wgnet"]), calls["wg-quick"])
	}
	for _, w := range []string{"resolvconf -a " + l.clientIf + " -m 0 -x", "  < nameserver 198.19.0.53", "  < search corp.example lab.example", "resolvconf -d " + l.clientIf + " -f"} {
		if !strings.Contains(calls["wgnet"], w) {
			t.Errorf("wgnet's calls lack %q", w)
		}
	}
}

// TestTunnelLabStopsHalfWay: a full-tunnel test that stops half-way (here by
// SkipNow, which ends a test as FailNow does) with the server's wg-quick
// (Debian's wireguard-go) and the client's wgnet (its userspace daemon) up
// leaves no daemon running, no UAPI socket and no namespace: every test of
// the lab gets that from netnstest.New, however it ends.
func TestTunnelLabStopsHalfWay(t *testing.T) {
	var pids []int
	var socks, names []string
	t.Run("half-way", func(t *testing.T) {
		l := newTunnelLab(t)
		l.startServer(t)
		notRootNetns(t, l.client)
		if out, err := l.wgnet(t, "up", "--backend", "userspace", l.clientConf); err != nil {
			t.Fatalf("wgnet up: %v\n%s", err, out)
		}
		for _, ns := range []*netnstest.NS{l.client, l.server} {
			pids = append(pids, ns.PIDs()...)
			names = append(names, ns.Name)
		}
		socks = []string{"/var/run/wireguard/" + l.clientIf + ".sock", "/var/run/wireguard/" + l.serverIf + ".sock"}
		if len(pids) < 2 {
			t.Fatalf("daemons in the client's and the server's namespaces: %v, want one each at least", pids)
		}
		t.SkipNow()
	})
	for _, pid := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
			t.Errorf("pid %d still runs after its test stopped: %s", pid, b)
		}
	}
	for _, s := range socks {
		if _, err := os.Stat(s); err == nil {
			t.Errorf("%s is left", s)
		}
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(string(out), n) {
			t.Errorf("namespace %s is left", n)
		}
	}
}
