package lab

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/devconf"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/device/devicetest"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func mustPriv(t *testing.T) wgkey.Private {
	t.Helper()
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

// TestDeviceConformance runs the shared Device conformance test on a lab node's
// WireGuard plane: wireguard-go on the node's gVisor stack and loopback socket,
// up, as every lab host runs. No root needed. Its endpoints are documentation
// addresses, which the loopback socket refuses to send to.
func TestDeviceConformance(t *testing.T) {
	devicetest.Run(t, func(t *testing.T) device.Device {
		n, err := NewNode("wgt-lab", NodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if err := n.Up(); err != nil {
			t.Fatal(err)
		}
		return n.dev
	})
}

func TestChangeList(t *testing.T) {
	priv := mustPriv(t)
	a, b := mustPriv(t).Public(), mustPriv(t).Public()
	ep := netip.MustParseAddrPort("127.0.0.1:4000")
	tests := []struct {
		name string
		d    devconf.Changes
		want []Change
	}{
		{name: "nothing"},
		{
			name: "removals before the rest, prefixes removed before added",
			d: devconf.Changes{
				PrivateKey: &priv,
				Peers: []devconf.PeerChange{
					{Op: devconf.Add, PublicKey: a, AllowedIPs: prefixes("10.0.0.1/32")},
					{Op: devconf.Update, PublicKey: b,
						PresharedKey:        &devconf.Change[wgkey.Private]{New: priv},
						Endpoint:            &devconf.Change[netip.AddrPort]{New: ep},
						PersistentKeepalive: &devconf.Change[time.Duration]{Old: 25 * time.Second},
						AddAllowedIPs:       prefixes("10.0.9.0/24"),
						RemoveAllowedIPs:    prefixes("10.0.4.0/24")},
					{Op: devconf.Remove, PublicKey: a},
				},
			},
			want: []Change{
				{What: "set private key"},
				{Peer: a, What: "remove peer"},
				{Peer: a, What: "add peer"},
				{Peer: b, What: "set preshared key"},
				{Peer: b, What: "endpoint 127.0.0.1:4000"},
				{Peer: b, What: "keepalive 0"},
				{Peer: b, What: "-allowed ip 10.0.4.0/24"},
				{Peer: b, What: "+allowed ip 10.0.9.0/24"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, changeList(&tt.d)); diff != "" {
				t.Errorf("changeList (-want +got):\n%s", diff)
			}
		})
	}
}
