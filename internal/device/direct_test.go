package device

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/wgnet/wgnet/internal/wgkey"
)

var stateOpts = []cmp.Option{
	cmpopts.EquateComparable(netip.Prefix{}, netip.AddrPort{}),
	cmp.Comparer(func(a, b wgkey.Private) bool { return a.Equal(b) }),
	cmpopts.EquateEmpty(),
}

// randomConfig is a device config whose peers cover what a get reports:
// with and without preshared keys, IPv4, IPv6 and no endpoints, keepalives,
// none to several allowed IPs of both families.
func randomConfig(t testing.TB, r *rand.Rand, n int) Config {
	priv, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	port, mark := 40000+r.IntN(20000), r.IntN(3)
	c := Config{PrivateKey: &priv, ListenPort: &port, FwMark: &mark}
	for i := range n {
		var p PeerConfig
		for j := range p.PublicKey {
			p.PublicKey[j] = byte(r.Uint32())
		}
		if r.IntN(3) == 0 {
			var psk wgkey.Key
			psk[0], psk[31] = byte(i), 1
			p.PresharedKey = &psk
		}
		switch r.IntN(3) {
		case 0:
			ep := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), uint16(1+r.IntN(65535)))
			p.Endpoint = &ep
		case 1:
			ep := netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1)), 51820)
			p.Endpoint = &ep
		}
		if r.IntN(2) == 0 {
			ka := time.Duration(r.IntN(100)) * time.Second
			p.PersistentKeepalive = &ka
		}
		for j := range r.IntN(4) {
			p.AllowedIPs = append(p.AllowedIPs,
				netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(j * 16)}), 28))
		}
		if r.IntN(3) == 0 {
			p.AllowedIPs = append(p.AllowedIPs, netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("fd00:%x::", i+1)), 64))
		}
		c.Peers = append(c.Peers, p)
	}
	return c
}

// newTestEmbedded is wireguard-go on a TUN that never comes up, with bind's
// endpoints: the device stays down, so bind is never opened and nothing is
// sent anywhere (no root needed either).
func newTestEmbedded(t testing.TB, bind conn.Bind) *Embedded {
	e := NewEmbedded("wgdirect", newDownTUN(), bind, EmbeddedOptions{})
	t.Cleanup(func() { e.Close() })
	return e
}

// downTUN is a tun.Device that never reports tun.EventUp (tuntest's
// ChannelTUN does, which brings the device up and opens its bind): reads
// wait for Close, writes are dropped.
type downTUN struct {
	closed chan struct{}
	events chan tun.Event
	once   sync.Once
}

func newDownTUN() *downTUN {
	return &downTUN{closed: make(chan struct{}), events: make(chan tun.Event)}
}

func (d *downTUN) File() *os.File { return nil }
func (d *downTUN) Read([][]byte, []int, int) (int, error) {
	<-d.closed
	return 0, os.ErrClosed
}
func (d *downTUN) Write(p [][]byte, _ int) (int, error) { return len(p), nil }
func (d *downTUN) MTU() (int, error)                    { return DefaultMTU, nil }
func (d *downTUN) Name() (string, error)                { return "wgdirect", nil }
func (d *downTUN) Events() <-chan tun.Event             { return d.events }
func (d *downTUN) BatchSize() int                       { return 1 }
func (d *downTUN) Close() error {
	d.once.Do(func() { close(d.closed); close(d.events) })
	return nil
}

// TestDirectStateMatchesIpcGet holds directState, which reads wireguard-go's
// unexported fields, to what wireguard-go's own get reports, on the standard
// bind's endpoints and on another bind's (read through DstToString); and
// stateOp's binary form to a round trip of it.
func TestDirectStateMatchesIpcGet(t *testing.T) {
	if directFieldsErr != nil {
		t.Fatalf("this wireguard-go's fields are not as directState expects: %v", directFieldsErr)
	}
	for _, bind := range []conn.Bind{conn.NewDefaultBind(), bindtest.NewChannelBinds()[0]} {
		t.Run(fmt.Sprintf("%T", bind), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			e := newTestEmbedded(t, bind)
			if err := e.Configure(randomConfig(t, r, 200)); err != nil {
				t.Fatal(err)
			}
			want, err := e.State()
			if err != nil {
				t.Fatal(err)
			}
			want.Name, want.Backend = "", ""
			got, err := directState(e.dev, nil)
			if err != nil {
				t.Fatal(err)
			}
			want.Normalize()
			got.Normalize()
			if diff := cmp.Diff(want, got, stateOpts...); diff != "" {
				t.Fatalf("directState (-IpcGet +direct):\n%s", diff)
			}
			back, err := decodeState(appendState(nil, got))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, back, stateOpts...); diff != "" {
				t.Fatalf("binary round trip (-sent +decoded):\n%s", diff)
			}

			// A few peers, one unknown: those, in the order asked.
			var gone wgkey.Key
			gone[3] = 9
			keys := []wgkey.Key{want.Peers[7].PublicKey, gone, want.Peers[0].PublicKey}
			some, err := directState(e.dev, keys)
			if err != nil {
				t.Fatal(err)
			}
			wantSome := *want
			wantSome.Peers = []PeerState{want.Peers[7], want.Peers[0]}
			if diff := cmp.Diff(&wantSome, some, stateOpts...); diff != "" {
				t.Fatalf("directState of two peers (-want +got):\n%s", diff)
			}
			none, err := e.PeerStates(nil)
			if err != nil || len(none.Peers) != 0 || none.ListenPort != want.ListenPort {
				t.Fatalf("PeerStates(nil) = %+v, %v; want the device's fields and no peer", none, err)
			}
		})
	}
}

// TestDirectStateWhileConfigured reads while sets change the peers, so that
// the race detector sees directState's locks against wireguard-go's; each
// read is one of the states the sets went through: every peer has its one
// allowed IP or none (the set removes a peer whole, or adds it whole).
func TestDirectStateWhileConfigured(t *testing.T) {
	e := newTestEmbedded(t, conn.NewDefaultBind())
	r := rand.New(rand.NewPCG(3, 4))
	base := randomConfig(t, r, 50)
	for i := range base.Peers {
		base.Peers[i].AllowedIPs = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}), 32)}
	}
	if err := e.Configure(base); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	var setErr error
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			p := base.Peers[i%len(base.Peers)]
			rm := PeerConfig{PublicKey: p.PublicKey, Remove: true}
			if err := e.Configure(Config{Peers: []PeerConfig{rm}}); err != nil {
				setErr = err
				return
			}
			if err := e.Configure(Config{Peers: []PeerConfig{p}}); err != nil {
				setErr = err
				return
			}
		}
	})
	for range 200 {
		st, err := directState(e.dev, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Peers) < len(base.Peers)-1 {
			t.Fatalf("read %d peers while one at a time is removed and added back", len(st.Peers))
		}
		for _, p := range st.Peers {
			if len(p.AllowedIPs) > 1 {
				t.Fatalf("peer %v: allowed IPs %v", p.PublicKey, p.AllowedIPs)
			}
		}
	}
	close(done)
	wg.Wait()
	if setErr != nil {
		t.Fatal(setErr)
	}
}

// TestDecodeStateRefuses: an answer cut anywhere, or with bytes left over,
// is an error, never a panic or a short state.
func TestDecodeStateRefuses(t *testing.T) {
	b := encodedState(t, 5)
	for n := range len(b) {
		if _, err := decodeState(b[:n]); err == nil {
			t.Fatalf("decodeState of the first %d of %d bytes: no error", n, len(b))
		}
	}
	if _, err := decodeState(append(b, 0)); err == nil {
		t.Fatal("decodeState with a byte too many: no error")
	}
}

// FuzzDecodeState: whatever the bytes, decodeState returns a state or an
// error, and a state it returns encodes back to the same state.
func FuzzDecodeState(f *testing.F) {
	f.Add(encodedState(f, 3))
	f.Add(appendState(nil, &State{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		again, err := decodeState(appendState(nil, st))
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if diff := cmp.Diff(st, again, stateOpts...); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// encodedState is stateOp's answer for a device of n random peers.
func encodedState(t testing.TB, n int) []byte {
	e := newTestEmbedded(t, conn.NewDefaultBind())
	if err := e.Configure(randomConfig(t, rand.New(rand.NewPCG(5, uint64(n))), n)); err != nil {
		t.Fatal(err)
	}
	st, err := directState(e.dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	return appendState(nil, st)
}

// TestEmbeddedPeerStatesUnavailable: with wireguard-go's fields not found,
// PeerStates says ErrUnsupported, and its callers read the whole State.
func TestEmbeddedPeerStatesUnavailable(t *testing.T) {
	e := newTestEmbedded(t, conn.NewDefaultBind())
	saved := directFieldsErr
	directFieldsErr = fmt.Errorf("%w: pretend", errDirectUnavailable)
	defer func() { directFieldsErr = saved }()
	if _, err := e.PeerStates(nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("PeerStates without the fields: %v, want ErrUnsupported", err)
	}
}
