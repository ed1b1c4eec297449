package lab

import (
	"errors"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
)

// TestLoopBindSendsOnlyToLoopback: the bind takes any endpoint a device is given,
// but sends to IPv4 loopback only.
func TestLoopBindSendsOnlyToLoopback(t *testing.T) {
	b := newLoopBind()
	fns, port, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, s := range []string{"198.18.0.1:51820", "[2001:db8::2]:4242", "[::1]:51820", "[::ffff:198.18.0.1]:1"} {
		ep, err := b.ParseEndpoint(s)
		if err != nil {
			t.Fatalf("ParseEndpoint(%q): %v", s, err)
		}
		if err := b.Send([][]byte{{0}}, ep); !errors.Is(err, errNotLoopback) {
			t.Errorf("Send to %s = %v, want errNotLoopback", s, err)
		}
	}
	self := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	ep, err := b.ParseEndpoint(self.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send([][]byte{[]byte("hello")}, ep); err != nil {
		t.Fatalf("Send to itself on loopback: %v", err)
	}
	packets, sizes, eps := [][]byte{make([]byte, 64)}, make([]int, 1), make([]conn.Endpoint, 1)
	n, err := fns[0](packets, sizes, eps)
	if err != nil || n != 1 || string(packets[0][:sizes[0]]) != "hello" || eps[0].DstToString() != self.String() {
		t.Errorf("receive = %d, %v, %q from %v; want 1 packet \"hello\" from %s", n, err, packets[0][:sizes[0]], eps[0], self)
	}
}
