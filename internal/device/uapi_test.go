package device

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/wgkey"
)

func TestEncodeUAPI(t *testing.T) {
	var priv wgkey.Private
	priv[0] = 0x08
	var pub wgkey.Key
	pub[0] = 0x01
	port, mark := 51820, 0
	ka := 25 * time.Second
	ep := netip.MustParseAddrPort("[2001:db8::1]:4242")
	got := encodeUAPI(Config{
		PrivateKey: &priv, ListenPort: &port, FwMark: &mark, ReplacePeers: true,
		Peers: []PeerConfig{
			{PublicKey: pub, Endpoint: &ep, PersistentKeepalive: &ka, ReplaceAllowedIPs: true,
				AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}},
			{PublicKey: pub, Remove: true, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/24")}},
			{PublicKey: pub, UpdateOnly: true, RemoveAllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")},
				AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}},
		},
	})
	want := "private_key=08" + strings.Repeat("0", 62) + "\n" +
		"listen_port=51820\nfwmark=0\nreplace_peers=true\n" +
		"public_key=01" + strings.Repeat("0", 62) + "\n" +
		"endpoint=[2001:db8::1]:4242\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.0.0.0/24\n" +
		"public_key=01" + strings.Repeat("0", 62) + "\nremove=true\n" +
		"public_key=01" + strings.Repeat("0", 62) + "\nupdate_only=true\nallowed_ip=-10.1.0.0/24\nallowed_ip=10.2.0.0/24\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("encodeUAPI (-want +got):\n%s", diff)
	}
}

func TestDecodeUAPI(t *testing.T) {
	priv, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	var peer wgkey.Key
	peer[31] = 0xff
	var psk wgkey.Private
	psk[0] = 0x42
	in := "private_key=" + priv.Hex() + "\nlisten_port=51820\nfwmark=4660\n" +
		"public_key=" + peer.Hex() + "\npreshared_key=" + psk.Hex() + "\nprotocol_version=1\n" +
		"endpoint=198.18.0.2:51820\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n" +
		"tx_bytes=148\nrx_bytes=92\npersistent_keepalive_interval=25\nallowed_ip=10.99.0.2/32\nallowed_ip=fd00::/64\n" +
		"some_future_key=1\nerrno=0\n"
	got, err := decodeUAPI(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &State{
		PublicKey: priv.Public(), PrivateKey: priv, ListenPort: 51820, FwMark: 4660,
		Peers: []PeerState{{
			PublicKey: peer, HasPresharedKey: true, PresharedKey: psk, Endpoint: netip.MustParseAddrPort("198.18.0.2:51820"),
			LastHandshake: time.Unix(1700000000, 5), TxBytes: 148, RxBytes: 92, PersistentKeepalive: 25 * time.Second,
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/32"), netip.MustParsePrefix("fd00::/64")},
		}},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{}, netip.AddrPort{})); diff != "" {
		t.Errorf("decodeUAPI (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"listen_port=x\n", "endpoint=1.2.3.4:5\n", "public_key=zz\n", "errno=22\n", "nokey\n"} {
		if _, err := decodeUAPI(bad); err == nil {
			t.Errorf("decodeUAPI(%q) = nil error", bad)
		}
	}
}

func FuzzDecodeUAPI(f *testing.F) {
	f.Add("listen_port=1\npublic_key=" + strings.Repeat("ab", 32) + "\nallowed_ip=10.0.0.0/8\nlast_handshake_time_sec=1\n")
	f.Add("private_key=" + strings.Repeat("00", 32) + "\nerrno=0\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := decodeUAPI(s)
		if err == nil && st == nil {
			t.Fatal("nil state without an error")
		}
	})
}

// TestReadState: an answer parsed as it arrives, in pieces cut anywhere
// (here 7 bytes at a time), is the answer parsed whole; an answer cut off
// before its blank line is io.ErrUnexpectedEOF; an errno answer is an error
// with its first line.
func TestReadState(t *testing.T) {
	var peer wgkey.Key
	peer[31] = 0xff
	answer := "listen_port=51820\npublic_key=" + peer.Hex() + "\nprotocol_version=1\nendpoint=198.18.0.2:51820\n" +
		"last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\nallowed_ip=10.99.0.2/32\nallowed_ip=fd00::/64\nerrno=0\n"
	want, err := decodeUAPI(answer)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(text string, step int) net.Conn {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			for i := 0; i < len(text); i += step {
				if _, err := server.Write([]byte(text[i:min(i+step, len(text))])); err != nil {
					return
				}
			}
		}()
		return client
	}
	got, _, err := readState(serve(answer+"\n", 7))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{}, netip.AddrPort{})); diff != "" {
		t.Errorf("read in pieces (-whole +pieces):\n%s", diff)
	}
	if _, _, err := readState(serve(answer, 7)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("answer without its blank line: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, first, err := readState(serve("errno=-22\n\n", 3)); err == nil || first != "errno=-22" {
		t.Errorf("errno answer: first line %q, %v", first, err)
	}
}
