package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/netnstest"
)

// TestImportedFleetNetns: the nat-hub fleet of the import corpus (a hub with an
// FwMark and its own forwarding hook, a spoke with a LAN behind it, spokes
// behind NAT with keepalives, no MTU anywhere) is adopted with `wgnet import`,
// the hub's endpoint moved to the test underlay (the files name
// hub.example.net), and three of its hosts are brought up from the spec with
// `wgnet up --host` in network namespaces joined by a bridge in the hub's:
// each interface has the address, fwmark and automatic MTU its file had, and a
// spoke reaches the hub, the other spoke and the LAN behind it through the hub.
func TestImportedFleetNetns(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "util-linux, iproute2, wireguard-tools, iputils-ping", "unshare", "nsenter", "ip", "wg", "ping")
	bin := wgnetBin(t)
	dir := t.TempDir()
	files, _ := filepath.Glob("../../internal/importer/testdata/corpus/nat-hub/*.conf")
	if len(files) != 4 {
		t.Fatalf("nat-hub fleet: %d files, want 4", len(files))
	}
	for i, f := range files {
		if files[i], _ = filepath.Abs(f); files[i] == "" {
			t.Fatalf("abs %s", f)
		}
	}
	spec := filepath.Join(dir, "wgnet.yaml")
	mustCLI(t, dir, append([]string{"-f", spec, "import", "--network", "nat"}, files...)...)
	mustCLI(t, dir, "-f", spec, "set", "hub", "--endpoint", "198.18.77.1:51820")

	shared := t.TempDir()
	hosts := map[string]*nsHost{}
	for _, name := range []string{"hub", "home", "boat"} {
		hosts[name] = newNSHost(t, name, shared, t.TempDir())
	}
	hub := hosts["hub"].ns
	hub.Run(t, "ip", "link", "add", "br0", "type", "bridge")
	hub.Run(t, "ip", "addr", "add", "198.18.77.1/24", "dev", "br0")
	hub.Run(t, "ip", "link", "set", "br0", "up")
	for i, name := range []string{"home", "boat"} {
		ns := hosts[name].ns
		netnstest.Veth(t, hub, "to-"+name, ns, "eth0")
		hub.Run(t, "ip", "link", "set", "to-"+name, "master", "br0")
		ns.Run(t, "ip", "addr", "add", "198.18.77."+string(rune('2'+i))+"/24", "dev", "eth0")
	}
	home := hosts["home"].ns
	// The LAN behind home: a veth pair inside its namespace (no dummy module here).
	home.Run(t, "ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
	home.Run(t, "ip", "addr", "add", "192.168.77.1/24", "dev", "lan0")
	home.Run(t, "ip", "link", "set", "lan0", "up")
	home.Run(t, "ip", "link", "set", "lan1", "up")

	for _, name := range []string{"hub", "home", "boat"} {
		hosts[name].must(t, nil, bin, "-f", spec, "up", "--backend", "userspace", "--host", name)
		defer hosts[name].run(t, nil, bin, "down", "wg0")
	}
	for name, want := range map[string]string{"hub": "10.77.0.1/24", "home": "10.77.0.2/24", "boat": "10.77.0.4/24"} {
		if out := hosts[name].must(t, nil, "ip", "-o", "addr", "show", "dev", "wg0"); !strings.Contains(out, want) {
			t.Errorf("%s: wg0 addresses, want %s as its file had:\n%s", name, want, out)
		}
		// No MTU in the files: wg-quick's automatic one, the route MTU (1500) minus 80.
		if out := hosts[name].must(t, nil, "ip", "-o", "link", "show", "dev", "wg0"); !strings.Contains(out, "mtu 1420 ") {
			t.Errorf("%s: wg0 MTU, want the automatic 1420:\n%s", name, out)
		}
	}
	if out := hosts["hub"].must(t, nil, "wg", "show", "wg0", "fwmark"); strings.TrimSpace(out) != "0x51820" {
		t.Errorf("hub: fwmark %q, want 0x51820 as its file had", out)
	}
	for _, dst := range []string{"10.77.0.1", "10.77.0.2", "192.168.77.1"} {
		if out, code := hosts["boat"].run(t, nil, "ping", "-c", "3", "-i", "0.2", "-W", "2", dst); code != 0 {
			t.Errorf("boat cannot reach %s through the imported network:\n%s", dst, out)
		}
	}
}

// TestImportedFullTunnelNetns: the wg-easy fleet of the import corpus (a server
// that MASQUERADEs to eth0, clients with AllowedIPs = 0.0.0.0/0, ::/0, DNS and a
// preshared key) is adopted with `wgnet import`; the client alice, a full_tunnel
// spoke in the spec, is brought up from the spec with `wgnet up --host` in a
// network namespace and reaches an address beyond the server, through the
// tunnel, with its DNS handed to a stub resolvconf. The server's namespace
// forwards host-wide, as wg-easy's container does (sysctl net.ipv4.ip_forward=1).
func TestImportedFullTunnelNetns(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "util-linux, iproute2, wireguard-tools, iputils-ping, iptables", "unshare", "nsenter", "ip", "wg", "ping", "iptables")
	bin := wgnetBin(t)
	dir := t.TempDir()
	files, _ := filepath.Glob("../../internal/importer/testdata/corpus/wg-easy/*.conf")
	for i, f := range files {
		files[i], _ = filepath.Abs(f)
	}
	spec := filepath.Join(dir, "wgnet.yaml")
	mustCLI(t, dir, append([]string{"-f", spec, "import", "--network", "easy"}, files...)...)
	mustCLI(t, dir, "-f", spec, "set", "server", "--endpoint", "198.18.77.1:51820")

	shared := t.TempDir()
	server := newNSHost(t, "srv", shared, t.TempDir())
	alice := newNSHost(t, "alice", shared, t.TempDir())
	if self, err := nsInode("/proc/self/ns/net"); err != nil || alice.inode(t) == self {
		t.Fatalf("alice's namespace is this process's (%v): a full tunnel there would take over its default route", err)
	}
	beyond := netnstest.New(t, "inet")
	netnstest.Veth(t, server.ns, "to-alice", alice.ns, "eth0")
	server.ns.Run(t, "ip", "addr", "add", "198.18.77.1/24", "dev", "to-alice")
	alice.ns.Run(t, "ip", "addr", "add", "198.18.77.2/24", "dev", "eth0")
	netnstest.Veth(t, server.ns, "eth0", beyond, "eth0")
	server.ns.Run(t, "ip", "addr", "add", "198.18.78.1/24", "dev", "eth0")
	beyond.Run(t, "ip", "addr", "add", "198.18.78.2/24", "dev", "eth0")
	server.ns.Sysctl(t, "net.ipv4.ip_forward", "1")

	stub := t.TempDir()
	calls := filepath.Join(stub, "calls")
	if err := os.WriteFile(filepath.Join(stub, "resolvconf"), []byte("#!/bin/sh\n{ echo \"resolvconf $*\"; [ \"$1\" = -a ] && cat; } >> "+calls+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := []string{"PATH=" + stub + ":" + os.Getenv("PATH")}
	server.must(t, nil, bin, "-f", spec, "up", "--backend", "userspace", "--host", "server")
	defer server.run(t, nil, bin, "down", "wg0")
	alice.must(t, path, bin, "-f", spec, "up", "--backend", "userspace", "--host", "alice")
	defer alice.run(t, path, bin, "down", "wg0")

	for _, dst := range []string{"10.8.0.1", "198.18.78.2"} {
		if out, code := alice.run(t, nil, "ping", "-c", "3", "-i", "0.2", "-W", "2", dst); code != 0 {
			t.Errorf("alice cannot reach %s through her full tunnel:\n%s", dst, out)
		}
	}
	// A full tunnel as wg-quick makes one: its default routes in a table of
	// their own, reached by the rule that leaves the tunnel's own packets out.
	if out := alice.must(t, nil, "ip", "rule"); !strings.Contains(out, "suppress_prefixlength 0") || !strings.Contains(out, "not from all fwmark") {
		t.Errorf("alice's rules, want wg-quick's full-tunnel pair:\n%s", out)
	}
	if out := alice.must(t, nil, "ip", "-o", "addr", "show", "dev", "wg0"); !strings.Contains(out, "10.8.0.2/24") {
		t.Errorf("alice's wg0, want 10.8.0.2/24 as her file had:\n%s", out)
	}
	if got, err := os.ReadFile(calls); err != nil || !strings.Contains(string(got), "nameserver 1.1.1.1") {
		t.Errorf("resolvconf calls (%v):\n%s\nwant alice's DNS = 1.1.1.1", err, got)
	}
}
