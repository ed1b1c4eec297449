package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.zx2c4.com/wireguard/conn"
)

// bindBatch is how many datagrams one receive or send call moves (recvmmsg/sendmmsg
// on Linux).
const bindBatch = 64

// socketBuffer is the UDP socket buffer size the bind asks for.
const socketBuffer = 7 << 20

// WireGuard message types: the first byte of every datagram (little-endian uint32).
const (
	msgInitiation = 1
	msgResponse   = 2
)

// loopBind is a conn.Bind on 127.0.0.1 only. wireguard-go's StdNetBind listens on
// every address of the machine; a lab must not open ports to the outside, nor send
// anything there.
// It also counts completed handshakes per remote address (handshake responses seen
// in either direction), which the UAPI does not report.
type loopBind struct {
	mu   sync.Mutex // guards conn, pc and the batch buffers' use by Send
	conn *net.UDPConn
	pc   *ipv4.PacketConn
	out  []ipv4.Message // Send's buffers

	// rx belongs to the one goroutine wireguard-go runs per ReceiveFunc.
	rx  []ipv4.Message
	eps map[netip.AddrPort]*loopEndpoint

	cmu        sync.Mutex // guards handshakes
	handshakes map[netip.AddrPort]int
}

var _ conn.Bind = (*loopBind)(nil)

func newLoopBind() *loopBind {
	return &loopBind{
		eps:        make(map[netip.AddrPort]*loopEndpoint),
		handshakes: make(map[netip.AddrPort]int),
	}
}

// errNotLoopback is returned by Send for an endpoint that is not on 127.0.0.0/8.
var errNotLoopback = errors.New("lab sockets send only to IPv4 loopback")

// loopEndpoint is a peer's underlay address.
type loopEndpoint struct{ dst netip.AddrPort }

var _ conn.Endpoint = (*loopEndpoint)(nil)

func (e *loopEndpoint) ClearSrc()           {}
func (e *loopEndpoint) SrcToString() string { return "" }
func (e *loopEndpoint) DstToString() string { return e.dst.String() }
func (e *loopEndpoint) DstToBytes() []byte  { b, _ := e.dst.MarshalBinary(); return b }
func (e *loopEndpoint) DstIP() netip.Addr   { return e.dst.Addr() }
func (e *loopEndpoint) SrcIP() netip.Addr   { return netip.Addr{} }

// Open implements conn.Bind.
func (b *loopBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)))
	if err != nil {
		return nil, 0, fmt.Errorf("listen on 127.0.0.1:%d: %w", port, err)
	}
	// As wireguard-go's StdNetBind does: bursts of a fast tunnel overflow the
	// default socket buffers. Unprivileged, the kernel caps these at
	// net.core.rmem_max/wmem_max.
	_ = c.SetReadBuffer(socketBuffer)
	_ = c.SetWriteBuffer(socketBuffer)
	b.conn = c
	b.pc = ipv4.NewPacketConn(c)
	b.rx = newMessages()
	b.out = newMessages()
	actual := c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	pc, rx := b.pc, b.rx
	return []conn.ReceiveFunc{func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		return b.receive(pc, rx, packets, sizes, eps)
	}}, actual, nil
}

func newMessages() []ipv4.Message {
	msgs := make([]ipv4.Message, bindBatch)
	for i := range msgs {
		msgs[i].Buffers = make([][]byte, 1)
	}
	return msgs
}

func (b *loopBind) receive(pc *ipv4.PacketConn, msgs []ipv4.Message, packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	n := min(len(packets), len(msgs))
	for i := 0; i < n; i++ {
		msgs[i].Buffers[0] = packets[i]
	}
	got, err := pc.ReadBatch(msgs[:n], 0)
	if err != nil {
		return 0, err
	}
	for i := 0; i < got; i++ {
		m := &msgs[i]
		sizes[i] = m.N
		ap := m.Addr.(*net.UDPAddr).AddrPort()
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		ep, ok := b.eps[ap]
		if !ok {
			ep = &loopEndpoint{dst: ap}
			b.eps[ap] = ep
		}
		eps[i] = ep
		if m.N > 0 && packets[i][0] == msgResponse {
			b.countHandshake(ap)
		}
	}
	return got, nil
}

func (b *loopBind) countHandshake(remote netip.AddrPort) {
	b.cmu.Lock()
	b.handshakes[remote]++
	b.cmu.Unlock()
}

// Handshakes returns how many handshakes completed with remote, counted by the
// handshake responses sent to it or received from it.
func (b *loopBind) Handshakes(remote netip.AddrPort) int {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	return b.handshakes[remote]
}

// Close implements conn.Bind.
func (b *loopBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil
	}
	err := b.conn.Close()
	b.conn, b.pc = nil, nil
	return err
}

// SetMark implements conn.Bind; marks mean nothing on loopback.
func (b *loopBind) SetMark(uint32) error { return nil }

// Send implements conn.Bind.
func (b *loopBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	le, ok := ep.(*loopEndpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	if !le.dst.Addr().Is4() || !le.dst.Addr().IsLoopback() {
		// A lab never sends off the machine, whatever endpoint it is given.
		return fmt.Errorf("send to %s: %w", le.dst, errNotLoopback)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pc == nil {
		return net.ErrClosed
	}
	addr := net.UDPAddrFromAddrPort(le.dst)
	for len(bufs) > 0 {
		n := min(len(bufs), len(b.out))
		for i := 0; i < n; i++ {
			b.out[i].Buffers[0] = bufs[i]
			b.out[i].Addr = addr
			if len(bufs[i]) > 0 && bufs[i][0] == msgResponse {
				b.countHandshake(le.dst)
			}
		}
		sent := 0
		for sent < n {
			k, err := b.pc.WriteBatch(b.out[sent:n], 0)
			if err != nil {
				return err
			}
			sent += k
		}
		bufs = bufs[n:]
	}
	return nil
}

// ParseEndpoint implements conn.Bind. Any address is accepted, so that a device
// takes what any WireGuard device takes (devicetest.Run sets documentation
// addresses); Send refuses all but IPv4 loopback.
func (b *loopBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return &loopEndpoint{dst: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// BatchSize implements conn.Bind.
func (b *loopBind) BatchSize() int { return bindBatch }
