package devconf

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/device/devicetest"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

var cmpOpts = []cmp.Option{
	cmpopts.EquateEmpty(),
	cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}, netip.AddrPort{}),
}

// fixed keys keep failures readable and results stable.
func fixedPrivate(n byte) wgkey.Private {
	var k wgkey.Private
	for i := range k {
		k[i] = n + byte(i)
	}
	return k
}

func fixedPeer(n byte) wgkey.Key { return fixedPrivate(n).Public() }

func pfxs(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func endpoint(s string) *wgconf.Endpoint {
	e, err := wgconf.ParseEndpoint(s)
	if err != nil {
		panic(err)
	}
	return &e
}

func TestFromHost(t *testing.T) {
	port := uint16(51820)
	a, b, c := fixedPeer(2), fixedPeer(3), fixedPeer(4)
	// resolve stands in for DNS or the lab's endpoint map: one name is unknown.
	resolve := func(p wgconf.Peer) (netip.AddrPort, bool) {
		if p.Endpoint.Host == "unknown.example" {
			return netip.AddrPort{}, false
		}
		ip, ok := p.Endpoint.Addr()
		if !ok {
			ip = netip.MustParseAddr("::ffff:198.18.0.9") // mapped: FromHost unmaps
		}
		return netip.AddrPortFrom(ip, p.Endpoint.Port), true
	}
	tests := []struct {
		name    string
		cfg     intent.Host
		resolve func(wgconf.Peer) (netip.AddrPort, bool)
		want    *Want
	}{
		{
			name: "what the config leaves out is left",
			cfg:  intent.Host{},
			want: &Want{},
		},
		{
			name: "interface",
			cfg:  intent.Host{PrivateKey: fixedPrivate(1), ListenPort: &port, FwMark: 0x51820},
			want: &Want{PrivateKey: ptr(fixedPrivate(1)), ListenPort: ptr(51820), FwMark: ptr(0x51820)},
		},
		{
			name: "peers: endpoints resolved, prefixes masked and sorted, repeated keys merged",
			cfg: intent.Host{Peers: []wgconf.Peer{
				{PublicKey: a, AllowedIPs: pfxs("10.0.2.7/24", "10.0.0.2/32"), Endpoint: endpoint("s2.example:51820"), PersistentKeepalive: 25},
				{PublicKey: b, PresharedKey: wgkey.Key(fixedPrivate(9)), AllowedIPs: pfxs("10.0.0.3/32"), Endpoint: endpoint("unknown.example:51820")},
				{PublicKey: a, AllowedIPs: pfxs("10.0.0.2/32", "10.0.1.0/24"), Endpoint: endpoint("198.18.0.2:4242")},
				{PublicKey: c},
			}},
			resolve: resolve,
			want: &Want{Peers: []Peer{
				{PublicKey: a, Endpoint: netip.MustParseAddrPort("198.18.0.2:4242"), PersistentKeepalive: 25 * time.Second,
					AllowedIPs: pfxs("10.0.0.2/32", "10.0.1.0/24", "10.0.2.0/24")},
				{PublicKey: b, PresharedKey: fixedPrivate(9), AllowedIPs: pfxs("10.0.0.3/32")},
				{PublicKey: c},
			}},
		},
		{
			name: "no resolver: no endpoints",
			cfg:  intent.Host{Peers: []wgconf.Peer{{PublicKey: a, Endpoint: endpoint("198.18.0.2:4242")}}},
			want: &Want{Peers: []Peer{{PublicKey: a}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromHost(&tt.cfg, tt.resolve)
			if diff := cmp.Diff(tt.want, got, cmpOpts...); diff != "" {
				t.Errorf("FromHost (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplace(t *testing.T) {
	a := fixedPeer(2)
	ep := netip.MustParseAddrPort("198.18.0.2:51820")
	w := &Want{Peers: []Peer{
		{PublicKey: a, Endpoint: ep, PersistentKeepalive: 25 * time.Second, AllowedIPs: pfxs("10.0.0.2/32")},
		{PublicKey: fixedPeer(3), PresharedKeyUnknown: true},
	}}
	want := device.Config{
		ListenPort: ptr(0), FwMark: ptr(0), ReplacePeers: true,
		Peers: []device.PeerConfig{
			{PublicKey: a, PresharedKey: &wgkey.Key{}, Endpoint: &ep, PersistentKeepalive: ptr(25 * time.Second),
				ReplaceAllowedIPs: true, AllowedIPs: pfxs("10.0.0.2/32")},
			{PublicKey: fixedPeer(3), PersistentKeepalive: ptr(time.Duration(0)), ReplaceAllowedIPs: true},
		},
	}
	if diff := cmp.Diff(want, w.Replace(), cmpOpts...); diff != "" {
		t.Errorf("Replace (-want +got):\n%s", diff)
	}
}

func TestDiff(t *testing.T) {
	priv, other := fixedPrivate(1), fixedPrivate(50)
	a, b, c := fixedPeer(2), fixedPeer(3), fixedPeer(4)
	psk := fixedPrivate(9)
	ep := netip.MustParseAddrPort("198.18.0.2:51820")
	moved := netip.MustParseAddrPort("198.18.0.22:51820")
	running := func() *device.State {
		return &device.State{
			PublicKey: priv.Public(), PrivateKey: priv, ListenPort: 51820,
			Peers: []device.PeerState{
				// unsorted, as a device may report them
				{PublicKey: a, Endpoint: ep, AllowedIPs: pfxs("10.0.4.0/24", "10.0.0.1/32")},
				{PublicKey: b, HasPresharedKey: true, PresharedKey: psk, PersistentKeepalive: 25 * time.Second, AllowedIPs: pfxs("10.0.0.2/32")},
			},
		}
	}
	base := func() *Want {
		return &Want{
			PrivateKey: &priv, ListenPort: ptr(51820),
			Peers: []Peer{
				{PublicKey: a, Endpoint: ep, AllowedIPs: pfxs("10.0.0.1/32", "10.0.4.0/24")},
				{PublicKey: b, PresharedKey: psk, PersistentKeepalive: 25 * time.Second, AllowedIPs: pfxs("10.0.0.2/32")},
			},
		}
	}
	tests := []struct {
		name        string
		edit        func(w *Want, r *device.State)
		noRemoval   bool
		want        Changes
		add, remove device.Config
	}{
		{name: "nothing changed", edit: func(*Want, *device.State) {}},
		{
			name: "what the want leaves is left",
			edit: func(w *Want, _ *device.State) {
				w.PrivateKey, w.ListenPort = nil, nil
				w.Peers[0].Endpoint = netip.AddrPort{}
				w.Peers[1].PresharedKey, w.Peers[1].PresharedKeyUnknown = wgkey.Private{}, true
			},
		},
		{
			name: "prefixes one by one, a peer added and one removed",
			edit: func(w *Want, _ *device.State) {
				w.Peers[0].AllowedIPs = pfxs("10.0.9.0/24", "10.0.0.1/32")
				w.Peers[1] = Peer{PublicKey: c, PresharedKey: psk, Endpoint: moved, PersistentKeepalive: 25 * time.Second, AllowedIPs: pfxs("10.0.0.3/32")}
			},
			want: Changes{Peers: []PeerChange{
				{Op: Update, PublicKey: a, AllowedIPs: pfxs("10.0.0.1/32", "10.0.9.0/24"), AddAllowedIPs: pfxs("10.0.9.0/24"), RemoveAllowedIPs: pfxs("10.0.4.0/24")},
				{Op: Add, PublicKey: c, AllowedIPs: pfxs("10.0.0.3/32"), PresharedKey: &Change[wgkey.Private]{New: psk},
					Endpoint: &Change[netip.AddrPort]{New: moved}, PersistentKeepalive: &Change[time.Duration]{New: 25 * time.Second}},
				{Op: Remove, PublicKey: b, AllowedIPs: pfxs("10.0.0.2/32")},
			}},
			add: device.Config{Peers: []device.PeerConfig{
				{PublicKey: a, UpdateOnly: true, AllowedIPs: pfxs("10.0.9.0/24")},
				{PublicKey: c, PresharedKey: ptr(wgkey.Key(psk)), Endpoint: &moved, PersistentKeepalive: ptr(25 * time.Second), AllowedIPs: pfxs("10.0.0.3/32")},
			}},
			remove: device.Config{Peers: []device.PeerConfig{
				{PublicKey: a, UpdateOnly: true, RemoveAllowedIPs: pfxs("10.0.4.0/24")},
				{PublicKey: b, Remove: true},
			}},
		},
		{
			name:      "a device that cannot remove one prefix rewrites the list",
			edit:      func(w *Want, _ *device.State) { w.Peers[0].AllowedIPs = pfxs("10.0.0.1/32") },
			noRemoval: true,
			want: Changes{Peers: []PeerChange{
				{Op: Update, PublicKey: a, AllowedIPs: pfxs("10.0.0.1/32"), RemoveAllowedIPs: pfxs("10.0.4.0/24"), ReplaceAllowedIPs: true},
			}},
			add: device.Config{Peers: []device.PeerConfig{
				{PublicKey: a, UpdateOnly: true, ReplaceAllowedIPs: true, AllowedIPs: pfxs("10.0.0.1/32")},
			}},
		},
		{
			name: "interface, endpoint, preshared key and keepalive",
			edit: func(w *Want, _ *device.State) {
				w.PrivateKey, w.ListenPort, w.FwMark = &other, ptr(51821), ptr(7)
				w.Peers[0].Endpoint = moved
				w.Peers[1].PresharedKey, w.Peers[1].PersistentKeepalive = wgkey.Private{}, 0
			},
			want: Changes{
				PrivateKey: &other, ListenPort: &Change[int]{Old: 51820, New: 51821}, FwMark: &Change[int]{New: 7},
				Peers: []PeerChange{
					{Op: Update, PublicKey: a, AllowedIPs: pfxs("10.0.0.1/32", "10.0.4.0/24"), Endpoint: &Change[netip.AddrPort]{Old: ep, New: moved}},
					{Op: Update, PublicKey: b, AllowedIPs: pfxs("10.0.0.2/32"), PresharedKey: &Change[wgkey.Private]{Old: psk},
						PersistentKeepalive: &Change[time.Duration]{Old: 25 * time.Second}},
				},
			},
			add: device.Config{PrivateKey: &other, ListenPort: ptr(51821), FwMark: ptr(7), Peers: []device.PeerConfig{
				{PublicKey: a, UpdateOnly: true, Endpoint: &moved},
				{PublicKey: b, UpdateOnly: true, PresharedKey: &wgkey.Key{}, PersistentKeepalive: ptr(time.Duration(0))},
			}},
		},
		{
			name: "removing the private key",
			edit: func(w *Want, _ *device.State) { w.PrivateKey = &wgkey.Private{} },
			want: Changes{PrivateKey: &wgkey.Private{}},
			add:  device.Config{PrivateKey: &wgkey.Private{}},
		},
		{
			name: "a peer that roamed is left where it is",
			edit: func(w *Want, r *device.State) {
				w.Configured = map[wgkey.Key]netip.AddrPort{a: ep}
				r.Peers[0].Endpoint = moved
			},
			want: Changes{Roamed: []Roam{{PublicKey: a, Configured: ep, Current: moved}}},
		},
		{
			name: "a configured endpoint that changed is set even if the peer roamed",
			edit: func(w *Want, r *device.State) {
				w.Configured = map[wgkey.Key]netip.AddrPort{a: netip.MustParseAddrPort("198.18.0.1:1")}
				r.Peers[0].Endpoint = moved
			},
			want: Changes{Peers: []PeerChange{
				{Op: Update, PublicKey: a, AllowedIPs: pfxs("10.0.0.1/32", "10.0.4.0/24"), Endpoint: &Change[netip.AddrPort]{Old: moved, New: ep}},
			}},
			add: device.Config{Peers: []device.PeerConfig{{PublicKey: a, UpdateOnly: true, Endpoint: &ep}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, r := base(), running()
			tt.edit(w, r)
			before := fmt.Sprint(r)
			got := Diff(r, w, !tt.noRemoval)
			if diff := cmp.Diff(&tt.want, got, cmpOpts...); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
			if got.Empty() != (len(tt.want.Peers) == 0 && tt.want.PrivateKey == nil && tt.want.ListenPort == nil && tt.want.FwMark == nil) {
				t.Errorf("Empty() = %v", got.Empty())
			}
			add, remove := got.Patches()
			if diff := cmp.Diff(tt.add, add, cmpOpts...); diff != "" {
				t.Errorf("add patch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.remove, remove, cmpOpts...); diff != "" {
				t.Errorf("remove patch (-want +got):\n%s", diff)
			}
			if after := fmt.Sprint(r); after != before {
				t.Errorf("Diff changed the running state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestDiffRandom checks Diff against the slow obvious way on random pairs of
// configurations, on the fake device: A, then Diff's patches to B, gives what B
// gives on a fresh device; exactly the peers whose configuration differs are
// touched; and a second Diff finds nothing.
func TestDiffRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pool := pfxs("10.10.1.0/24", "10.10.2.0/24", "10.10.3.0/24", "10.99.0.2/32", "10.99.0.3/32",
		"fd00:10:1::/64", "10.20.0.0/16", "10.20.1.0/24")
	endpoints := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:51820"), netip.MustParseAddrPort("[2001:db8::3]:4242")}
	peers := []wgkey.Key{fixedPeer(10), fixedPeer(11), fixedPeer(12), fixedPeer(13), fixedPeer(14)}
	random := func() *Want {
		w := &Want{PrivateKey: ptr(fixedPrivate(byte(1 + r.IntN(2)))), ListenPort: ptr(51820 + r.IntN(2)), FwMark: ptr(r.IntN(2))}
		owner := make([]int, len(pool))
		for i := range owner {
			owner[i] = r.IntN(len(peers) + 1) // len(peers): nobody
		}
		for i, k := range peers {
			if r.IntN(3) == 0 {
				continue
			}
			p := Peer{PublicKey: k, PersistentKeepalive: time.Duration(25*r.IntN(2)) * time.Second}
			for j, o := range owner {
				if o == i {
					p.AllowedIPs = append(p.AllowedIPs, pool[j])
				}
			}
			if i%2 == 0 { // an endpoint can be changed, not removed
				p.Endpoint = endpoints[r.IntN(len(endpoints))]
			}
			if r.IntN(2) == 0 {
				p.PresharedKey = fixedPrivate(byte(40 + r.IntN(2)))
			}
			w.Peers = append(w.Peers, p)
		}
		return w
	}
	state := func(d device.Device) *device.State {
		t.Helper()
		st, err := d.State()
		if err != nil {
			t.Fatal(err)
		}
		st.Normalize()
		return st
	}
	peerText := func(w *Want) map[wgkey.Key]string {
		out := map[wgkey.Key]string{}
		for _, p := range w.Peers {
			out[p.PublicKey] = fmt.Sprint(normalized(p.AllowedIPs), p.Endpoint, p.PresharedKey.Hex(), p.PersistentKeepalive)
		}
		return out
	}
	for i := range 300 {
		a, b := random(), random()
		canRemove := i%3 != 0
		dev := devicetest.NewFake("wg0")
		dev.SetNoRemoval(!canRemove)
		if err := dev.Configure(a.Replace()); err != nil {
			t.Fatal(err)
		}
		dev.Touched()
		d := Diff(state(dev), b, canRemove)
		add, remove := d.Patches()
		for _, p := range []device.Config{add, remove} {
			if err := dev.Configure(p); err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
		}
		fresh := devicetest.NewFake("wg0")
		if err := fresh.Configure(b.Replace()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(state(fresh), state(dev), cmpOpts...); diff != "" {
			t.Fatalf("case %d: A then Diff to B differs from B (-B +diffed):\n%s", i, diff)
		}
		// The slow way to tell which peers differ.
		ta, tb := peerText(a), peerText(b)
		var differ []wgkey.Key
		for k, v := range tb {
			if ta[k] != v {
				differ = append(differ, k)
			}
		}
		for k := range ta {
			if _, ok := tb[k]; !ok {
				differ = append(differ, k)
			}
		}
		touched := dev.Touched()
		for _, ks := range [][]wgkey.Key{differ, touched} {
			slices.SortFunc(ks, func(x, y wgkey.Key) int { return slices.Compare(x[:], y[:]) })
		}
		if diff := cmp.Diff(differ, slices.Compact(touched), cmpOpts...); diff != "" {
			t.Fatalf("case %d: peers touched (-differ +touched):\n%s", i, diff)
		}
		if again := Diff(state(dev), b, canRemove); !again.Empty() {
			t.Fatalf("case %d: a second Diff is not empty: %+v", i, again)
		}
	}
}
