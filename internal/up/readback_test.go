package up

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/wgnet/wgnet/internal/devconf"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// TestReadBackDevice: the read-back of single peers equals a full read after
// the change, on real wireguard-go (in process), including the peer that lost
// a prefix to another without being named by the change.
func TestReadBackDevice(t *testing.T) {
	e := device.NewEmbedded("rb", tuntest.NewChannelTUN().TUN(), bindtest.NewChannelBinds()[0], device.EmbeddedOptions{})
	defer e.Close()
	keys := make([]wgkey.Key, 6)
	var peers []device.PeerConfig
	for i := range keys {
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k.Public()
		peers = append(peers, device.PeerConfig{PublicKey: keys[i],
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 32)}})
	}
	if err := e.Configure(device.Config{Peers: peers}); err != nil {
		t.Fatal(err)
	}
	before, err := e.State()
	if err != nil {
		t.Fatal(err)
	}
	moved := netip.MustParsePrefix("10.0.0.2/32")
	plan := &Plan{dev: &devconf.Changes{Peers: []devconf.PeerChange{
		{Op: devconf.Update, PublicKey: keys[0], AddAllowedIPs: []netip.Prefix{moved}},
	}}}
	if err := e.Configure(device.Config{Peers: []device.PeerConfig{{PublicKey: keys[0], UpdateOnly: true, AllowedIPs: []netip.Prefix{moved}}}}); err != nil {
		t.Fatal(err)
	}
	got := readBackDevice(e, before, plan)
	if got == nil {
		t.Fatal("readBackDevice = nil on a device that reads single peers")
	}
	want, err := e.State()
	if err != nil {
		t.Fatal(err)
	}
	got.Normalize()
	want.Normalize()
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{}, netip.AddrPort{}), cmp.Comparer(func(a, b wgkey.Private) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("read back (-full read +single peers):\n%s", diff)
	}
	if p, _ := got.Peer(keys[1]); len(p.AllowedIPs) != 0 {
		t.Errorf("peer that lost its prefix still has %v", p.AllowedIPs)
	}
	if readBackDevice(deviceOnly{e}, before, plan) != nil {
		t.Error("readBackDevice on a device without PeerStates is not nil")
	}
	most := &Plan{dev: &devconf.Changes{}}
	for _, k := range keys[:4] {
		most.dev.Peers = append(most.dev.Peers, devconf.PeerChange{Op: devconf.Remove, PublicKey: k})
	}
	if readBackDevice(e, before, most) != nil {
		t.Error("readBackDevice of a change to most peers is not nil (a full read is as cheap)")
	}
}

// deviceOnly hides every method but Device's.
type deviceOnly struct{ device.Device }
