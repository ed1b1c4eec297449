package intent

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func TestForwardingHook(t *testing.T) {
	for _, tc := range []struct {
		hook       string
		v4, v6, ok bool
	}{
		{hookForwardV4, true, false, true},
		{hookForwardV6, false, true, true},
		{"sysctl -w net.ipv4.ip_forward=1", true, false, true},
		{"sysctl -w net/ipv6/conf/all/forwarding=1 # for the containers", false, true, true},
		{"sysctl -q -w net.ipv6.conf.%i.force_forwarding=1", false, true, true},
		{"sysctl -w net.ipv4.ip_forward=0", false, false, true},
		{"sysctl -w net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1", true, true, true},
		{"sysctl -w net.ipv4.ip_forward=1; iptables -A FORWARD -j ACCEPT", false, false, false},
		{"sysctl -w net.ipv4.conf.all.rp_filter=0", false, false, false},
		{"echo 1 > /proc/sys/net/ipv4/ip_forward", false, false, false},
	} {
		v4, v6, ok := forwardingHook(tc.hook)
		if v4 != tc.v4 || v6 != tc.v6 || ok != tc.ok {
			t.Errorf("forwardingHook(%q) = %v, %v, %v; want %v, %v, %v", tc.hook, v4, v6, ok, tc.v4, tc.v6, tc.ok)
		}
	}
}

func TestHooksForward(t *testing.T) {
	tests := []struct {
		name   string
		postUp []string
		v4, v6 bool
	}{
		{"none", nil, false, false},
		{"wgnet's v4", []string{hookForwardV4}, true, false},
		{"wgnet's v6", []string{hookForwardV6}, false, true},
		{"wgnet's both", []string{"wg set %i private-key /etc/wireguard/wg0.key", hookForwardV4, hookForwardV6}, true, true},
		{"global ip_forward", []string{"sysctl -w net.ipv4.ip_forward=1"}, true, false},
		{"slashed form, quoted", []string{`sysctl -w 'net/ipv4/conf/all/forwarding=1' && sysctl -w "net/ipv6/conf/all/forwarding=1"`}, true, true},
		{"turned off is not on", []string{"sysctl -w net.ipv4.ip_forward=0", "sysctl -w net.ipv6.conf.all.forwarding=0"}, false, false},
		{"a longer value is not 1", []string{"sysctl -w net.ipv4.conf.all.forwarding=10"}, false, false},
		{"reading is not setting", []string{"sysctl net.ipv4.ip_forward", "cat /proc/sys/net/ipv6/conf/all/forwarding"}, false, false},
		{"other sysctls", []string{"sysctl -w net.ipv4.conf.all.rp_filter=1"}, false, false},
		{"echo to proc", []string{"echo 1 > /proc/sys/net/ipv4/ip_forward", "echo 1 >/proc/sys/net/ipv6/conf/all/forwarding"}, true, true},
		{"echo 0 to proc", []string{"echo 0 > /proc/sys/net/ipv4/ip_forward"}, false, false},
		{"another interface does not forward tunnel traffic", []string{"sysctl -w net.ipv4.conf.eth0.forwarding=1", "sysctl -w net.ipv4.conf.default.forwarding=1"}, false, false},
		{"v6 per-interface forwarding is not forwarding", []string{"sysctl -w net.ipv6.conf.%i.forwarding=1"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v4, v6 := HooksForward(tt.postUp); v4 != tt.v4 || v6 != tt.v6 {
				t.Errorf("HooksForward() = %v, %v; want %v, %v", v4, v6, tt.v4, tt.v6)
			}
		})
	}
}

// TestFromConfig reads the hook forms wgnet writes and people write into typed
// fields, and leaves everything else an opaque hook.
func TestFromConfig(t *testing.T) {
	c := &wgconf.Config{Name: "s1", Interface: wgconf.Interface{
		PreUp: []string{"echo pre"},
		PostUp: []string{
			"wg set %i private-key /etc/wireguard/wg0.key",
			"sysctl -w net.ipv4.ip_forward=1",
			"iptables -A FORWARD -i %i -j ACCEPT",
			"wg set %i private-key /k; curl x | sh",
		},
		PostDown: []string{"sysctl -w net.ipv4.ip_forward=0", "iptables -D FORWARD -i %i -j ACCEPT"},
	}}
	h, r := FromConfig(c)
	if h.KeyFile != "/etc/wireguard/wg0.key" {
		t.Errorf("KeyFile = %q", h.KeyFile)
	}
	// A forwarding line a person wrote keeps its meaning (the whole host
	// forwards): it stays a hook, run as written, like wg-quick runs it.
	if h.Forward.V4 || h.Forward.V6 || h.Firewall.ClampMSS {
		t.Errorf("Forward = %+v, Firewall = %+v; want none: the user's sysctl line is run as written", h.Forward, h.Firewall)
	}
	want := Hooks{
		PreUp:    []string{"echo pre"},
		PostUp:   []string{"sysctl -w net.ipv4.ip_forward=1", "iptables -A FORWARD -i %i -j ACCEPT", "wg set %i private-key /k; curl x | sh"},
		PostDown: []string{"sysctl -w net.ipv4.ip_forward=0", "iptables -D FORWARD -i %i -j ACCEPT"},
	}
	if d := cmp.Diff(want, h.Hooks); d != "" {
		t.Errorf("hooks (-want +got):\n%s", d)
	}
	// wgnet's own lines, and any that only forwards on the interface itself,
	// become Forward again.
	c2 := &wgconf.Config{Interface: wgconf.Interface{PostUp: []string{hookForwardV4, hookForwardV6, "sysctl -q -w net.ipv6.conf.%i.force_forwarding=1"}}}
	if h2, _ := FromConfig(c2); !h2.Forward.V4 || !h2.Forward.V6 || !h2.Firewall.ClampMSS || len(h2.Hooks.PostUp) != 0 {
		t.Errorf("wgnet's own lines: Forward %+v, clamp %v, hooks %q", h2.Forward, h2.Firewall.ClampMSS, h2.Hooks.PostUp)
	}
	if d := cmp.Diff([]string{"wg set %i private-key /etc/wireguard/wg0.key"}, r.Converted); d != "" {
		t.Errorf("converted (-want +got):\n%s", d)
	}

	// A file with its own PrivateKey keeps a key hook as the user's hook.
	c.Interface.PrivateKey = mustPrivate(t)
	if h, _ := FromConfig(c); h.KeyFile != "" || len(h.Hooks.PostUp) != 4 {
		t.Errorf("with a PrivateKey: KeyFile %q, PostUp %q", h.KeyFile, h.Hooks.PostUp)
	}
}

// TestRoundTrip checks that a wg-quick rendering reads back as the same intent.
func TestRoundTrip(t *testing.T) {
	port := uint16(51820)
	peer := mustPrivate(t).Public()
	ep := wgconf.Endpoint{Host: "198.18.0.2", Port: 51820}
	for _, h := range []*Host{
		{Name: "a", PrivateKey: mustPrivate(t), ListenPort: &port, MTU: 1420,
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.100.10/24")},
			Peers:     []wgconf.Peer{{Name: "b", PublicKey: peer, Endpoint: &ep, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.168.100.11/32")}}}},
		{Name: "hub", KeyFile: "/etc/wireguard/wg0.key", Forward: Forwarding{V4: true, V6: true}, Firewall: Firewall{ClampMSS: true},
			Hooks: Hooks{PreUp: []string{"true"}, PostUp: []string{"iptables -A FORWARD -i %i -j ACCEPT"}, PostDown: []string{"iptables -D FORWARD -i %i -j ACCEPT"}}},
		{Name: "v4only", Forward: Forwarding{V4: true}, Firewall: Firewall{ClampMSS: true}, Comments: []string{"wgnet: host v4only"}},
	} {
		text := h.Config().WgQuick()
		c, err := wgconf.Parse("x.conf", text)
		if err != nil {
			t.Fatalf("%s: %v\n%s", h.Name, err, text)
		}
		c.Name = h.Name
		got, _ := FromConfig(c)
		got.Pos = wgconf.Pos{}
		for i := range got.Peers {
			got.Peers[i].Pos = wgconf.PeerPos{}
		}
		if d := cmp.Diff(h, got, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{})); d != "" {
			t.Errorf("%s: round trip (-want +got):\n%s\n%s", h.Name, d, text)
		}
	}
}

func mustPrivate(t *testing.T) wgkey.Private {
	t.Helper()
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCommentedRoutes(t *testing.T) {
	for _, c := range []struct {
		comments []string
		want     []netip.Prefix
	}{
		{[]string{"wgnet: host s1 of network prod (hub). Generated; edit the spec, not this file.",
			"routes 10.0.4.0/24, fd00:10:1::/64 behind this host: the interface in front of them must forward too (Docker turns that on globally)."},
			[]netip.Prefix{netip.MustParsePrefix("10.0.4.0/24"), netip.MustParsePrefix("fd00:10:1::/64")}},
		{[]string{"routes 10.0.4.0/24 behind this host:"}, []netip.Prefix{netip.MustParsePrefix("10.0.4.0/24")}},
		{[]string{"routes to the office"}, nil},
		{[]string{"routes 10.0.4.0/33 behind this host:"}, nil},
		{nil, nil},
	} {
		if diff := cmp.Diff(c.want, CommentedRoutes(c.comments), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("CommentedRoutes(%q) (-want +got):\n%s", c.comments, diff)
		}
	}
}

func TestSyncOrder(t *testing.T) {
	ep := &wgconf.Endpoint{Host: "192.0.2.1", Port: 51820}
	hub := Host{Name: "hub", Peers: []wgconf.Peer{{Name: "s1"}, {Name: "s2"}, {Name: "s3"}}}
	spoke := func(n string) Host { return Host{Name: n, Peers: []wgconf.Peer{{Name: "hub", Endpoint: ep}}} }
	hosts := []Host{spoke("s1"), hub, spoke("s2"), spoke("s3")}
	is := func(names ...string) func(string) bool {
		return func(n string) bool { return slices.Contains(names, n) }
	}
	got := SyncOrder(hosts, is("s1", "hub", "s3"), is("s3"))
	want := []SyncStep{
		{Host: "hub", Reason: "dialled by s1, s3"},
		{Host: "s3", Reason: "its routed subnets changed"},
		{Host: "s1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SyncOrder (-want +got):\n%s", diff)
	}
	if got := SyncOrder(hosts, is(), is()); len(got) != 0 {
		t.Errorf("nothing changed: %v", got)
	}
}
