package live

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/device/devicetest"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/hostnet/hostnettest"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// fakeProber answers route lookups by longest prefix over routes, pings by a
// path MTU per destination, names from a map.
type fakeProber struct {
	routes  map[netip.Prefix]Route
	rules   Ruleset
	pathMTU map[netip.Addr]int // absent: no reply
	names   map[string][]netip.Addr
	pings   int
}

func (f *fakeProber) RouteGet(dst netip.Addr, mark int) (Route, error) {
	best, bits := Route{}, -1
	for p, r := range f.routes {
		if p.Contains(dst) && p.Bits() > bits {
			best, bits = r, p.Bits()
		}
	}
	return best, nil
}

func (f *fakeProber) Ruleset(context.Context) (Ruleset, error) { return f.rules, nil }

func (f *fakeProber) Ping(_ context.Context, dst netip.Addr, size int) (bool, error) {
	f.pings++
	m, ok := f.pathMTU[dst]
	return ok && size+icmpHeader(dst) <= m, nil
}

func (f *fakeProber) LookupHost(_ context.Context, h string) ([]netip.Addr, error) {
	return f.names[h], nil
}

// counters sets what devicetest's fake does not keep: handshakes and bytes.
type counters struct {
	device.Device
	set func(*device.State)
}

func (c counters) State() (*device.State, error) {
	st, err := c.Device.State()
	if err == nil {
		c.set(st)
	}
	return st, err
}

var (
	now   = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	pre   = netip.MustParsePrefix
	addr  = netip.MustParseAddr
	kHub  = mustKey()
	kPeer = mustKey()
)

func mustKey() wgkey.Key {
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		panic(err)
	}
	return k.Public()
}

// world is a healthy spoke: wg0 (overlay 10.99.0.2, forwarding), ul0 towards
// the hub at 198.18.0.1, ctr0 in front of its routed subnet 10.10.2.0/24; the
// hub peer up, its path MTU 1500.
type world struct {
	host  *hostnettest.Fake
	dev   *devicetest.Fake
	probe *fakeProber
	ex    Expect
	peer  func(*device.PeerState)
}

func healthy(t *testing.T) *world {
	h := hostnettest.NewFake()
	h.AddLink("wg0", "tun", 1420)
	h.AddLink("ul0", "veth", 1500)
	h.AddLink("ctr0", "veth", 1500)
	for _, r := range []hostnet.Route{{Dst: pre("198.18.0.0/24"), Dev: "ul0"}, {Dst: pre("10.10.2.0/24"), Dev: "ctr0"}, {Dst: pre("10.99.0.0/24"), Dev: "wg0"}} {
		if err := h.AddRoute(r); err != nil {
			t.Fatal(err)
		}
	}
	h.SetSysctlValue("net/ipv4/conf/all/rp_filter", "1")
	h.SetSysctlValue("net/ipv4/conf/wg0/forwarding", "1")
	h.SetSysctlValue("net/ipv4/conf/ctr0/forwarding", "1")
	d := devicetest.NewFake("wg0")
	ep := netip.MustParseAddrPort("198.18.0.1:51820")
	ka := 25 * time.Second
	if err := d.Configure(device.Config{Peers: []device.PeerConfig{{PublicKey: kHub, Endpoint: &ep, PersistentKeepalive: &ka,
		AllowedIPs: []netip.Prefix{pre("10.99.0.0/24"), pre("10.10.1.0/24")}}}}); err != nil {
		t.Fatal(err)
	}
	return &world{
		host: h, dev: d,
		probe: &fakeProber{
			routes: map[netip.Prefix]Route{
				pre("198.18.0.0/24"): {Dev: "ul0", MTU: 1500},
				pre("10.10.2.0/24"):  {Dev: "ctr0", MTU: 1500},
				pre("10.99.0.0/24"):  {Dev: "wg0", MTU: 1420},
				pre("10.10.1.0/24"):  {Dev: "wg0", MTU: 1420},
			},
			pathMTU: map[netip.Addr]int{addr("198.18.0.1"): 1500},
		},
		ex: Expect{Name: "wg0", Relay: true, Names: map[string]string{kHub.String(): "hub"},
			Routes:  []hostnet.Route{{Dst: pre("10.10.1.0/24"), Dev: "wg0"}},
			Started: now.Add(-time.Hour)},
		peer: func(p *device.PeerState) { p.LastHandshake, p.TxBytes, p.RxBytes = now.Add(-time.Minute), 1000, 1000 },
	}
}

func (w *world) check(t *testing.T) diag.List {
	t.Helper()
	dev := counters{w.dev, func(st *device.State) {
		for i := range st.Peers {
			w.peer(&st.Peers[i])
		}
	}}
	l, err := Check(context.Background(), w.ex, dev, w.host, w.probe, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func codes(l diag.List) []string {
	var out []string
	for _, d := range l {
		out = append(out, d.Code)
	}
	return out
}

// TestCheck plants one fault at a time in the healthy world and wants exactly
// its code, with the fixing command in the message.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(*world)
		codes []string
		fix   string
	}{
		{"healthy", func(*world) {}, nil, ""},
		{"forwarding off in front of the subnet", func(w *world) { w.host.SetSysctlValue("net/ipv4/conf/ctr0/forwarding", "0") },
			[]string{CodeForwarding}, "sysctl -w net.ipv4.conf.ctr0.forwarding=1"},
		{"forwarding off on the tunnel", func(w *world) { w.host.SetSysctlValue("net/ipv4/conf/wg0/forwarding", "0") },
			[]string{CodeForwarding}, "sysctl -w net.ipv4.conf.wg0.forwarding=1"},
		{"explicit routed subnet", func(w *world) {
			w.ex.Routed = []netip.Prefix{pre("10.10.2.0/24")}
			w.host.SetSysctlValue("net/ipv4/conf/ctr0/forwarding", "0")
		}, []string{CodeForwarding}, "net.ipv4.conf.ctr0.forwarding=1"},
		{"endpoint stolen into the tunnel", func(w *world) { w.probe.routes[pre("198.18.0.1/32")] = Route{Dev: "wg0", MTU: 1420} },
			[]string{CodeEndpointLoop}, "198.18.0.1"},
		{"no route to the endpoint", func(w *world) { delete(w.probe.routes, pre("198.18.0.0/24")) },
			[]string{CodeEndpointRoute}, "ip route add 198.18.0.1/32"},
		{"AllowedIPs route taken by another link", func(w *world) { w.probe.routes[pre("10.10.1.0/25")] = Route{Dev: "ul0"} },
			[]string{CodeRoute, CodeRPFilter}, "ip route replace 10.10.1.0/24 dev wg0"},
		{"recorded route gone, rp_filter strict", func(w *world) { delete(w.probe.routes, pre("10.10.1.0/24")) },
			[]string{CodeRoute, CodeRPFilter}, "rp_filter=2"},
		{"rp_filter loose is fine", func(w *world) {
			w.host.SetSysctlValue("net/ipv4/conf/all/rp_filter", "2")
			w.ex.Routes = nil
			delete(w.probe.routes, pre("10.10.1.0/24"))
		}, nil, ""},
		{"path MTU smaller than the tunnel needs", func(w *world) { w.probe.pathMTU[addr("198.18.0.1")] = 1400 },
			[]string{CodeMTU}, "mtu 1340"},
		{"route MTU smaller than the tunnel needs", func(w *world) { w.probe.routes[pre("198.18.0.0/24")] = Route{Dev: "ul0", MTU: 1400} },
			[]string{CodeMTU}, "mtu 1340"},
		{"peer answers no ping", func(w *world) { delete(w.probe.pathMTU, addr("198.18.0.1")) }, nil, ""},
		{"stale handshake with keepalive", func(w *world) {
			w.peer = func(p *device.PeerState) { p.LastHandshake, p.TxBytes = now.Add(-10*time.Minute), 500 }
		}, []string{CodeStaleHandshake}, "10m0s ago"},
		{"never a handshake", func(w *world) { w.peer = func(p *device.PeerState) { p.TxBytes = 148 } },
			[]string{CodeStaleHandshake}, "no handshake ever"},
		{"never a handshake, just up", func(w *world) {
			w.peer = func(p *device.PeerState) { p.TxBytes = 148 }
			w.ex.Started = now.Add(-5 * time.Second)
		}, nil, ""},
		{"handshake before the key change", func(w *world) { w.ex.KeyChanged = now.Add(-30 * time.Second) },
			[]string{CodeKeyChange}, "new public key"},
		{"endpoint name resolves elsewhere", func(w *world) {
			w.ex.Endpoints = map[wgkey.Key]string{kHub: "hub.example:51820"}
			w.probe.names = map[string][]netip.Addr{"hub.example": {addr("198.18.0.7")}}
		}, []string{CodeEndpointDNS}, "endpoint 198.18.0.7:51820"},
		{"endpoint name still right", func(w *world) {
			w.ex.Endpoints = map[wgkey.Key]string{kHub: "hub.example:51820"}
			w.probe.names = map[string][]netip.Addr{"hub.example": {addr("198.18.0.1")}}
		}, nil, ""},
		{"docker 20.10: FORWARD drop, empty DOCKER-USER, masquerade", func(w *world) {
			w.probe.rules.IptablesSave = docker2010
		}, []string{CodeForwardDrop, CodeMasquerade}, "`host_firewall: docker`"},
		{"docker 20.10 opened by wgnet's opt-in (its rules, as iptables-save prints them)", func(w *world) {
			w.ex.HostFirewall = "docker"
			w.probe.rules.IptablesSave = strings.Replace(strings.Replace(docker2010,
				"-A DOCKER-USER -j RETURN", "-A DOCKER-USER -d 10.10.2.0/24 -i wg0 -m comment --comment \"wgnet:wg0\" -j ACCEPT\n-A DOCKER-USER -s 10.10.2.0/24 -o wg0 -m comment --comment \"wgnet:wg0\" -j ACCEPT\n-A DOCKER-USER -j RETURN", 1),
				"-A POSTROUTING -s 10.10.2.0/24", "-A POSTROUTING -s 10.10.2.0/24 -o wg0 -m comment --comment \"wgnet:wg0\" -j RETURN\n-A POSTROUTING -s 10.10.2.0/24", 1)
		}, nil, ""},
		{"docker 20.10, opted in, wgnet's rules gone", func(w *world) {
			w.ex.HostFirewall = "docker"
			w.probe.rules.IptablesSave = docker2010
		}, []string{CodeForwardDrop, CodeMasquerade}, "run `wgnet sync wg0` to re-assert them"},
		{"docker 20.10 opened in DOCKER-USER, RETURN before masquerade", func(w *world) {
			w.probe.rules.IptablesSave = strings.Replace(strings.Replace(docker2010,
				"-A DOCKER-USER -j RETURN", "-A DOCKER-USER -i wg0 -j ACCEPT\n-A DOCKER-USER -j RETURN", 1),
				"-A POSTROUTING -s 10.10.2.0/24", "-A POSTROUTING -s 10.10.2.0/24 -o wg0 -j RETURN\n-A POSTROUTING -s 10.10.2.0/24", 1)
		}, nil, ""},
		{"docker 28 raw drop", func(w *world) { w.probe.rules.IptablesSave = docker28raw },
			[]string{CodeRawDrop}, "trusted_host_interfaces=wg0"},
		{"nft forward drop, accept only in another table", func(w *world) { w.probe.rules.Nft = nftDropElsewhere },
			[]string{CodeForwardDrop}, "nft chain inet fw forward"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := healthy(t)
			tc.plant(w)
			l := w.check(t)
			got := codes(l)
			slices.Sort(got)
			want := slices.Clone(tc.codes)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("codes (-want +got):\n%s\n%v", diff, l)
			}
			if tc.fix != "" && !slices.ContainsFunc(l, func(d diag.Diagnostic) bool { return strings.Contains(d.Message, tc.fix) }) {
				t.Errorf("no message names %q:\n%v", tc.fix, l)
			}
			for _, d := range l {
				if c, ok := diag.Lookup(d.Code); !ok || c.Severity != d.Severity {
					t.Errorf("%s: not in diag's table with severity %s", d.Code, d.Severity)
				}
			}
		})
	}
}

// TestProbesBounded: a hub with many peers probes at most MaxProbes of them,
// each with a bounded number of pings.
func TestProbesBounded(t *testing.T) {
	w := healthy(t)
	var peers []device.PeerConfig
	for i := range 100 {
		// Not .0: no probe goes to a network address.
		a := netip.AddrFrom4([4]byte{10, 99, 1, byte(i + 1)})
		w.probe.pathMTU[a] = 1300 // every one too small: the most probes
		peers = append(peers, device.PeerConfig{PublicKey: mustKey(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(a, 32)}})
	}
	if err := w.dev.Configure(device.Config{Peers: peers}); err != nil {
		t.Fatal(err)
	}
	w.probe.routes[pre("10.99.1.0/24")] = Route{Dev: "wg0"}
	l, err := Check(context.Background(), w.ex, counters{w.dev, func(*device.State) {}}, w.host, w.probe, Options{Now: now, MaxProbes: 10})
	if err != nil {
		t.Fatal(err)
	}
	// The ten probed are the first ten peers in the device's order (by key,
	// random here): the healthy fixture's own peer, whose path is fine, may be
	// one of them, so nine or ten findings, never more.
	if n := strings.Count(strings.Join(codes(l), " "), CodeMTU); n != 10 && n != 9 {
		t.Errorf("%d MTU findings, want 10 (MaxProbes), or 9 when the fixture's healthy peer is among the ten", n)
	}
	if !slices.ContainsFunc(l, func(d diag.Diagnostic) bool { return strings.Contains(d.Message, "probed for the first 10 peers only") }) {
		t.Errorf("no notice that only 10 peers were probed:\n%v", l)
	}
	if w.probe.pings > 10*12 {
		t.Errorf("%d pings for 10 peers, want at most 12 each", w.probe.pings)
	}
}

const docker2010 = `# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A POSTROUTING -s 10.10.2.0/24 ! -o ctr0 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o ctr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o ctr0 -j DOCKER
-A FORWARD -i ctr0 ! -o ctr0 -j ACCEPT
-A DOCKER-USER -j RETURN
COMMIT
`

const docker28raw = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -d 10.10.2.2/32 ! -i ctr0 -j DROP
COMMIT
`

const nftDropElsewhere = `table inet fw {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
	}
}
table inet mine {
	chain forward {
		type filter hook forward priority filter + 10; policy accept;
		iifname "wg0" accept
	}
}
`

// ip6tables' chains are their own (family ip6): an IPv6 flow is judged by
// them, an IPv4 flow by iptables'; wgnet's accepts count only for their subnet.
func TestDroppedFlowsPerFamily(t *testing.T) {
	fw := ParseRuleset(Ruleset{
		IptablesSave:  "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -d 10.10.2.0/24 -i wg0 -m comment --comment \"wgnet:wg0\" -j ACCEPT\nCOMMIT\n",
		Ip6tablesSave: "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n",
	})
	v4 := Flow{In: "wg0", Out: "ctr0", Dst: netip.MustParsePrefix("10.10.2.0/24")}
	v4other := Flow{In: "wg0", Out: "ctr0", Dst: netip.MustParsePrefix("10.10.3.0/24")}
	v6 := Flow{In: "wg0", Out: "ctr0", Dst: netip.MustParsePrefix("fd00:10:2::/64")}
	got := map[string][]Flow{}
	for _, c := range fw.Chains {
		got[c.Family] = fw.DroppedFlows(c, []Flow{v4, v4other, v6})
	}
	if !cmp.Equal(got["ip"], []Flow{v4other}, cmpopts.EquateComparable(netip.Prefix{})) || !cmp.Equal(got["ip6"], []Flow{v6}, cmpopts.EquateComparable(netip.Prefix{})) {
		t.Errorf("dropped: %v", got)
	}
}
