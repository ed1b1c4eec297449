package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/spawn"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// liveHost is one server of TestCheckLiveNetns: a namespace on the underlay
// bridge, a container namespace behind ctr0 on its routed subnet.
type liveHost struct {
	name    string
	ns, ctr *netnstest.NS
	ifname  string
	under   netip.Addr
	overlay netip.Addr
	ctrAddr netip.Addr
	conf    string
}

// TestCheckLiveNetns brings a hub and a spoke up with wgnet in namespaces (the
// userspace backend; underlay 198.18.0.0/24; ip_forward=0 and rp_filter=1 as on
// a server; a container behind each), checks that `check --live` finds nothing
// on the healthy hosts, then plants each fault of issue 11 in turn, checks that
// it is found (with its code) and takes it away again.
func TestCheckLiveNetns(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "iputils-ping, procps, nftables, wireguard-tools", "ping", "sysctl", "nft", "wg")
	bin := wgnetBin(t)
	stateDir, dir := t.TempDir(), t.TempDir()
	br := netnstest.New(t, "ul")
	br.Run(t, "ip", "link", "add", "br0", "type", "bridge")
	br.Run(t, "ip", "link", "set", "br0", "up")
	tag := netnstest.Unique(6)
	var hosts []*liveHost
	for i, name := range []string{"hub", "s1"} {
		n := i + 1
		h := &liveHost{
			name: name, ns: netnstest.New(t, name), ctr: netnstest.New(t, name+"c"),
			ifname:  fmt.Sprintf("wgl%s%d", tag, n),
			under:   netip.MustParseAddr(fmt.Sprintf("198.18.0.%d", n)),
			overlay: netip.MustParseAddr(fmt.Sprintf("10.99.0.%d", n)),
			ctrAddr: netip.MustParseAddr(fmt.Sprintf("10.10.%d.2", n)),
		}
		h.ns.Sysctl(t, "net.ipv4.ip_forward", "0")
		h.ns.Sysctl(t, "net.ipv4.conf.all.rp_filter", "1")
		h.ns.Sysctl(t, "net.ipv4.conf.default.rp_filter", "1")
		netnstest.Veth(t, h.ns, "ul0", br, fmt.Sprintf("p%d", n))
		br.Run(t, "ip", "link", "set", fmt.Sprintf("p%d", n), "master", "br0")
		h.ns.Run(t, "ip", "addr", "add", h.under.String()+"/24", "dev", "ul0")
		netnstest.Veth(t, h.ns, "ctr0", h.ctr, "eth0")
		h.ns.Run(t, "ip", "addr", "add", fmt.Sprintf("10.10.%d.1/24", n), "dev", "ctr0")
		h.ns.Sysctl(t, "net.ipv4.conf.ctr0.forwarding", "1") // as a container runtime sets it
		h.ctr.Run(t, "ip", "addr", "add", h.ctrAddr.String()+"/24", "dev", "eth0")
		h.ctr.Run(t, "ip", "route", "add", "default", "via", fmt.Sprintf("10.10.%d.1", n))
		hosts = append(hosts, h)
	}
	hub, s1 := hosts[0], hosts[1]

	s := &spec.Spec{Version: spec.Version, Network: "live", Subnets: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/24")},
		Topology: spec.TopologyHub, Hub: hub.name}
	sec := spec.Secrets{PrivateKeys: map[string]wgkey.Private{}}
	for i, h := range hosts {
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			t.Fatal(err)
		}
		sec.PrivateKeys[h.name] = k
		sh := spec.Host{Name: h.name, Addresses: []netip.Addr{h.overlay}, PublicKey: k.Public(),
			Routes: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.10.%d.0/24", i+1))}}
		if i == 0 {
			sh.Endpoint = h.under.String() + ":51820"
		} else {
			sh.Keepalive = 25
		}
		s.Hosts = append(s.Hosts, sh)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	hcs, err := compile.Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		for _, hc := range hcs {
			if hc.Name == h.name {
				h.conf = filepath.Join(dir, h.ifname+".conf")
				if err := os.WriteFile(h.conf, hc.Config().WgQuick(), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	wgnetIn := func(h *liveHost, args ...string) (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := h.ns.Command(ctx, append([]string{"env", "WGNET_STATE_DIR=" + stateDir, "WGNET_CONFIG_DIR=" + dir, bin}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("wgnet %v: %v", args, err)
		}
		return out.String(), errb.String(), code
	}
	// The daemons are stopped by the PIDs in their pid files (the state records
	// are of the hosts' namespaces, which up.LoadState here refuses); Stop
	// signals a PID only while it is still that interface's daemon.
	t.Cleanup(func() {
		for _, h := range hosts {
			if pid, err := spawn.ReadPIDFile(filepath.Join(stateDir, h.ifname+".pid")); err == nil && pid != 0 {
				if err := device.Stop(pid, h.ifname, 2*time.Second); err != nil {
					t.Logf("stop the daemon of %s: %v", h.ifname, err)
				}
			}
		}
	})
	upAt := time.Now()
	for _, h := range hosts {
		if out, errb, code := wgnetIn(h, "up", h.conf); code != 0 {
			t.Fatalf("up on %s: exit %d\n%s%s", h.name, code, out, errb)
		}
	}
	reach := func() {
		t.Helper()
		for try := 0; ; try++ {
			_, err1 := s1.ns.Try("ping", "-c", "1", "-W", "1", hub.overlay.String())
			_, err2 := s1.ctr.Try("ping", "-c", "1", "-W", "1", hub.ctrAddr.String())
			if err1 == nil && err2 == nil {
				return
			}
			if try == 5 {
				t.Fatalf("s1 does not reach the hub and its container: %v; %v", err1, err2)
			}
		}
	}
	reach()

	// check runs check --live on h and returns its findings (from -o json) and
	// the text output.
	check := func(h *liveHost) (diag.List, string) {
		t.Helper()
		out, errb, code := wgnetIn(h, "check", "--live", h.ifname, "-o", "json")
		var l diag.List
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("check --live on %s: exit %d: %v\n%s%s", h.name, code, err, out, errb)
		}
		if (code == 1) != (len(l) > 0) || (code != 0 && code != 1) {
			t.Errorf("check --live on %s: exit %d with %d findings: %s", h.name, code, len(l), errb)
		}
		text, _, _ := wgnetIn(h, "check", "--live", h.ifname)
		return l, text
	}
	healthy := func(when string) {
		t.Helper()
		for _, h := range hosts {
			if l, text := check(h); len(l) > 0 {
				t.Errorf("%s: check --live on healthy %s found:\n%s", when, h.name, text)
			}
		}
	}
	expect := func(h *liveHost, fault, code, needle string) {
		t.Helper()
		l, text := check(h)
		t.Logf("%s: check --live on %s:\n%s", fault, h.name, text)
		for _, d := range l {
			if d.Code == code && strings.Contains(d.Message, needle) {
				return
			}
		}
		t.Errorf("%s: check --live on %s did not report %s (%q):\n%s", fault, h.name, code, needle, text)
	}

	healthy("after up")

	// Forwarding off on the container side of the hub.
	hub.ns.Sysctl(t, "net.ipv4.conf.ctr0.forwarding", "0")
	expect(hub, "forwarding off on ctr0", "live-forwarding", "sysctl -w net.ipv4.conf.ctr0.forwarding=1")
	hub.ns.Sysctl(t, "net.ipv4.conf.ctr0.forwarding", "1")

	// Docker's rules, as iptables-nft writes them: FORWARD policy drop with an
	// empty DOCKER-USER, 28's raw drop of a container address, the masquerade.
	docker := filepath.Join(dir, "docker.nft")
	if err := os.WriteFile(docker, []byte(`table ip filter {
	chain DOCKER-USER {
	}
	chain FORWARD {
		type filter hook forward priority filter; policy drop;
		jump DOCKER-USER
		oifname "ctr0" ct state related,established accept
		iifname "ctr0" oifname != "ctr0" accept
	}
}
table ip raw {
	chain PREROUTING {
		type filter hook prerouting priority raw; policy accept;
		ip daddr 10.10.1.2 iifname != "ctr0" drop
	}
}
table ip nat {
	chain POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.10.1.0/24 oifname != "ctr0" masquerade
	}
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	hub.ns.Run(t, "nft", "-f", docker)
	if _, err := s1.ns.Try("ping", "-c", "1", "-W", "1", hub.ctrAddr.String()); err == nil {
		t.Errorf("s1 reaches the hub's container through Docker's rules")
	}
	expect(hub, "FORWARD policy drop", "live-forward-drop", "policy drop")
	expect(hub, "Docker 28 raw drop", "live-docker-raw-drop", "10.10.1.0/24")
	expect(hub, "Docker masquerade", "live-docker-masquerade", "10.10.1.0/24")
	for _, tbl := range []string{"filter", "raw", "nat"} {
		hub.ns.Run(t, "nft", "delete", "table", "ip", tbl)
	}

	// A route on the spoke that steals the hub's endpoint into the tunnel.
	s1.ns.Run(t, "ip", "route", "add", hub.under.String()+"/32", "dev", s1.ifname)
	expect(s1, "route stealing the endpoint", "live-endpoint-loop", hub.under.String())
	s1.ns.Run(t, "ip", "route", "del", hub.under.String()+"/32", "dev", s1.ifname)
	reach()

	// An MTU too big for the path: the hub's port on the underlay bridge takes
	// 1400 bytes, the tunnel sends 1420 + 60.
	br.Run(t, "ip", "link", "set", "p1", "mtu", "1400")
	reach()
	expect(s1, "MTU too big (spoke)", "live-mtu", "too big for the path")
	expect(hub, "MTU too big (hub)", "live-mtu", "too big for the path")
	br.Run(t, "ip", "link", "set", "p1", "mtu", "1500")

	// A peer that never answers, with keepalives: no handshake ever.
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	hub.ns.Run(t, "wg", "set", hub.ifname, "peer", k.Public().String(), "endpoint", "198.18.0.99:51820",
		"allowed-ips", "10.99.0.99/32", "persistent-keepalive", "1")
	if wait := time.Until(upAt.Add(21 * time.Second)); wait > 0 {
		time.Sleep(wait) // the grace period for a first handshake after up
	}
	time.Sleep(2 * time.Second) // a few handshake initiations
	expect(hub, "a peer that never answers", "live-handshake", "no handshake ever")
	hub.ns.Run(t, "wg", "set", hub.ifname, "peer", k.Public().String(), "remove")

	reach()
	healthy("after the faults were taken away")
	for _, h := range hosts {
		if out, errb, code := wgnetIn(h, "down", h.ifname); code != 0 {
			t.Errorf("down on %s: exit %d\n%s%s", h.name, code, out, errb)
		}
	}
}
