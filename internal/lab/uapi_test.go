package lab

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/wgconf"
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

func TestUAPIDiff(t *testing.T) {
	priv, other := mustPriv(t), mustPriv(t)
	a, b, c := mustPriv(t).Public(), mustPriv(t).Public(), mustPriv(t).Public()
	psk := mustPriv(t).Public() // any 32 bytes
	ep := netip.MustParseAddrPort("127.0.0.1:4000")
	running := NodeState{
		PublicKey: priv.Public(),
		Peers: []PeerState{
			{PublicKey: a, AllowedIPs: prefixes("10.0.0.1/32", "10.0.4.0/24"), Endpoint: ep},
			{PublicKey: b, AllowedIPs: prefixes("10.0.0.2/32")},
		},
	}
	last := map[wgkey.Key]netip.AddrPort{a: ep}
	tests := []struct {
		name        string
		priv        wgkey.Private
		peers       []desiredPeer
		wantBody    string
		wantChanges []string
	}{
		{
			name: "nothing changed",
			priv: priv,
			peers: []desiredPeer{
				{Peer: wgconf.Peer{PublicKey: a, AllowedIPs: prefixes("10.0.4.0/24", "10.0.0.1/32")}, endpoint: ep},
				{Peer: wgconf.Peer{PublicKey: b, AllowedIPs: prefixes("10.0.0.2/32")}},
			},
		},
		{
			name: "prefixes one by one, peer added and removed",
			priv: priv,
			peers: []desiredPeer{
				{Peer: wgconf.Peer{PublicKey: a, AllowedIPs: prefixes("10.0.0.1/32", "10.0.9.0/24")}, endpoint: ep},
				{Peer: wgconf.Peer{PublicKey: c, AllowedIPs: prefixes("10.0.0.3/32"), PresharedKey: psk, PersistentKeepalive: 25}, endpoint: netip.MustParseAddrPort("127.0.0.1:4001")},
			},
			wantBody: "public_key=" + b.Hex() + "\nremove=true\n" +
				"public_key=" + a.Hex() + "\nupdate_only=true\nallowed_ip=-10.0.4.0/24\nallowed_ip=10.0.9.0/24\n" +
				"public_key=" + c.Hex() + "\npreshared_key=" + psk.Hex() + "\nendpoint=127.0.0.1:4001\npersistent_keepalive_interval=25\nallowed_ip=10.0.0.3/32\n",
			wantChanges: []string{"remove peer", "-allowed ip 10.0.4.0/24", "+allowed ip 10.0.9.0/24", "add peer"},
		},
		{
			name: "new private key, moved endpoint",
			priv: other,
			peers: []desiredPeer{
				{Peer: wgconf.Peer{PublicKey: a, AllowedIPs: prefixes("10.0.0.1/32", "10.0.4.0/24")}, endpoint: netip.MustParseAddrPort("127.0.0.1:5000")},
				{Peer: wgconf.Peer{PublicKey: b, AllowedIPs: prefixes("10.0.0.2/32")}},
			},
			wantBody: "private_key=" + other.Hex() + "\n" +
				"public_key=" + a.Hex() + "\nupdate_only=true\nendpoint=127.0.0.1:5000\n",
			wantChanges: []string{"set private key", "endpoint 127.0.0.1:5000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, changes := uapiDiff(tt.priv, running, tt.peers, last)
			if diff := cmp.Diff(tt.wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			var got []string
			for _, c := range changes {
				got = append(got, c.What)
			}
			if diff := cmp.Diff(tt.wantChanges, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if strings.Contains(body, "replace_allowed_ips") || strings.Contains(body, "replace_peers") {
				t.Errorf("body replaces wholesale:\n%s", body)
			}
		})
	}
}

func TestParseState(t *testing.T) {
	priv := mustPriv(t)
	peer := mustPriv(t).Public()
	text := "private_key=" + priv.Hex() + "\nlisten_port=4000\n" +
		"public_key=" + peer.Hex() + "\npreshared_key=" + wgkey.Key{}.Hex() + "\nprotocol_version=1\n" +
		"endpoint=127.0.0.1:5000\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n" +
		"tx_bytes=10\nrx_bytes=20\npersistent_keepalive_interval=25\nallowed_ip=10.0.0.2/32\nallowed_ip=10.0.5.0/24\nerrno=0\n\n"
	got, err := parseState(text)
	if err != nil {
		t.Fatal(err)
	}
	want := NodeState{
		PublicKey:  priv.Public(),
		ListenPort: 4000,
		Peers: []PeerState{{
			PublicKey:     peer,
			Endpoint:      netip.MustParseAddrPort("127.0.0.1:5000"),
			LastHandshake: time.Unix(1700000000, 5),
			RxBytes:       20,
			TxBytes:       10,
			Keepalive:     25,
			AllowedIPs:    prefixes("10.0.0.2/32", "10.0.5.0/24"),
		}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(PeerState{}), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("parseState (-want +got):\n%s", diff)
	}
	if _, err := parseState("listen_port=x\n"); err == nil {
		t.Error("bad listen_port: no error")
	}
	if _, err := parseState("errno=1\n"); err == nil {
		t.Error("errno=1: no error")
	}
}
