package device_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.zx2c4.com/wireguard/wgctrl"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// newPeers returns n peers with distinct keys, each with one /32 and an
// endpoint.
func newPeers(t testing.TB, n int) []device.PeerConfig {
	peers := make([]device.PeerConfig, n)
	for i := range peers {
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			t.Fatal(err)
		}
		ep := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 51820)
		peers[i] = device.PeerConfig{PublicKey: k.Public(), Endpoint: &ep,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 64, byte(i >> 8), byte(i)}), 32)}}
	}
	return peers
}

// TestPeerStates reads single peers back from wgnet's daemon over its UAPI
// socket (the stateOp extension) and checks them against a full read: the
// device's own fields and exactly the peers asked for, a missing one left out.
// Debian's wireguard-go, which does not know the operation, is covered by
// TestDebianWireguardGoConformance's check that it says ErrUnsupported.
func TestPeerStates(t *testing.T) {
	if !netnstest.InNetns(t) {
		return
	}
	name := "wgt" + netnstest.Unique(8)
	u, err := device.NewUserspace(name, device.UserspaceOptions{UAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	priv, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	port := 51999
	peers := newPeers(t, 5)
	if err := u.Configure(device.Config{PrivateKey: &priv, ListenPort: &port, Peers: peers}); err != nil {
		t.Fatal(err)
	}
	d, err := device.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	full, err := d.State()
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Peers) != 5 || full.PublicKey != priv.Public() || full.ListenPort != port {
		t.Fatalf("full read: %d peers, key %v, port %d", len(full.Peers), full.PublicKey, full.ListenPort)
	}
	// The full read went through stateOp; wgctrl's, through the plain get,
	// must say the same.
	c, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ref, err := c.Device(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, rp := range ref.Peers {
		p, ok := full.Peer(wgkey.Key(rp.PublicKey))
		var ips []string
		for _, n := range rp.AllowedIPs {
			ips = append(ips, n.String())
		}
		if !ok || p.Endpoint.String() != rp.Endpoint.String() || fmt.Sprint(p.AllowedIPs) != fmt.Sprint(ips) {
			t.Errorf("peer %v: stateOp read %+v; wgctrl read endpoint %v, allowed IPs %v", rp.PublicKey, p, rp.Endpoint, ips)
		}
	}
	var gone wgkey.Key
	gone[0] = 7
	want := &device.State{Name: name, Backend: device.BackendUserspace, PublicKey: full.PublicKey,
		PrivateKey: full.PrivateKey, ListenPort: port}
	for _, k := range []wgkey.Key{peers[3].PublicKey, peers[1].PublicKey} {
		p, _ := full.Peer(k)
		want.Peers = append(want.Peers, *p)
	}
	want.Normalize()
	for _, r := range []device.PeerReader{d.(device.PeerReader), u} {
		got, err := r.PeerStates([]wgkey.Key{peers[1].PublicKey, gone, peers[3].PublicKey})
		if err != nil {
			t.Fatalf("%T: %v", r, err)
		}
		got.Normalize()
		if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{}, netip.AddrPort{}), cmp.Comparer(func(a, b wgkey.Private) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("%T: PeerStates (-want +got):\n%s", r, diff)
		}
		none, err := r.PeerStates(nil)
		if err != nil || len(none.Peers) != 0 || none.ListenPort != port {
			t.Errorf("%T: PeerStates(nil) = %d peers, port %d, %v; want none, %d", r, len(none.Peers), none.ListenPort, err, port)
		}
	}
	// wg(8)'s path through the same socket still works: get and set go on to
	// wireguard-go's handler.
	if err := d.Configure(device.Config{Peers: []device.PeerConfig{{PublicKey: peers[0].PublicKey, Remove: true}}}); err != nil {
		t.Fatal(err)
	}
	if after, err := d.State(); err != nil || len(after.Peers) != 4 {
		t.Fatalf("after removing one peer: %v, %v", after, err)
	}
}

// BenchmarkState10k reads a userspace device with 10,000 peers over its UAPI
// socket, as `wgnet sync` does before and after a change: wgctrl's reader (the
// baseline, what wgnet used before), wgnet's full read from its own daemon
// (stateOp: no text formatted or parsed), and the read of one peer from it
// that a one-peer change's read-back is. It reports each in milliseconds and the ratios to wgctrl.
// It creates the device in a throw-away namespace; needs root.
func BenchmarkState10k(b *testing.B) {
	netnstest.RequireRoot(b)
	ns := netnstest.New(b, "b")
	name := "wgb" + netnstest.Unique(8)
	var u *device.Userspace
	if err := ns.Do(func() (err error) {
		u, err = device.NewUserspace(name, device.UserspaceOptions{UAPI: true})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	peers := newPeers(b, 10000)
	if err := u.Configure(device.Config{Peers: peers}); err != nil {
		b.Fatal(err)
	}
	var d device.Device
	if err := ns.Do(func() (err error) { d, err = device.Open(name); return err }); err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	c, err := wgctrl.New()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	one := []wgkey.Key{peers[5000].PublicKey}
	var tWgctrl, tOwn, tPeer time.Duration
	for b.Loop() { // interleaved, so that load on the machine hits all three alike
		t0 := time.Now()
		dev, err := c.Device(name)
		t1 := time.Now()
		st, err2 := d.State()
		t2 := time.Now()
		ps, err3 := d.(device.PeerReader).PeerStates(one)
		t3 := time.Now()
		if err := errors.Join(err, err2, err3); err != nil {
			b.Fatal(err)
		}
		if len(dev.Peers) != 10000 || len(st.Peers) != 10000 || len(ps.Peers) != 1 {
			b.Fatal(fmt.Sprintf("peers read: wgctrl %d, own %d, one %d", len(dev.Peers), len(st.Peers), len(ps.Peers)))
		}
		tWgctrl, tOwn, tPeer = tWgctrl+t1.Sub(t0), tOwn+t2.Sub(t1), tPeer+t3.Sub(t2)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(tWgctrl), "wgctrl-ms")
	b.ReportMetric(ms(tOwn), "own-ms")
	b.ReportMetric(ms(tPeer), "one-peer-ms")
	b.ReportMetric(float64(tWgctrl)/float64(tOwn), "wgctrl/own")
	b.ReportMetric(float64(tWgctrl)/float64(tPeer), "wgctrl/one-peer")
}
