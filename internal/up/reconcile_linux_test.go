package up_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// binEnv passes the wgnet binary built by the parent to the test re-run in a
// namespace (netnstest.InNetns).
const binEnv = "WGNET_TEST_BIN"

// peerDump is one peer line of `wg show IF dump`.
type peerDump struct {
	handshake, rx, tx int64
}

// wgDump reads the peer key's line of the real `wg show name dump`.
func wgDump(t *testing.T, name string, key wgkey.Key) peerDump {
	t.Helper()
	out, err := exec.Command("wg", "show", name, "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("wg show %s dump: %v: %s", name, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 8 && f[0] == key.String() {
			var d peerDump
			d.handshake, _ = strconv.ParseInt(f[4], 10, 64)
			d.rx, _ = strconv.ParseInt(f[5], 10, 64)
			d.tx, _ = strconv.ParseInt(f[6], 10, 64)
			return d
		}
	}
	t.Fatalf("wg show %s dump: no peer %s:\n%s", name, key, out)
	return peerDump{}
}

// TestReconcileRecorderNetns is TestReconcileRecorder on the real system: in a
// namespace of its own, the engine runs in this process on the real userspace
// device and the real netlink host, through a Recorder; the peer B, in a second
// namespace on a veth (underlay 198.18.0.0/15), runs wgnet's userspace backend
// through the wgnet binary. With pings flowing to B, the interface is changed
// (a peer added, one removed, one's prefixes changed, an address, a routed
// prefix, forwarding off) and reconciled back: the calls made are exactly each
// plan's, and `wg show dump` shows B's latest handshake unchanged and its
// counters only growing.
func TestReconcileRecorderNetns(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "wireguard-tools", "wg")
	netnstest.NeedsTool(t, "iputils-ping", "ping")
	if os.Getenv(binEnv) == "" {
		t.Setenv(binEnv, wgnet(t))
	}
	if !netnstest.InNetns(t) {
		return
	}
	bin := os.Getenv(binEnv)
	tag := netnstest.Unique(6)
	ifA, ifB := "wgra"+tag, "wgrb"+tag
	dirA, dirB, cfgDir := t.TempDir(), t.TempDir(), t.TempDir()

	// This process's namespace is A; B is new, on a veth made here and moved.
	nsB := netnstest.New(t, "b")
	sh := func(argv ...string) {
		t.Helper()
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	sh("ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", nsB.Name)
	sh("ip", "addr", "add", "198.18.0.1/15", "dev", "ul0")
	sh("ip", "link", "set", "ul0", "up")
	nsB.Run(t, "ip", "addr", "add", "198.18.0.2/15", "dev", "ul0")
	nsB.Run(t, "ip", "link", "set", "ul0", "up")

	key := func() wgkey.Private {
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	privA, privB := key(), key()
	c1, c2, c3 := key().Public(), key().Public(), key().Public()
	confB := filepath.Join(cfgDir, ifB+".conf")
	if err := os.WriteFile(confB, []byte(fmt.Sprintf(`[Interface]
PrivateKey = %s
ListenPort = 51820
Address = 10.99.0.2/24

[Peer]
PublicKey = %s
AllowedIPs = 10.99.0.1/32
Endpoint = 198.18.0.1:51820
`, privB.Base64(), privA.Public())), 0o600); err != nil {
		t.Fatal(err)
	}
	wgnetB := func(args ...string) {
		t.Helper()
		out, err := nsB.Try(append([]string{"env", "WGNET_STATE_DIR=" + dirB, bin}, args...)...)
		if err != nil {
			t.Fatalf("wgnet %s in B: %v", strings.Join(args, " "), err)
		}
		t.Logf("wgnet %s in B:\n%s", strings.Join(args, " "), out)
	}
	wgnetB("up", "--backend", "userspace", confB)
	t.Cleanup(func() { _, _ = nsB.Try("env", "WGNET_STATE_DIR="+dirB, bin, "down", ifB) })

	port := uint16(51820)
	host := func(edit func(h *intent.Host)) *intent.Host {
		h := &intent.Host{
			PrivateKey: privA,
			ListenPort: &port,
			Addresses:  []netip.Prefix{netip.MustParsePrefix("10.99.0.1/24"), netip.MustParsePrefix("fd00:99::1/64")},
			Peers: []wgconf.Peer{
				{Name: "b", PublicKey: privB.Public(), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/32")}, Endpoint: &wgconf.Endpoint{Host: "198.18.0.2", Port: 51820}},
				{Name: "c1", PublicKey: c1, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.99.0.3/32"), netip.MustParsePrefix("10.10.3.0/24")}},
				{Name: "c2", PublicKey: c2, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.99.0.4/32")}},
			},
			Forward:  intent.Forwarding{V4: true},
			Firewall: intent.Firewall{ClampMSS: true},
		}
		if edit != nil {
			edit(h)
		}
		return h
	}
	changed := host(func(h *intent.Host) {
		h.Peers = slices.DeleteFunc(h.Peers, func(p wgconf.Peer) bool { return p.PublicKey == c2 }) // remove one
		h.Peers = append(h.Peers, wgconf.Peer{Name: "c3", PublicKey: c3, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.99.0.5/32")}})
		h.Peers[1].AllowedIPs = []netip.Prefix{netip.MustParsePrefix("10.99.0.3/32"), netip.MustParsePrefix("10.10.5.0/24")} // c1: prefixes, a routed one
		h.Addresses[1] = netip.MustParsePrefix("fd00:99::11/64")                                                             // an address
		h.Forward, h.Firewall = intent.Forwarding{}, intent.Firewall{}                                                       // forwarding off
	})

	rec := &up.Recorder{}
	opts := up.SyncOptions{
		Options: up.Options{
			Backend:  up.BackendUserspace,
			StateDir: dirA,
			Host:     rec.Host(hostnet.New()),
			Devices:  rec.Devices(&up.SystemDevices{StateDir: dirA, Executable: bin}),
			Log:      tWriter{t},
		},
		Open: rec.Open(nil),
	}
	t.Cleanup(func() {
		if err := up.Down(context.Background(), ifA, opts.Options); err != nil {
			t.Errorf("down %s: %v", ifA, err)
		}
	})
	reconcile := func(what string, h *intent.Host) *up.Plan {
		t.Helper()
		plan, err := up.Reconcile(context.Background(), up.Request{Name: ifA, Host: h}, opts)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if diff := cmp.Diff(up.ExpectedCalls(plan), rec.Take()); diff != "" {
			t.Errorf("%s: calls made, against the plan (-plan +made):\n%s", what, diff)
		}
		for _, c := range plan.Peers {
			if what != "up" && c.PublicKey == privB.Public() {
				t.Errorf("%s: the plan changes peer b, which did not change: %+v", what, c)
			}
		}
		return plan
	}
	pingB := func() {
		t.Helper()
		if out, err := exec.Command("ping", "-c", "5", "-i", "0.1", "-W", "2", "10.99.0.2").CombinedOutput(); err != nil {
			t.Fatalf("ping B: %v: %s", err, out)
		}
	}

	reconcile("up", host(nil))
	pingB()
	before := wgDump(t, ifA, privB.Public())
	if before.handshake == 0 || before.rx == 0 {
		t.Fatalf("no handshake or traffic with B: %+v", before)
	}
	t.Logf("B before: latest handshake %d, rx %d, tx %d", before.handshake, before.rx, before.tx)
	last := before
	for _, step := range []struct {
		what string
		h    *intent.Host
	}{{"change", changed}, {"back", host(nil)}} {
		if plan := reconcile(step.what, step.h); plan.Empty() {
			t.Fatalf("%s: empty plan", step.what)
		}
		now := wgDump(t, ifA, privB.Public())
		if now.handshake != before.handshake || now.rx < last.rx || now.tx < last.tx {
			t.Errorf("%s: B's session was disturbed: %+v, before %+v", step.what, now, last)
		}
		pingB()
		now = wgDump(t, ifA, privB.Public())
		t.Logf("B after %s and pings: latest handshake %d, rx %d, tx %d", step.what, now.handshake, now.rx, now.tx)
		if now.handshake != before.handshake || now.rx <= last.rx || now.tx <= last.tx {
			t.Errorf("%s: B's counters did not grow on the same session: %+v, before %+v", step.what, now, last)
		}
		last = now
		if plan := reconcile(step.what+" again", step.h); !plan.Empty() {
			t.Errorf("%s again: plan not empty: %+v", step.what, plan)
		}
	}
}

// tWriter logs the engine's progress lines.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
