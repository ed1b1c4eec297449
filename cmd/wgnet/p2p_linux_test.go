package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wgnet/wgnet/internal/netnstest"
)

// TestPointToPointTraffic: a /31 (and /127) site link made with the CLI carries
// traffic between the LANs behind its two hosts. Two hosts in namespaces joined
// by a veth (underlay 198.18.0.0/24), each with a LAN namespace behind it
// (192.168.N.0/24); the rendered configs brought up by wgnet (userspace), no
// forwarding set by hand; LAN to LAN and host to host over the /31 and /127.
func TestPointToPointTraffic(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "iputils-ping", "ping")
	bin := wgnetBin(t)
	dir := t.TempDir()
	mustCLI(t, dir, "init", "link", "--subnet", "10.9.0.0/31", "--subnet", "fd09::/127")
	mustCLI(t, dir, "add", "a", "--endpoint", "198.18.0.1:51820", "--route", "192.168.1.0/24")
	mustCLI(t, dir, "add", "b", "--endpoint", "198.18.0.2:51820", "--route", "192.168.2.0/24")
	mustCLI(t, dir, "render")
	state := t.TempDir()
	type site struct {
		name, ifname, conf string
		ns, lan            *netnstest.NS
	}
	var sites []*site
	for i, name := range []string{"a", "b"} {
		s := &site{name: name, ifname: "wgp" + netnstest.Unique(6), ns: netnstest.New(t, "p2p"+name), lan: netnstest.New(t, "lan"+name)}
		src, err := os.ReadFile(filepath.Join(dir, "out", name, "wg0.conf"))
		if err != nil {
			t.Fatal(err)
		}
		// UAPI sockets are shared across namespaces: a unique interface name.
		s.conf = filepath.Join(dir, s.ifname+".conf")
		if err := os.WriteFile(s.conf, src, 0o600); err != nil {
			t.Fatal(err)
		}
		n := string(rune('1' + i))
		netnstest.Veth(t, s.ns, "lan0", s.lan, "eth0")
		s.ns.Run(t, "ip", "addr", "add", "192.168."+n+".1/24", "dev", "lan0")
		s.lan.Run(t, "ip", "addr", "add", "192.168."+n+".10/24", "dev", "eth0")
		s.lan.Run(t, "ip", "route", "add", "default", "via", "192.168."+n+".1")
		s.ns.Sysctl(t, "net.ipv4.ip_forward", "0")
		sites = append(sites, s)
	}
	netnstest.Veth(t, sites[0].ns, "ul0", sites[1].ns, "ul0")
	sites[0].ns.Run(t, "ip", "addr", "add", "198.18.0.1/24", "dev", "ul0")
	sites[1].ns.Run(t, "ip", "addr", "add", "198.18.0.2/24", "dev", "ul0")
	for _, s := range sites {
		argv := []string{"env", "WGNET_STATE_DIR=" + state, bin, "up", s.conf, "--backend", "userspace"}
		if out, err := s.ns.Try(argv...); err != nil {
			t.Fatalf("wgnet up on %s: %v\n%s", s.name, err, out)
		}
		t.Cleanup(func() { s.ns.Try("env", "WGNET_STATE_DIR="+state, bin, "down", s.ifname) })
	}
	for _, c := range []struct {
		from *netnstest.NS
		to   string
	}{
		{sites[0].lan, "192.168.2.10"}, {sites[1].lan, "192.168.1.10"},
		{sites[0].ns, "10.9.0.1"}, {sites[1].ns, "10.9.0.0"},
		{sites[0].ns, "fd09::1"}, {sites[1].ns, "fd09::"},
	} {
		var err error
		for try := 0; try < 4; try++ {
			if _, err = c.from.Try("ping", "-c", "1", "-W", "1", c.to); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("%s does not reach %s over the /31 link: %v", c.from.Name, c.to, err)
		}
	}
}
