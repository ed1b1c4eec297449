package lab

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// testTimeout keeps failing probes short, yet long enough for a first
// handshake and reply on a machine as loaded as CI's (a fresh-clone run at load
// 28 lost TestLiveAdd's s3 probes to the earlier 500 ms).
const testTimeout = 2 * time.Second

// demoConfigs compiles the demo network (as a mesh when mesh is set), renders
// every host's wg-quick file and parses it back, as `wgnet lab CONFIG...` reads
// files.
func demoConfigs(t *testing.T, mesh bool) map[string]*wgconf.Config {
	t.Helper()
	s, sec, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	if mesh {
		s.Topology, s.Hub = spec.TopologyMesh, ""
	}
	hosts, err := compile.Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*wgconf.Config)
	for _, h := range hosts {
		cfg, err := wgconf.Parse(h.Name+".conf", h.Config().WgQuick())
		if err != nil {
			t.Fatalf("parse rendered %s: %v", h.Name, err)
		}
		cfg.Name = h.Name
		out[h.Name] = cfg
	}
	return out
}

func peerNamed(t *testing.T, cfg *wgconf.Config, name string) *wgconf.Peer {
	t.Helper()
	for i := range cfg.Peers {
		if cfg.Peers[i].Name == name {
			return &cfg.Peers[i]
		}
	}
	t.Fatalf("%s has no peer %s", cfg.Name, name)
	return nil
}

// runLab starts hosts, probes them once and returns the matrix; the lab is closed
// when the test ends.
func runLab(t *testing.T, hosts []intent.Host) (*Lab, *Matrix) {
	t.Helper()
	ctx := context.Background()
	l, err := Start(ctx, hosts, Options{ProbeTimeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	m, err := l.Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l, m
}

func problemNames(m *Matrix) []string {
	var out []string
	for _, p := range m.Problems() {
		out = append(out, p.From+" -> "+p.To.String())
	}
	return out
}

func TestHealthyHub(t *testing.T) {
	s, sec, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	hosts, notes, err := FromSpec(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 0 {
		t.Errorf("notes for a spec with every key: %q", notes)
	}
	l, m := runLab(t, hosts)
	// 3 hosts, each probing 2 others × (overlay + subnet).
	if len(m.Probes) != 12 {
		t.Errorf("%d probes, want 12", len(m.Probes))
	}
	if diff := cmp.Diff([]string(nil), problemNames(m)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	for _, p := range m.Probes {
		if p.ICMP.RTT <= 0 || p.TCP.RTT <= 0 {
			t.Errorf("%s -> %s: no RTT: %+v", p.From, p.To, p)
		}
	}
	st, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	// Every peer entry has a session and carried traffic.
	var got []string
	for _, h := range st {
		for _, p := range h.Peers {
			if p.Handshakes < 1 || p.LastHandshake.IsZero() || p.RxBytes == 0 || p.TxBytes == 0 {
				t.Errorf("%s peer %s: %+v", h.Host, p.Peer, p)
			}
			got = append(got, h.Host+"-"+p.Peer)
		}
	}
	if diff := cmp.Diff([]string{"s1-s2", "s1-s3", "s2-s1", "s3-s1"}, got); diff != "" {
		t.Errorf("peerings (-want +got):\n%s", diff)
	}
}

// TestBrokenConfigs breaks one thing in otherwise good configs and checks that
// exactly the pairs it breaks fail, each with the reason.
func TestBrokenConfigs(t *testing.T) {
	tests := []struct {
		name   string
		mesh   bool
		break_ func(t *testing.T, c map[string]*wgconf.Config)
		want   []string // failing probes
		why    string   // in every failing probe's reason
	}{
		{
			name: "spoke AllowedIPs omit another spoke's subnet",
			break_: func(t *testing.T, c map[string]*wgconf.Config) {
				p := peerNamed(t, c["s2"], "s1")
				p.AllowedIPs = slices.DeleteFunc(p.AllowedIPs, func(a netip.Prefix) bool { return a == netip.MustParsePrefix("10.0.7.0/24") })
			},
			want: []string{"s2 -> s3 10.0.7.1 (10.0.7.0/24)"},
			why:  "s2 has no route to 10.0.7.1",
		},
		{
			name: "hub lists a wrong key for one spoke",
			break_: func(t *testing.T, c map[string]*wgconf.Config) {
				k, _ := wgkey.GeneratePrivate()
				peerNamed(t, c["s1"], "s3").PublicKey = k.Public()
			},
			want: []string{
				"s1 -> s3 192.168.100.12",
				"s1 -> s3 10.0.7.1 (10.0.7.0/24)",
				"s2 -> s3 192.168.100.12",
				"s2 -> s3 10.0.7.1 (10.0.7.0/24)",
				"s3 -> s1 192.168.100.10",
				"s3 -> s1 10.0.4.1 (10.0.4.0/24)",
				"s3 -> s2 192.168.100.11",
				"s3 -> s2 10.0.5.1 (10.0.5.0/24)",
			},
			why: "key",
		},
		{
			name: "mesh: two hosts without an endpoint for each other",
			mesh: true,
			break_: func(t *testing.T, c map[string]*wgconf.Config) {
				peerNamed(t, c["s2"], "s3").Endpoint = nil
				peerNamed(t, c["s3"], "s2").Endpoint = nil
			},
			want: []string{
				"s2 -> s3 192.168.100.12",
				"s2 -> s3 10.0.7.1 (10.0.7.0/24)",
				"s3 -> s2 192.168.100.11",
				"s3 -> s2 10.0.5.1 (10.0.5.0/24)",
			},
			why: "has an Endpoint for the other, so no handshake can start",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfgs := demoConfigs(t, tt.mesh)
			tt.break_(t, cfgs)
			var list []*wgconf.Config
			for _, c := range cfgs {
				list = append(list, c)
			}
			hosts, notes := FromConfigs(list)
			if len(notes) != 0 {
				t.Errorf("notes: %q", notes)
			}
			_, m := runLab(t, hosts)
			want := slices.Sorted(slices.Values(tt.want))
			got := slices.Sorted(slices.Values(problemNames(m)))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("failing pairs (-want +got):\n%s", diff)
			}
			for _, p := range m.Problems() {
				if !strings.Contains(p.Why, tt.why) {
					t.Errorf("%s -> %s: reason %q does not say %q", p.From, p.To, p.Why, tt.why)
				}
			}
		})
	}
}

// TestHubWithoutForwarding: handshakes work, spokes reach the hub, but not each
// other nor anything routed, as on a real hub without ip forwarding.
func TestHubWithoutForwarding(t *testing.T) {
	cfgs := demoConfigs(t, false)
	for _, c := range cfgs {
		c.Interface.PostUp = nil
	}
	var list []*wgconf.Config
	for _, c := range cfgs {
		list = append(list, c)
	}
	hosts, _ := FromConfigs(list)
	_, m := runLab(t, hosts)
	var got []string
	for _, p := range m.Probes {
		if p.OK() {
			got = append(got, p.From+" -> "+p.To.String())
		}
	}
	want := []string{
		"s1 -> s2 192.168.100.11",
		"s1 -> s3 192.168.100.12",
		"s2 -> s1 192.168.100.10",
		"s3 -> s1 192.168.100.10",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reachable pairs (-want +got):\n%s", diff)
	}
	for _, p := range m.Problems() {
		if !strings.Contains(p.Why, "does not forward") {
			t.Errorf("%s -> %s: reason %q", p.From, p.To, p.Why)
		}
	}
}

func TestFromConfigsRoutes(t *testing.T) {
	for _, mesh := range []bool{false, true} {
		cfgs := demoConfigs(t, mesh)
		var list []*wgconf.Config
		for _, c := range cfgs {
			list = append(list, c)
		}
		hosts, notes := FromConfigs(list)
		if len(notes) != 0 {
			t.Errorf("mesh=%v: notes %q", mesh, notes)
		}
		got := make(map[string][]netip.Prefix)
		for _, h := range hosts {
			got[h.Name] = h.Routes
			if !h.Forward.V4 {
				t.Errorf("mesh=%v: %s does not forward", mesh, h.Name)
			}
		}
		want := map[string][]netip.Prefix{
			"s1": {netip.MustParsePrefix("10.0.4.0/24")},
			"s2": {netip.MustParsePrefix("10.0.5.0/24")},
			"s3": {netip.MustParsePrefix("10.0.7.0/24")},
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("mesh=%v: routes (-want +got):\n%s", mesh, diff)
		}
	}
}

// TestLiveAdd grows the demo network by a fourth host: the old peerings keep
// their sessions and the new host reaches everyone.
func TestLiveAdd(t *testing.T) {
	s, sec, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	hosts, _, err := FromSpec(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	l, m := runLab(t, hosts)
	if len(m.Problems()) != 0 {
		t.Fatalf("before: %q", problemNames(m))
	}
	before, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	if err := DemoAddHost(s, sec); err != nil {
		t.Fatal(err)
	}
	hosts, _, err = FromSpec(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := l.Apply(context.Background(), hosts)
	if err != nil {
		t.Fatal(err)
	}
	want := []HostChanges{
		{Host: "s1", Changes: []string{"peer s4: add peer"}},
		{Host: "s2", Changes: []string{"peer s1: +allowed ip 10.0.9.0/24"}},
		{Host: "s3", Changes: []string{"peer s1: +allowed ip 10.0.9.0/24"}},
		{Host: "s4", Added: true},
	}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	m, err = l.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Probes) != 24 || len(m.Problems()) != 0 {
		t.Errorf("after: %d probes, problems %q", len(m.Probes), problemNames(m))
	}
	after, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, hb := range before {
		for _, pb := range hb.Peers {
			for _, ha := range after {
				for _, pa := range ha.Peers {
					if ha.Host == hb.Host && pa.PublicKey == pb.PublicKey &&
						(pa.Handshakes != pb.Handshakes || !pa.LastHandshake.Equal(pb.LastHandshake)) {
						t.Errorf("%s peer %s: session reset: before %+v after %+v", hb.Host, pb.Peer, pb, pa)
					}
				}
			}
		}
	}
}

func TestBench(t *testing.T) {
	s, sec, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	hosts, _, err := FromSpec(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := runLab(t, hosts)
	res, err := l.Bench(context.Background(), "s2", "s3", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tunnel %.2f Gbit/s, direct %.2f Gbit/s, ratio %.2f", res.Tunnel, res.Direct, res.Ratio())
	if res.Tunnel <= 0 || res.Direct <= 0 {
		t.Errorf("no throughput: %+v", res)
	}
	if _, err := l.Bench(context.Background(), "s2", "nope", time.Millisecond); err == nil {
		t.Error("bench to an unknown host: no error")
	}
}

// TestNoLeaks runs a lab through everything it does and checks that closing it
// leaves no goroutine and no socket behind.
func TestNoLeaks(t *testing.T) {
	goroutines, sockets := runtime.NumGoroutine(), countSockets(t)
	func() {
		s, sec, err := Demo()
		if err != nil {
			t.Fatal(err)
		}
		hosts, _, err := FromSpec(s, sec)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		l, err := Start(ctx, hosts, Options{ProbeTimeout: testTimeout, Progress: func(Event) {}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Probe(ctx); err != nil {
			t.Fatal(err)
		}
		if err := DemoAddHost(s, sec); err != nil {
			t.Fatal(err)
		}
		hosts, _, _ = FromSpec(s, sec)
		if err := l.Update(ctx, hosts); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Probe(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Bench(ctx, "s1", "s4", 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if got := countSockets(t); got < sockets+4 {
			t.Errorf("%d sockets while 4 hosts run, had %d before: the count can't see them", got, sockets)
		}
		l.Close()
	}()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left over (%d before, %d after):\n%s", n-goroutines, goroutines, n, buf[:runtime.Stack(buf, true)])
	}
	if n := countSockets(t); n > sockets {
		t.Errorf("%d sockets left over", n-sockets)
	}
}

// countSockets counts this process's open sockets.
func countSockets(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

func TestDualStack(t *testing.T) {
	s, sec, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	s.Subnets = append(s.Subnets, netip.MustParsePrefix("fd00:100::/64"))
	for i := range s.Hosts {
		s.Hosts[i].Addresses = append(s.Hosts[i].Addresses, netip.AddrFrom16([16]byte{0: 0xfd, 2: 0x01, 15: byte(0x10 + i)}))
	}
	s.Hosts[1].Routes = append(s.Hosts[1].Routes, netip.MustParsePrefix("fd00:5::/64"))
	hosts, _, err := FromSpec(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	_, m := runLab(t, hosts)
	v6 := 0
	for _, p := range m.Probes {
		if p.To.Addr.Is6() {
			v6++
		}
	}
	// Every host reaches two v6 overlay addresses; s1 and s3 also s2's v6 subnet.
	if v6 != 3*2+2 {
		t.Errorf("%d IPv6 probes, want 8", v6)
	}
	if diff := cmp.Diff([]string(nil), problemNames(m)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestSpecHostKeepsOwnKey: a host whose private key is not in the secrets gets a
// throw-away one, substituted in every config, and the network still works.
func TestSpecHostKeepsOwnKey(t *testing.T) {
	s, sec, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	s.Hosts[2].PublicKey = sec.PrivateKeys["s3"].Public()
	delete(sec.PrivateKeys, "s3")
	hosts, notes, err := FromSpec(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "s3") {
		t.Errorf("notes: %q", notes)
	}
	if _, ok := sec.PrivateKeys["s3"]; ok {
		t.Error("FromSpec changed the caller's secrets")
	}
	_, m := runLab(t, hosts)
	if diff := cmp.Diff([]string(nil), problemNames(m)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestUnknownEndpoint: an Endpoint that names no host of the lab is not invented.
func TestUnknownEndpoint(t *testing.T) {
	cfgs := demoConfigs(t, false)
	k := mustPriv(t).Public()
	cfgs["s2"].Peers = append(cfgs["s2"].Peers, wgconf.Peer{Name: "elsewhere", PublicKey: k,
		AllowedIPs: prefixes("10.99.0.0/24"), Endpoint: &wgconf.Endpoint{Host: "203.0.113.9", Port: 51820}})
	var list []*wgconf.Config
	for _, c := range cfgs {
		list = append(list, c)
	}
	hosts, _ := FromConfigs(list)
	l, m := runLab(t, hosts)
	want := []string{"s2: peer elsewhere has Endpoint 203.0.113.9:51820, which is no host of the lab; it gets no endpoint"}
	if diff := cmp.Diff(want, l.Notes()); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	if len(m.Problems()) != 0 {
		t.Errorf("problems: %q", problemNames(m))
	}
}

// oneFamilySpec is the demo network dual-stack, s2 with an IPv6 routed
// subnet too, but s3 with an IPv4 overlay address only.
func oneFamilySpec(t *testing.T) (*spec.Spec, spec.Secrets) {
	t.Helper()
	s, sec, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	s.Subnets = append(s.Subnets, netip.MustParsePrefix("fd00:100::/64"))
	for i := range s.Hosts[:2] {
		s.Hosts[i].Addresses = append(s.Hosts[i].Addresses, netip.AddrFrom16([16]byte{0: 0xfd, 2: 0x01, 15: byte(0x10 + i)}))
	}
	s.Hosts[1].Routes = append(s.Hosts[1].Routes, netip.MustParsePrefix("fd00:5::/64"))
	return s, sec
}

// TestOneFamilyHost: in a dual-stack network, s3 has an IPv4 overlay address
// only. Its probes to IPv6 addresses are not sent and say why ("no IPv6
// overlay address"), no problem; every other probe is sent and passes.
func TestOneFamilyHost(t *testing.T) {
	s, sec := oneFamilySpec(t)
	hosts, _, err := FromSpec(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	_, m := runLab(t, hosts)
	var skipped []string
	for _, p := range m.Probes {
		if p.NotProbed != "" {
			skipped = append(skipped, p.From+" -> "+p.To.String()+": "+p.NotProbed)
			continue
		}
		if !p.OK() {
			t.Errorf("%s -> %s: sent, not answered: %+v", p.From, p.To, p)
		}
	}
	// s3 to s1's and s2's IPv6 addresses and s2's IPv6 subnet.
	want := []string{"s3 -> s1 fd00:100::10: no IPv6 overlay address", "s3 -> s2 fd00:100::11: no IPv6 overlay address",
		"s3 -> s2 fd00:5::1 (fd00:5::/64): no IPv6 overlay address"}
	if diff := cmp.Diff(want, skipped); diff != "" {
		t.Errorf("not probed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string(nil), problemNames(m)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	var text strings.Builder
	WriteMatrix(&text, m)
	if n := strings.Count(text.String(), "not probed: no IPv6 overlay address"); n != 3 || strings.Contains(text.String(), "FAIL") {
		t.Errorf("the matrix says %d times not probed, want 3, and no FAIL:\n%s", n, text.String())
	}
}

// TestOneFamilyHostPolicy: with a policy (here none in the spec: everything
// allowed), probes start at the hosts' subnets' stand-ins too; a stand-in of
// one family sends nothing to addresses of the other and says so, as s3
// does to IPv6 addresses; everything sent passes.
func TestOneFamilyHostPolicy(t *testing.T) {
	s, _ := oneFamilySpec(t)
	m := policyRun(t, s)
	why := map[string]int{}
	for _, p := range m.Probes {
		if p.NotProbed == "" {
			if p.Problem() || !p.OK() {
				t.Errorf("%s -> %s: sent: ok %v, problem %v", p.fromText(), p.To, p.OK(), p.Problem())
			}
			continue
		}
		why[p.NotProbed]++
		switch {
		case p.From == "s3" && !p.FromSubnet.IsValid() && p.To.Addr.Is6():
		case p.FromSubnet.IsValid() && p.FromSubnet.Is4() != p.To.Addr.Is4():
		default:
			t.Errorf("%s -> %s: not probed (%s), yet it can be", p.fromText(), p.To, p.NotProbed)
		}
	}
	// s3 to 3 IPv6 targets; the 3 IPv4 stand-ins to the IPv6 targets of
	// other hosts (s1: 2 of s2's, s2: 1 of s1's, s3: 3); s2's IPv6 stand-in to
	// the 5 IPv4 targets of s1 and s3.
	want := map[string]int{"no IPv6 overlay address": 3, "no IPv6 address in an IPv4 subnet": 6, "no IPv4 address in an IPv6 subnet": 4}
	if diff := cmp.Diff(want, why); diff != "" {
		t.Errorf("not probed, by reason (-want +got):\n%s", diff)
	}
}
