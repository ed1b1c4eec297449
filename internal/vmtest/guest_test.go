package vmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/netnstest"
)

// guestEnv marks the test binary's run inside the VM that TestKernelVM boots.
const guestEnv = "WGNET_VM_GUEST"

// TestGuestTwoHosts runs inside the VM (testdata/init starts it): two hosts of a
// rendered mesh, each in a network namespace of its own joined by a veth, brought
// up with `wgnet up --backend kernel` (and `--backend auto`, which must pick the
// kernel), ping each other through the tunnel over IPv4 and IPv6, `wgnet show`
// (and the stock wg(8)) reports the peer up, `wgnet sync` adds and removes an
// allowed IP without restarting the session, and `wgnet down` removes everything
// up added.
func TestGuestTwoHosts(t *testing.T) {
	if os.Getenv(guestEnv) != "1" {
		t.Skip("runs only inside the test VM that TestKernelVM boots (WGNET_QEMU_TEST=1)")
	}
	wgnet, err := exec.LookPath("wgnet")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	specFile := filepath.Join(dir, "wgnet.yaml")
	out := filepath.Join(dir, "out")
	spec := func(t *testing.T, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(wgnet, append([]string{"-f", specFile}, args...)...)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("wgnet %s: %v\n%s", strings.Join(args, " "), err, stderrOf(err))
		}
		return b
	}
	spec(t, "init", "vm", "--subnet", "192.168.100.0/24", "--subnet", "fd00:100::/64", "--topology", "mesh")

	type host struct {
		name, underlay, backend string
		ns                      *netnstest.NS
		addrs                   []string // overlay addresses, from `wgnet add`
		stateDir                string
	}
	hosts := []*host{
		{name: "a", underlay: "198.18.0.1", backend: "kernel"},
		{name: "b", underlay: "198.18.0.2", backend: "auto"},
	}
	for _, h := range hosts {
		var added struct {
			Addresses []string `json:"addresses"`
		}
		if err := json.Unmarshal(spec(t, "-o", "json", "add", h.name, "--endpoint", h.underlay+":51820"), &added); err != nil {
			t.Fatal(err)
		}
		if len(added.Addresses) != 2 {
			t.Fatalf("wgnet add %s: addresses %v, want one IPv4 and one IPv6", h.name, added.Addresses)
		}
		h.addrs = added.Addresses
		h.ns = netnstest.New(t, h.name)
		h.stateDir = filepath.Join(dir, "state-"+h.name)
	}
	spec(t, "render", "--out", out)
	a, b := hosts[0], hosts[1]
	netnstest.Veth(t, a.ns, "ua", b.ns, "ub")
	a.ns.Run(t, "ip", "addr", "add", a.underlay+"/24", "dev", "ua")
	b.ns.Run(t, "ip", "addr", "add", b.underlay+"/24", "dev", "ub")

	// wg runs wgnet in h's namespace with h's state directory.
	wg := func(t *testing.T, h *host, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := h.ns.Command(ctx, append([]string{wgnet}, args...)...)
		cmd.Env = append(os.Environ(), "WGNET_STATE_DIR="+h.stateDir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		t.Logf("%s: wgnet %s\n%s%s", h.name, strings.Join(args, " "), stderr.String(), stdout)
		if err != nil {
			err = fmt.Errorf("wgnet %s: %w", strings.Join(args, " "), err)
		}
		return string(stdout), err
	}
	// wgOK is wg that fails the test on error.
	wgOK := func(t *testing.T, h *host, args ...string) string {
		t.Helper()
		out, err := wg(t, h, args...)
		if err != nil {
			t.Fatalf("%s: %v", h.name, err)
		}
		return out
	}

	before := map[string]string{}
	for _, h := range hosts {
		settle(t, h.ns)
		before[h.name] = snapshot(t, h.ns)
	}

	// up: the kernel backend, asked for (a) and picked by auto (b).
	for _, h := range hosts {
		conf := filepath.Join(out, h.name, "wg0.conf")
		stdout, err := wg(t, h, "-o", "json", "up", conf, "--backend", h.backend)
		if err != nil {
			t.Fatalf("%s: wgnet up --backend %s: %v", h.name, h.backend, err)
		}
		t.Cleanup(func() { // after a failure
			if _, err := os.Stat(filepath.Join(h.stateDir, "wg0.json")); err == nil {
				wg(t, h, "down", "wg0")
			}
		})
		var st struct {
			Name     string `json:"name"`
			Backend  string `json:"backend"`
			Complete bool   `json:"complete"`
		}
		if err := json.Unmarshal([]byte(stdout), &st); err != nil {
			t.Fatalf("%s: wgnet up -o json: %v", h.name, err)
		}
		stateOK := st.Name == "wg0" && st.Backend == "kernel" && st.Complete
		if !stateOK {
			t.Errorf("%s: wgnet up --backend %s: state name %q backend %q complete %v, want wg0, kernel, true",
				h.name, h.backend, st.Name, st.Backend, st.Complete)
		}
		link := h.ns.Run(t, "ip", "-d", "link", "show", "wg0")
		t.Logf("%s: ip -d link show wg0:\n%s", h.name, link)
		linkOK := strings.Contains(link, "\n    wireguard ")
		if !linkOK {
			t.Errorf("%s: ip -d link show wg0 is not a kernel WireGuard link:\n%s", h.name, link)
		}
		if stateOK && linkOK {
			t.Logf("proof: %s: wgnet up --backend %s: backend %s, link type wireguard", h.name, h.backend, st.Backend)
		}
	}

	// Traffic through the tunnel, both ways and both families.
	for _, p := range [][2]*host{{a, b}, {b, a}} {
		from, to := p[0], p[1]
		for _, addr := range to.addrs {
			o, err := from.ns.Try("ping", "-c", "3", "-W", "2", addr)
			t.Logf("%s: ping %s:\n%s", from.name, addr, o)
			if err != nil {
				t.Errorf("%s cannot reach %s at %s through the tunnel: %v", from.name, to.name, addr, err)
			} else {
				t.Logf("proof: %s: ping %s (%s): %s", from.name, addr, to.name, pingSummary(o))
			}
		}
	}

	// wgnet show names the peer and reports it up.
	for _, p := range [][2]*host{{a, b}, {b, a}} {
		h, peer := p[0], p[1]
		ifc := show(t, h.name, wgOK(t, h, "-o", "json", "show"))
		if ifc.Backend != "kernel" || !ifc.Wgnet {
			t.Errorf("%s: wgnet show: backend %q, wgnet %v; want kernel, true", h.name, ifc.Backend, ifc.Wgnet)
		}
		ps := ifc.Peers
		if len(ps) != 1 || ps[0].Name != peer.name || ps[0].State != "up" || ps[0].RxBytes == 0 || ps[0].TxBytes == 0 {
			t.Errorf("%s: wgnet show: want peer %s up with traffic both ways, got %+v", h.name, peer.name, ps)
		} else {
			t.Logf("proof: %s: wgnet show: peer %s state %s, rx %d tx %d bytes", h.name, ps[0].Name, ps[0].State, ps[0].RxBytes, ps[0].TxBytes)
		}
		text, _ := wg(t, h, "show")
		if !strings.Contains(text, "peer: "+peer.name+" ") {
			t.Errorf("%s: wgnet show (text) does not name peer %s:\n%s", h.name, peer.name, text)
		}
	}

	// The stock wg(8), when the VM has it, reads the same kernel interface.
	if _, err := exec.LookPath("wg"); err == nil {
		o := a.ns.Run(t, "wg", "show", "wg0", "latest-handshakes")
		t.Logf("a: wg show wg0 latest-handshakes:\n%s", o)
		if f := strings.Fields(o); len(f) != 2 || f[1] == "0" {
			t.Errorf("a: wg show wg0 latest-handshakes = %q, want one peer with a handshake", o)
		} else {
			t.Logf("proof: a: stock wg show wg0 latest-handshakes: %s", strings.Join(f, " "))
		}
	}

	// sync on the kernel backend: a prefix added to b's allowed IPs, then removed
	// again. The kernel cannot remove a single prefix through wgctrl, so the
	// second sync rewrites b's list (replace_allowed_ips). Neither may restart the
	// session.
	t.Run("sync", func(t *testing.T) {
		hs := show(t, "a", wgOK(t, a, "-o", "json", "show")).Peers[0].LatestHandshake
		route := "10.0.5.0/24"
		for _, step := range []struct {
			set         []string
			add, remove []string
			replace     bool
			routed      bool
		}{
			{set: []string{"--route", route}, add: []string{route}, routed: true},
			{set: []string{"--remove-route", route}, remove: []string{route}, replace: true},
		} {
			spec(t, append([]string{"set", "b"}, step.set...)...)
			spec(t, "render", "--out", out)
			stdout, err := wg(t, a, "-o", "json", "sync", "wg0", filepath.Join(out, "a", "wg0.conf"))
			if err != nil {
				t.Fatalf("a: wgnet sync after wgnet set b %s: %v", strings.Join(step.set, " "), err)
			}
			var plan struct {
				Peers []struct {
					Op      string   `json:"op"`
					Name    string   `json:"name"`
					Add     []string `json:"add_allowed_ips"`
					Remove  []string `json:"remove_allowed_ips"`
					Replace bool     `json:"replace_allowed_ips"`
				} `json:"peers"`
			}
			if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
				t.Fatalf("a: wgnet sync -o json: %v", err)
			}
			if len(plan.Peers) != 1 || plan.Peers[0].Op != "~" || plan.Peers[0].Name != "b" ||
				!slices.Equal(plan.Peers[0].Add, step.add) || !slices.Equal(plan.Peers[0].Remove, step.remove) ||
				plan.Peers[0].Replace != step.replace {
				t.Errorf("a: wgnet sync after set b %s: peers %+v, want b changed: add %v remove %v replace %v",
					strings.Join(step.set, " "), plan.Peers, step.add, step.remove, step.replace)
			}
			r := strings.TrimSpace(a.ns.Run(t, "ip", "route", "show", route))
			if (r != "") != step.routed {
				t.Errorf("a: after sync, ip route show %s = %q, want a route: %v", route, r, step.routed)
			}
			ifc := show(t, "a", wgOK(t, a, "-o", "json", "show"))
			got := slices.Clone(ifc.Peers[0].AllowedIPs)
			want := append([]string{b.addrs[0] + "/32", b.addrs[1] + "/128"}, step.add...)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("a: after sync, peer b's allowed IPs %v, want %v", got, want)
			}
			if o, err := a.ns.Try("ping", "-c", "1", "-W", "2", b.addrs[0]); err != nil {
				t.Errorf("a: ping %s after sync: %v\n%s", b.addrs[0], err, o)
			}
			if now := ifc.Peers[0].LatestHandshake; now != hs {
				t.Errorf("a: sync restarted the session with b: latest handshake %s, was %s", now, hs)
			} else {
				t.Logf("proof: a: wgnet sync (set b %s): peer b allowed IPs %v, replace_allowed_ips %v, route %s present %v, session kept (handshake %s)",
					strings.Join(step.set, " "), got, plan.Peers[0].Replace, route, r != "", hs)
			}
		}
	})

	// down removes the link, the addresses and the routes, and the state file.
	for _, h := range hosts {
		if _, err := wg(t, h, "down", "wg0"); err != nil {
			t.Fatalf("%s: wgnet down: %v", h.name, err)
		}
		if o, err := h.ns.Try("ip", "link", "show", "wg0"); err == nil {
			t.Errorf("%s: wg0 still there after down:\n%s", h.name, o)
		}
		if _, err := os.Stat(filepath.Join(h.stateDir, "wg0.json")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: state file after down: %v, want it gone", h.name, err)
		}
		if diff := cmp.Diff(before[h.name], snapshot(t, h.ns)); diff != "" {
			t.Errorf("%s: network state after down differs from before up (-before +after):\n%s", h.name, diff)
		} else {
			t.Logf("proof: %s: wgnet down: wg0 gone, state file gone, links/addresses/routes/rules/forwarding as before up", h.name)
		}
	}
}

// showIfc is one interface of `wgnet show -o json`, as far as these tests read it.
type showIfc struct {
	Name    string `json:"name"`
	Backend string `json:"backend"`
	Wgnet   bool   `json:"wgnet"`
	Peers   []struct {
		Name            string   `json:"name"`
		State           string   `json:"state"`
		AllowedIPs      []string `json:"allowed_ips"`
		LatestHandshake string   `json:"latest_handshake"`
		RxBytes         int64    `json:"rx_bytes"`
		TxBytes         int64    `json:"tx_bytes"`
	} `json:"peers"`
}

// show parses `wgnet show -o json` of a namespace that has one interface, wg0
// with one peer.
func show(t *testing.T, host string, out string) showIfc {
	t.Helper()
	var ifcs []showIfc
	if err := json.Unmarshal([]byte(out), &ifcs); err != nil {
		t.Fatalf("%s: wgnet show -o json: %v", host, err)
	}
	if len(ifcs) != 1 || ifcs[0].Name != "wg0" || len(ifcs[0].Peers) != 1 {
		t.Fatalf("%s: wgnet show: want one interface wg0 with one peer, got %+v", host, ifcs)
	}
	return ifcs[0]
}

// pingSummary is ping's "N packets transmitted, N packets received" line.
func pingSummary(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "packets transmitted") {
			return strings.TrimSpace(l)
		}
	}
	return "(no summary)"
}

// settle waits (up to 10 seconds) until the namespace's links have their carrier
// and no IPv6 address is tentative, so that a snapshot taken before up does not
// differ from one after down just because the veth came up in between.
func settle(t *testing.T, ns *netnstest.NS) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		links := ns.Run(t, "ip", "link", "show")
		tentative := ns.Run(t, "ip", "-6", "addr", "show", "tentative")
		if !strings.Contains(links, "NO-CARRIER") && strings.TrimSpace(tentative) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: links not settled after 10s:\n%s%s", ns.Name, links, tentative)
		}
	}
}

// snapshot is what up may change in a namespace and down must put back.
func snapshot(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	var b strings.Builder
	for _, argv := range [][]string{
		{"ip", "-d", "link", "show"},
		{"ip", "addr", "show"},
		{"ip", "-4", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"},
		{"ip", "-4", "rule", "show"},
		{"ip", "-6", "rule", "show"},
		{"sysctl", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"},
	} {
		b.WriteString("$ " + strings.Join(argv, " ") + "\n")
		b.WriteString(ns.Run(t, argv...))
	}
	return b.String()
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
