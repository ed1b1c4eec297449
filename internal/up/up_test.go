package up

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/device/devicetest"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/hostnet/hostnettest"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// fakeDevices makes devicetest.Fake devices whose links live in a
// hostnettest.Fake, like a real backend's TUN or kernel link.
type fakeDevices struct {
	host *hostnettest.Fake
	devs map[string]*devicetest.Fake
	// failCreate makes Create fail; failConfigure makes the new device's first
	// Configure fail.
	failCreate, failConfigure error
	// oldKernel creates links without force_forwarding (Linux before 6.17).
	oldKernel bool
}

func (f *fakeDevices) Create(_ context.Context, req CreateRequest) (device.Device, Created, error) {
	if f.failCreate != nil {
		return nil, Created{}, f.failCreate
	}
	f.host.AddLink(req.Name, "tun", req.MTU)
	if f.oldKernel {
		f.host.SetSysctlValue("net/ipv6/conf/"+req.Name+"/force_forwarding", "")
	}
	d := devicetest.NewFake(req.Name)
	if f.failConfigure != nil {
		d.SetFailConfigure(f.failConfigure)
	}
	f.devs[req.Name] = d
	return handle{d}, Created{Backend: device.BackendUserspace, PID: 4242}, nil
}

// handle is a handle on a fake device, like device.Open's: closing it leaves the
// device running.
type handle struct{ *devicetest.Fake }

func (handle) Close() error { return nil }

func (f *fakeDevices) Remove(c Created, name string) error {
	f.host.DelLink(name)
	delete(f.devs, name)
	return nil
}

type fixture struct {
	host    *hostnettest.Fake
	devs    *fakeDevices
	opts    Options
	hooks   []string
	failing string // a hook command that fails
	log     bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	fx := &fixture{host: hostnettest.NewFake()}
	fx.host.AddLink("eth0", "veth", 1500)
	fx.host.SetSysctlValue("net/ipv6/conf/eth0/accept_ra", "1")
	if err := fx.host.AddRoute(hostnet.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "eth0"}); err != nil {
		t.Fatal(err)
	}
	fx.devs = &fakeDevices{host: fx.host, devs: map[string]*devicetest.Fake{}}
	fx.opts = Options{
		StateDir: t.TempDir(),
		Host:     fx.host,
		Devices:  fx.devs,
		Log:      &fx.log,
		RunHook: func(_ context.Context, cmd string) error {
			fx.hooks = append(fx.hooks, cmd)
			if cmd == fx.failing {
				return errors.New("exit status 1")
			}
			return nil
		},
		Resolve: func(_ context.Context, host string) (netip.Addr, error) {
			if host == "hub.example" {
				return netip.MustParseAddr("198.18.0.1"), nil
			}
			return netip.Addr{}, errors.New("no such host")
		},
	}
	return fx
}

func mustKey(t testing.TB) (wgkey.Private, string) {
	t.Helper()
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k, k.Base64()
}

// hubConf is a hub config with a routed subnet behind one spoke, forwarding
// hooks as the compiler writes them, and hooks of every kind.
func hubConf(t *testing.T) (*wgconf.Config, wgkey.Key) {
	t.Helper()
	_, priv := mustKey(t)
	s1, _ := mustKey(t)
	s2, _ := mustKey(t)
	src := `[Interface]
PrivateKey = ` + priv + `
ListenPort = 51820
Address = 10.99.0.1/24, fd00:99::1/64
PreUp = echo pre-up %i
PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1
PostUp = sysctl -q -w net.ipv6.conf.%i.force_forwarding=1
PostUp = echo post-up %i
PreDown = echo pre-down %i
PostDown = echo post-down %i

# s1
[Peer]
PublicKey = ` + s1.Public().String() + `
AllowedIPs = 10.99.0.2/32, 10.10.2.0/24, fd00:10:2::/64
Endpoint = hub.example:51820

# s2
[Peer]
PublicKey = ` + s2.Public().String() + `
AllowedIPs = 10.99.0.3/32
`
	c, err := wgconf.Parse("wg0.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c, s1.Public()
}

var cmpOpts = []cmp.Option{cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{}, netip.AddrPort{}), cmpopts.EquateEmpty()}

func TestUpDownRestores(t *testing.T) {
	for _, old := range []bool{false, true} {
		name := "force_forwarding"
		if old {
			name = "global v6 forwarding (before Linux 6.17)"
		}
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t)
			fx.devs.oldKernel = old
			cfg, s1 := hubConf(t)
			before := fx.host.Snapshot()
			st, err := Up(context.Background(), req("wg0", cfg, false, false), fx.opts)
			if err != nil {
				t.Fatalf("Up: %v\n%s", err, fx.log.String())
			}
			if !st.Complete || st.Backend != device.BackendUserspace || st.PID != 4242 {
				t.Errorf("state: %+v", st)
			}
			// What up did, as the fake host sees it.
			snap := fx.host.Snapshot()
			wantRoutes := []hostnet.Route{ // longest prefix first, like wg-quick
				{Dst: netip.MustParsePrefix("fd00:10:2::/64"), Dev: "wg0"},
				{Dst: netip.MustParsePrefix("10.10.2.0/24"), Dev: "wg0"},
			}
			if diff := cmp.Diff(wantRoutes, st.Routes, cmpOpts...); diff != "" {
				t.Errorf("routes added (-want +got):\n%s", diff)
			}
			if l := snap.Links["wg0"]; !l.Up || l.MTU != 1420 {
				t.Errorf("link: %+v, want up with MTU 1500-80", l)
			}
			if got := snap.Sysctls["net/ipv4/conf/wg0/forwarding"]; got != "1" {
				t.Errorf("v4 forwarding on wg0 = %q", got)
			}
			if snap.Sysctls["net/ipv4/ip_forward"] != "0" {
				t.Errorf("up turned on global IPv4 forwarding")
			}
			v6key, v6global := "net/ipv6/conf/wg0/force_forwarding", "0"
			if old {
				v6key, v6global = "net/ipv6/conf/all/forwarding", "1"
				if got := snap.Sysctls["net/ipv6/conf/eth0/accept_ra"]; got != "2" {
					t.Errorf("accept_ra on eth0 = %q, want 2 with global forwarding", got)
				}
			}
			if snap.Sysctls[v6key] != "1" || snap.Sysctls["net/ipv6/conf/all/forwarding"] != v6global {
				t.Errorf("v6 forwarding: %s=%q, all=%q", v6key, snap.Sysctls[v6key], snap.Sysctls["net/ipv6/conf/all/forwarding"])
			}
			if fw := snap.Firewalls["wgnet-wg0"]; !cmp.Equal(fw.ClampMSS, []string{"wg0"}) {
				t.Errorf("firewall: %+v", snap.Firewalls)
			}
			dev, err := fx.devs.devs["wg0"].State()
			if err != nil {
				t.Fatal(err)
			}
			p, ok := dev.Peer(s1)
			if !ok || p.Endpoint != netip.MustParseAddrPort("198.18.0.1:51820") || dev.ListenPort != 51820 {
				t.Errorf("device: %+v", dev)
			}
			if diff := cmp.Diff([]string{"echo pre-up wg0", "echo post-up wg0"}, fx.hooks); diff != "" {
				t.Errorf("hooks run by up (-want +got):\n%s", diff)
			}
			if st.Peers[s1.String()] != "s1" {
				t.Errorf("peer names: %v", st.Peers)
			}

			fx.hooks = nil
			if err := Down(context.Background(), "wg0", fx.opts); err != nil {
				t.Fatalf("Down: %v", err)
			}
			if diff := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); diff != "" {
				t.Errorf("down did not restore the host (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"echo pre-down wg0", "echo post-down wg0"}, fx.hooks); diff != "" {
				t.Errorf("hooks run by down (-want +got):\n%s", diff)
			}
			if _, err := LoadState(fx.opts.StateDir, "wg0"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state file left: %v", err)
			}
		})
	}
}

// TestUpFailureUndoesEverything fails each step of up in turn and checks that the
// host is exactly as before and no state file is left.
func TestUpFailureUndoesEverything(t *testing.T) {
	boom := errors.New("injected failure")
	for _, tc := range []struct {
		step string
		fail func(fx *fixture)
	}{
		{"create", func(fx *fixture) { fx.devs.failCreate = boom }},
		{"configure", func(fx *fixture) { fx.devs.failConfigure = boom }},
		{"address", func(fx *fixture) { fx.host.FailOn("AddAddr", boom) }},
		{"mtu", func(fx *fixture) { fx.host.FailOn("SetMTU", boom) }},
		{"link up", func(fx *fixture) { fx.host.FailOn("SetUp", boom) }},
		{"route", func(fx *fixture) { fx.host.FailOn("AddRoute", boom) }},
		{"sysctl", func(fx *fixture) { fx.host.FailOn("SetSysctl", boom) }},
		{"firewall", func(fx *fixture) { fx.host.FailOn("ApplyFirewall", boom) }},
		{"PostUp", func(fx *fixture) { fx.failing = "echo post-up wg0" }},
	} {
		t.Run(tc.step, func(t *testing.T) {
			fx := newFixture(t)
			cfg, _ := hubConf(t)
			before := fx.host.Snapshot()
			tc.fail(fx)
			_, err := Up(context.Background(), req("wg0", cfg, false, false), fx.opts)
			if err == nil {
				t.Fatal("Up succeeded despite the failure")
			}
			if !strings.Contains(err.Error(), "everything undone") {
				t.Errorf("error does not say it undid everything: %v", err)
			}
			if diff := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); diff != "" {
				t.Errorf("host changed after a failed up (-before +after):\n%s", diff)
			}
			if _, err := LoadState(fx.opts.StateDir, "wg0"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state file left: %v", err)
			}
			if len(fx.devs.devs) != 0 {
				t.Errorf("device left: %v", fx.devs.devs)
			}
		})
	}
}

func TestUpRefusesBeforeTouching(t *testing.T) {
	_, priv := mustKey(t)
	p1, _ := mustKey(t)
	p2, _ := mustKey(t)
	head := "[Interface]\nPrivateKey = " + priv + "\nAddress = 10.99.0.1/24\n"
	peer := func(k wgkey.Private, extra string) string {
		return "\n[Peer]\nPublicKey = " + k.Public().String() + "\n" + extra
	}
	for _, tc := range []struct {
		name, name2, src string
		want             []string
	}{
		{"table name", "wg0", head + "Table = vpn\n", []string{"wg0.conf:4: Table = vpn"}},
		{"same prefix on two peers", "wg0", head + peer(p1, "AllowedIPs = 10.10.0.0/16\n") + peer(p2, "AllowedIPs = 10.10.0.0/16\n"),
			[]string{"AllowedIPs 10.10.0.0/16 is also given to"}},
		{"same peer twice", "wg0", head + peer(p1, "") + peer(p1, ""), []string{"public key given to two peers"}},
		{"unresolvable endpoint", "wg0", head + peer(p1, "Endpoint = nowhere.example:51820\n"), []string{"Endpoint nowhere.example:51820: no such host"}},
		{"bad name", "wg0/../x", head, []string{`interface name "wg0/../x"`}},
		{"every problem at once", "wg0", head + "Table = vpn\nMTU = 100\n", []string{"Table", "MTU"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			fx.opts.RtTables = []string{t.TempDir()}
			cfg, err := wgconf.Parse("wg0.conf", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			before, calls := fx.host.Snapshot(), len(fx.host.Calls())
			_, err = Up(context.Background(), req(tc.name2, cfg, false, false), fx.opts)
			if err == nil {
				t.Fatal("Up accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if diff := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); diff != "" {
				t.Errorf("a refused up touched the host (-before +after):\n%s", diff)
			}
			if len(fx.host.Calls()) != calls || len(fx.hooks) != 0 {
				t.Errorf("calls: %v, hooks: %v", fx.host.Calls()[calls:], fx.hooks)
			}
		})
	}
}

func TestUpTwiceAndDownOfStrangers(t *testing.T) {
	fx := newFixture(t)
	cfg, _ := hubConf(t)
	if _, err := Up(context.Background(), req("wg0", cfg, false, false), fx.opts); err != nil {
		t.Fatal(err)
	}
	if _, err := Up(context.Background(), req("wg0", cfg, false, false), fx.opts); err == nil || !strings.Contains(err.Error(), "already up") {
		t.Errorf("second up: %v, want already up", err)
	}
	fx.host.AddLink("wg9", "wireguard", 1420)
	if err := Down(context.Background(), "wg9", fx.opts); err == nil || !strings.Contains(err.Error(), "not brought up by wgnet") {
		t.Errorf("down of a wg-quick interface: %v", err)
	}
	if err := Down(context.Background(), "wg7", fx.opts); err == nil || !strings.Contains(err.Error(), "not up") {
		t.Errorf("down of nothing: %v", err)
	}
}

func TestNoForwarding(t *testing.T) {
	fx := newFixture(t)
	fx.opts.NoForwarding = true
	cfg, _ := hubConf(t)
	st, err := Up(context.Background(), req("wg0", cfg, true, false), fx.opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sysctls) != 0 || st.Firewall != "" {
		t.Errorf("--no-forwarding changed sysctls %v, firewall %q", st.Sysctls, st.Firewall)
	}
}

// TestRoutesLikeWgQuick checks plan.routes against a slow, obvious version of
// wg-quick's loop: for each prefix, longest first, add it unless a route through
// the interface already contains it.
func TestRoutesLikeWgQuick(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		allowed  []netip.Prefix
		existing []netip.Prefix
		want     []netip.Prefix
	}{
		{"covered by the address route", pfx("10.99.0.2/32", "10.10.2.0/24"), pfx("10.99.0.0/24"), pfx("10.10.2.0/24")},
		{"nested prefixes both added", pfx("10.10.0.0/16", "10.10.2.0/24"), nil, pfx("10.10.2.0/24", "10.10.0.0/16")},
		{"v6 and v4 apart", pfx("fd00::/64", "10.0.0.0/8"), pfx("fd00::/8"), pfx("10.0.0.0/8")},
		{"exact route exists", pfx("10.10.2.0/24"), pfx("10.10.2.0/24"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &plan{autoTable: true}
			for _, a := range tc.allowed {
				p.allowed = append(p.allowed, a)
			}
			// makePlan sorts; do the same here.
			sortLongestFirst(p.allowed)
			got := p.routes(tc.existing)
			if diff := cmp.Diff(tc.want, got, cmpOpts...); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAutoMTU(t *testing.T) {
	for _, tc := range []struct {
		endpoints []int
		def, want int
	}{
		{nil, 0, 1420},
		{nil, 9000, 8920},
		{[]int{1500, 9000}, 1400, 8920}, // wg-quick takes the largest
		{[]int{0}, 1460, 1380},
	} {
		if got := autoMTU(tc.endpoints, tc.def); got != tc.want {
			t.Errorf("autoMTU(%v, %d) = %d, want %d", tc.endpoints, tc.def, got, tc.want)
		}
	}
}

func TestPeerState(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		p    device.PeerState
		want string
	}{
		{"fresh handshake", device.PeerState{LastHandshake: now.Add(-time.Minute), RxBytes: 92, TxBytes: 148}, PeerUp},
		{"never asked", device.PeerState{}, PeerIdle},
		{"sent, nothing back", device.PeerState{TxBytes: 148}, PeerNoReply},
		{"old handshake, quiet since", device.PeerState{LastHandshake: now.Add(-10 * time.Minute), RxBytes: 1, TxBytes: 1}, PeerIdle},
		{"handshake just over 3 minutes", device.PeerState{LastHandshake: now.Add(-181 * time.Second), RxBytes: 1, TxBytes: 1}, PeerIdle},
	} {
		if got := PeerState(tc.p, now); got != tc.want {
			t.Errorf("%s: PeerState = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestWriteText(t *testing.T) {
	age := int64(3725)
	var b strings.Builder
	err := WriteText(&b, []Interface{{
		Name: "wg0", Backend: "userspace", Wgnet: true, PID: 42, PublicKey: "PUB=", ListenPort: 51820,
		Peers: []Peer{{
			Name: "s1", PublicKey: "S1=", Endpoint: "198.18.0.2:51820", State: PeerUp,
			AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("10.99.0.2/32")},
			HandshakeAgeSeconds: &age, RxBytes: 1536, TxBytes: 3 << 20, PersistentKeepalive: 25,
		}, {PublicKey: "S2=", State: PeerIdle}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `interface: wg0 (userspace, wgnet pid 42)
  public key: PUB=
  listening port: 51820

peer: s1 (S1=)
  state: up
  endpoint: 198.18.0.2:51820
  allowed ips: 10.99.0.2/32
  latest handshake: 1 hour, 2 minutes, 5 seconds ago
  transfer: 1.50 KiB received, 3.00 MiB sent
  persistent keepalive: every 25 seconds

peer: S2=
  state: idle
  allowed ips: (none)
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("WriteText (-want +got):\n%s", diff)
	}
}

// TestDownKeepsSharedForwarding: before Linux 6.17 IPv6 forwarding is host-wide.
// Taking one of two forwarding interfaces down must leave it on for the other,
// and the last one down restores what was there before either.
func TestDownKeepsSharedForwarding(t *testing.T) {
	fx := newFixture(t)
	fx.devs.oldKernel = true
	before := fx.host.Snapshot()
	conf := func(n int) *wgconf.Config {
		_, priv := mustKey(t)
		peer, _ := mustKey(t)
		src := fmt.Sprintf(`[Interface]
PrivateKey = %s
ListenPort = %d
Address = 10.9%d.0.1/24, fd00:9%d::1/64
PostUp = sysctl -q -w net.ipv6.conf.all.forwarding=1

[Peer]
PublicKey = %s
AllowedIPs = 10.9%d.0.2/32, fd00:1%d::/64
`, priv, 51820+n, n, n, peer.Public(), n, n)
		c, err := wgconf.Parse(fmt.Sprintf("wg%d.conf", n), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for n := 0; n < 2; n++ {
		name := fmt.Sprintf("wg%d", n)
		if _, err := Up(context.Background(), req(name, conf(n), false, true), fx.opts); err != nil {
			t.Fatalf("Up %s: %v\n%s", name, err, fx.log.String())
		}
	}
	all := "net/ipv6/conf/all/forwarding"
	if got := fx.host.Snapshot().Sysctls[all]; got != "1" {
		t.Fatalf("after both up: %s=%q, want 1", all, got)
	}
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if got := fx.host.Snapshot().Sysctls[all]; got != "1" {
		t.Errorf("after down wg0 with wg1 still up: %s=%q, want 1\n%s", all, got, fx.log.String())
	}
	if err := Down(context.Background(), "wg1", fx.opts); err != nil {
		t.Fatal(err)
	}
	after := fx.host.Snapshot()
	for _, k := range []string{all, "net/ipv6/conf/eth0/accept_ra"} {
		if after.Sysctls[k] != before.Sysctls[k] {
			t.Errorf("after both down: %s=%q, want %q as before", k, after.Sysctls[k], before.Sysctls[k])
		}
	}
}

func TestDownDropsPendingConfirm(t *testing.T) {
	fx := newFixture(t)
	cfg, _ := hubConf(t)
	if _, err := Up(context.Background(), req("wg0", cfg, false, false), fx.opts); err != nil {
		t.Fatal(err)
	}
	pending := pendingPath(fx.opts.StateDir, "wg0")
	if err := os.WriteFile(pending, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pending); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pending confirm still there after down: %v", err)
	}
}

// TestUpAfterForeignLinkDel is issue 10: `ip link del wg0` (or `wg-quick down
// wg0`) leaves wgnet's record, nftables table and forwarding sysctls behind, and
// the next up refused ("already up"). Up now removes what the record lists,
// says so in one line, and brings the interface up as before; down then restores
// the host.
func TestUpAfterForeignLinkDel(t *testing.T) {
	fx := newFixture(t)
	cfg, _ := hubConf(t)
	before := fx.host.Snapshot()
	if _, err := Up(context.Background(), req("wg0", cfg, false, false), fx.opts); err != nil {
		t.Fatal(err)
	}
	up1 := fx.host.Snapshot()
	fx.host.DelLink("wg0") // ip link del wg0
	delete(fx.devs.devs, "wg0")
	if fw := fx.host.Snapshot().Firewalls; len(fw) == 0 {
		t.Fatal("test needs a firewall table left after ip link del")
	}
	fx.hooks = nil
	fx.log.Reset()
	st, err := Up(context.Background(), req("wg0", cfg, false, false), fx.opts)
	if err != nil {
		t.Fatalf("Up after ip link del: %v\n%s", err, fx.log.String())
	}
	if n := strings.Count(fx.log.String(), "is gone but its record"); n != 1 || !st.Complete {
		t.Errorf("%d lines about the stale record, complete=%v:\n%s", n, st.Complete, fx.log.String())
	}
	if diff := cmp.Diff([]string{"echo pre-up wg0", "echo post-up wg0"}, fx.hooks); diff != "" {
		t.Errorf("hooks (-want +got), down hooks of the stale record must not run:\n%s", diff)
	}
	if diff := cmp.Diff(up1, fx.host.Snapshot(), append(cmpOpts, cmpopts.IgnoreFields(hostnet.Link{}, "Index"))...); diff != "" {
		t.Errorf("host after the second up (-first +second):\n%s", diff)
	}
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); diff != "" {
		t.Errorf("down did not restore the host (-before +after):\n%s", diff)
	}
}
