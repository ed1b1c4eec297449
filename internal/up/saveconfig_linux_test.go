package up_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/netnstest"
)

// peersSorted puts a config's [Peer] sections in a fixed order: both tools
// write peers in the order the device lists them, and wireguard-go lists them
// from a map, so two saves of one device may differ in that order only.
func peersSorted(conf string) string {
	parts := strings.Split(conf, "\n[Peer]\n")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.TrimSuffix(parts[i], "\n")
	}
	slices.Sort(parts[1:])
	return strings.Join(parts, "\n[Peer]\n") + "\n"
}

// TestSaveConfigSameAsWgQuick brings one SaveConfig = true config up with the
// stock wg-quick and with wgnet in turn, in one namespace, changes the running
// interface with the stock wg (a peer added with a preshared key, another's
// endpoint, the listen port), takes it down and compares the files each wrote
// back: the same text, but for the IPv6 link-local Address wg-quick copies from
// `ip -brief address` (a kernel-made address; wgnet leaves it out), and both
// 0600.
func TestSaveConfigSameAsWgQuick(t *testing.T) {
	requireWgQuick(t)
	ns := netnstest.New(t, "save")
	ns.Run(t, "ip", "link", "add", "u0", "type", "veth", "peer", "name", "u1")
	ns.Run(t, "ip", "link", "set", "u0", "up")
	ns.Run(t, "ip", "addr", "add", "198.18.0.2/24", "dev", "u0")
	dir, state := t.TempDir(), t.TempDir()
	ifname := "wgs" + netnstest.Unique(6)
	conf := filepath.Join(dir, ifname+".conf")
	priv, _ := genKey(t)
	_, p1 := genKey(t)
	_, p2 := genKey(t)
	psk := filepath.Join(dir, "psk")
	writeConf(t, psk, strings.TrimSpace(ns.Run(t, "wg", "genpsk"))+"\n")
	orig := `[Interface]
PrivateKey = ` + priv + `
Address = 10.77.0.1/24, fd00:77::1/64
ListenPort = 51820
MTU = 1400
SaveConfig = true
PostUp = echo up %i
PreDown = echo going down # a comment wg-quick cuts

# a peer
[Peer]
PublicKey = ` + p1 + `
AllowedIPs = 10.77.0.2/32, fd00:77::2/128
Endpoint = 198.18.0.9:51820
PersistentKeepalive = 25
`
	saved := map[string]string{}
	for _, tool := range []string{"wg-quick", "wgnet"} {
		writeConf(t, conf, orig)
		run := func(args ...string) {
			t.Helper()
			argv := args
			if tool == "wgnet" {
				argv = append([]string{"env", "WGNET_STATE_DIR=" + state, wgnet(t)}, args...)
			} else {
				argv = append([]string{"wg-quick"}, args...)
			}
			if out, err := ns.Try(argv...); err != nil {
				t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
			}
		}
		run("up", conf)
		ns.Run(t, "wg", "set", ifname, "listen-port", "51999",
			"peer", p2, "allowed-ips", "10.77.0.3/32,fd00:77::3/128", "preshared-key", psk, "endpoint", "198.18.0.7:4500",
			"peer", p1, "endpoint", "198.18.0.8:51820")
		if tool == "wgnet" {
			run("down", ifname)
		} else {
			run("down", conf)
		}
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(conf)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s wrote %s with mode %o, want 600", tool, conf, fi.Mode().Perm())
		}
		var lines []string
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if !strings.HasPrefix(l, "Address = fe80:") {
				lines = append(lines, l)
			}
		}
		saved[tool] = peersSorted(strings.Join(lines, ""))
	}
	if saved["wgnet"] != saved["wg-quick"] {
		t.Errorf("saved configs differ (- wg-quick, + wgnet):\n%s\n\nwg-quick:\n%s\nwgnet:\n%s", lineDiff(saved["wg-quick"], saved["wgnet"]), saved["wg-quick"], saved["wgnet"])
	}
	for _, w := range []string{"ListenPort = 51999", "Endpoint = 198.18.0.8:51820", "PresharedKey = ", "SaveConfig = true", "MTU = 1400", "PreDown = echo going down\n"} {
		if !strings.Contains(saved["wgnet"], w) {
			t.Errorf("wgnet's saved config lacks %q:\n%s", w, saved["wgnet"])
		}
	}
}
