package devicetest

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

func ptr[T any](v T) *T { return &v }

// Run is the conformance test every Device implementation passes. newDevice returns
// a fresh, unconfigured device (and arranges its own cleanup); it is called once per
// subtest.
func Run(t *testing.T, newDevice func(t *testing.T) device.Device) {
	priv := mustPrivate(t)
	keys := make([]wgkey.Key, 3)
	for i := range keys {
		p := mustPrivate(t)
		keys[i] = p.Public()
	}
	a, b, c := keys[0], keys[1], keys[2]
	psk := mustPSK(t)
	ep1 := netip.MustParseAddrPort("198.18.0.1:51820")
	ep2 := netip.MustParseAddrPort("[2001:db8::2]:4242")
	pfx := netip.MustParsePrefix

	// base configures the device with two peers; most subtests start from it.
	base := device.Config{
		PrivateKey:   &priv,
		ListenPort:   ptr(51999),
		ReplacePeers: true,
		Peers: []device.PeerConfig{
			{
				PublicKey:           a,
				PresharedKey:        &psk,
				Endpoint:            &ep1,
				PersistentKeepalive: ptr(secs(25)),
				AllowedIPs:          []netip.Prefix{pfx("10.99.0.2/32"), pfx("10.10.2.0/24"), pfx("fd00:99::2/128")},
			},
			{
				PublicKey:  b,
				Endpoint:   &ep2,
				AllowedIPs: []netip.Prefix{pfx("10.99.0.3/32")},
			},
		},
	}
	baseState := func() *device.State {
		return &device.State{
			PublicKey:  priv.Public(),
			PrivateKey: priv,
			ListenPort: 51999,
			Peers: []device.PeerState{
				{
					PublicKey: a, HasPresharedKey: true, PresharedKey: wgkey.Private(psk), Endpoint: ep1, PersistentKeepalive: secs(25),
					AllowedIPs: []netip.Prefix{pfx("10.99.0.2/32"), pfx("10.10.2.0/24"), pfx("fd00:99::2/128")},
				},
				{PublicKey: b, Endpoint: ep2, AllowedIPs: []netip.Prefix{pfx("10.99.0.3/32")}},
			},
		}
	}

	tests := []struct {
		name  string
		steps []device.Config
		want  func() *device.State
		// randomPort: no step sets a listen port, so a device may report the
		// random one it picked (wireguard-go and the kernel do once up).
		randomPort bool
	}{
		{
			name:       "empty",
			want:       func() *device.State { return &device.State{} },
			randomPort: true,
		},
		{
			name:  "interface only",
			steps: []device.Config{{PrivateKey: &priv, ListenPort: ptr(51998), FwMark: ptr(0x51820)}},
			want: func() *device.State {
				return &device.State{PublicKey: priv.Public(), PrivateKey: priv, ListenPort: 51998, FwMark: 0x51820}
			},
		},
		{
			name:  "full config",
			steps: []device.Config{base},
			want:  baseState,
		},
		{
			name:  "host bits are masked",
			steps: []device.Config{{Peers: []device.PeerConfig{{PublicKey: a, AllowedIPs: []netip.Prefix{pfx("10.1.2.3/16")}}}}},
			want: func() *device.State {
				return &device.State{Peers: []device.PeerState{{PublicKey: a, AllowedIPs: []netip.Prefix{pfx("10.1.0.0/16")}}}}
			},
			randomPort: true,
		},
		{
			name: "nil fields leave things unchanged",
			steps: []device.Config{base, {Peers: []device.PeerConfig{{
				PublicKey: a, Endpoint: &ep2, AllowedIPs: []netip.Prefix{pfx("10.10.9.0/24")},
			}}}},
			want: func() *device.State {
				s := baseState()
				s.Peers[0].Endpoint = ep2
				s.Peers[0].AllowedIPs = append(s.Peers[0].AllowedIPs, pfx("10.10.9.0/24"))
				return s
			},
		},
		{
			name: "an allowed IP moves to the last peer given it",
			steps: []device.Config{base, {Peers: []device.PeerConfig{{
				PublicKey: b, AllowedIPs: []netip.Prefix{pfx("10.10.2.0/24")},
			}}}},
			want: func() *device.State {
				s := baseState()
				s.Peers[0].AllowedIPs = []netip.Prefix{pfx("10.99.0.2/32"), pfx("fd00:99::2/128")}
				s.Peers[1].AllowedIPs = append(s.Peers[1].AllowedIPs, pfx("10.10.2.0/24"))
				return s
			},
		},
		{
			name: "replace allowed IPs",
			steps: []device.Config{base, {Peers: []device.PeerConfig{{
				PublicKey: a, ReplaceAllowedIPs: true, AllowedIPs: []netip.Prefix{pfx("10.99.0.9/32")},
			}}}},
			want: func() *device.State {
				s := baseState()
				s.Peers[0].AllowedIPs = []netip.Prefix{pfx("10.99.0.9/32")}
				return s
			},
		},
		{
			name: "remove preshared key and keepalive",
			steps: []device.Config{base, {Peers: []device.PeerConfig{{
				PublicKey: a, PresharedKey: &wgkey.Key{}, PersistentKeepalive: ptr(time.Duration(0)),
			}}}},
			want: func() *device.State {
				s := baseState()
				s.Peers[0].HasPresharedKey = false
				s.Peers[0].PresharedKey = wgkey.Private{}
				s.Peers[0].PersistentKeepalive = 0
				return s
			},
		},
		{
			name:  "update only does not create",
			steps: []device.Config{base, {Peers: []device.PeerConfig{{PublicKey: c, UpdateOnly: true, AllowedIPs: []netip.Prefix{pfx("10.99.0.4/32")}}}}},
			want:  baseState,
		},
		{
			name:  "remove peer",
			steps: []device.Config{base, {Peers: []device.PeerConfig{{PublicKey: a, Remove: true}}}},
			want: func() *device.State {
				s := baseState()
				s.Peers = s.Peers[1:]
				return s
			},
		},
		{
			name: "replace peers",
			steps: []device.Config{base, {ReplacePeers: true, Peers: []device.PeerConfig{{
				PublicKey: c, AllowedIPs: []netip.Prefix{pfx("10.99.0.4/32")},
			}}}},
			want: func() *device.State {
				s := baseState()
				s.Peers = []device.PeerState{{PublicKey: c, AllowedIPs: []netip.Prefix{pfx("10.99.0.4/32")}}}
				return s
			},
		},
		{
			name:  "remove private key",
			steps: []device.Config{base, {PrivateKey: &wgkey.Private{}}},
			want: func() *device.State {
				s := baseState()
				s.PublicKey, s.PrivateKey = wgkey.Key{}, wgkey.Private{}
				return s
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDevice(t)
			for i, step := range tt.steps {
				if err := d.Configure(step); err != nil {
					t.Fatalf("step %d: Configure: %v", i, err)
				}
			}
			got, err := d.State()
			if err != nil {
				t.Fatalf("State: %v", err)
			}
			if got.Name != d.Name() {
				t.Errorf("State().Name = %q, want %q", got.Name, d.Name())
			}
			if got.Backend == "" {
				t.Errorf("State().Backend is empty")
			}
			want := tt.want()
			want.Name, want.Backend = got.Name, got.Backend
			if tt.randomPort {
				want.ListenPort = got.ListenPort
			}
			got.Normalize()
			want.Normalize()
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}, netip.AddrPort{})); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
		})
	}

	// Removing single allowed IPs: a device that says it can removes exactly the
	// prefixes its peer holds (not one another peer holds) and keeps the rest; a
	// device that says it cannot refuses the patch and changes nothing.
	t.Run("remove single allowed IPs", func(t *testing.T) {
		d := newDevice(t)
		if err := d.Configure(base); err != nil {
			t.Fatal(err)
		}
		patch := device.Config{Peers: []device.PeerConfig{{
			PublicKey:        a,
			UpdateOnly:       true,
			RemoveAllowedIPs: []netip.Prefix{pfx("10.10.2.0/24"), pfx("10.99.0.3/32")}, // the second is b's
			AllowedIPs:       []netip.Prefix{pfx("10.10.7.0/24")},
		}}}
		err := d.Configure(patch)
		want := baseState()
		if device.RemovesAllowedIPs(d) {
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			want.Peers[0].AllowedIPs = []netip.Prefix{pfx("10.99.0.2/32"), pfx("fd00:99::2/128"), pfx("10.10.7.0/24")}
		} else {
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("Configure on a device that cannot remove single allowed IPs = %v, want errors.ErrUnsupported", err)
			}
		}
		got, err := d.State()
		if err != nil {
			t.Fatal(err)
		}
		want.Name, want.Backend = got.Name, got.Backend
		got.Normalize()
		want.Normalize()
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}, netip.AddrPort{})); diff != "" {
			t.Errorf("state (-want +got):\n%s", diff)
		}
	})

	t.Run("invalid patch is refused", func(t *testing.T) {
		d := newDevice(t)
		if err := d.Configure(base); err != nil {
			t.Fatal(err)
		}
		before, err := d.State()
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []device.Config{
			{Peers: []device.PeerConfig{{PublicKey: wgkey.Key{}, AllowedIPs: []netip.Prefix{pfx("10.0.0.0/8")}}}},
			{ListenPort: ptr(70000)},
			{Peers: []device.PeerConfig{{PublicKey: c, PersistentKeepalive: ptr(secs(70000))}}},
		} {
			if err := d.Configure(bad); err == nil {
				t.Errorf("Configure(%+v) = nil, want an error", bad)
			}
		}
		after, err := d.State()
		if err != nil {
			t.Fatal(err)
		}
		before.Normalize()
		after.Normalize()
		if diff := cmp.Diff(before, after, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}, netip.AddrPort{})); diff != "" {
			t.Errorf("a refused patch changed the state (-before +after):\n%s", diff)
		}
	})
}

func mustPrivate(t *testing.T) wgkey.Private {
	t.Helper()
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPSK(t *testing.T) wgkey.Key {
	t.Helper()
	k, err := wgkey.GeneratePSK()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
