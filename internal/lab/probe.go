package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// ProbePort is the TCP port every lab address listens on for connect probes.
const ProbePort = 7

// pingInterval is how often ping repeats an unanswered echo request.
const pingInterval = 200 * time.Millisecond

// ping sends echo requests from s to dst until a reply comes or ctx ends. It uses a
// gVisor "ping socket" (ICMP datagram endpoint), which matches replies by identifier.
func ping(ctx context.Context, s *stack.Stack, dst netip.Addr) (time.Duration, error) {
	dst = dst.Unmap()
	tp, np := icmp.ProtocolNumber4, ipv4.ProtocolNumber
	reqType := byte(header.ICMPv4Echo)
	if dst.Is6() {
		tp, np = icmp.ProtocolNumber6, protoOf(dst)
		reqType = byte(header.ICMPv6EchoRequest)
	}
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(tp, np, &wq)
	if terr != nil {
		return 0, fmt.Errorf("ping socket: %v", terr)
	}
	defer ep.Close()
	if terr := ep.Connect(tcpip.FullAddress{Addr: tcpipAddr(dst)}); terr != nil {
		return 0, fmt.Errorf("ping %s: %v", dst, terr)
	}
	entry, readable := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)

	sent := make(map[uint16]time.Time)
	tick := time.NewTicker(pingInterval)
	defer tick.Stop()
	send := func(seq uint16) error {
		// type, code, checksum, identifier (the stack sets it), sequence, payload
		msg := make([]byte, 8+8)
		msg[0] = reqType
		binary.BigEndian.PutUint16(msg[6:], seq)
		copy(msg[8:], "wgnetlab")
		sent[seq] = time.Now()
		if _, terr := ep.Write(bytes.NewReader(msg), tcpip.WriteOptions{}); terr != nil {
			return fmt.Errorf("ping %s: %v", dst, terr)
		}
		return nil
	}
	var lastErr error
	seq := uint16(1)
	if err := send(seq); err != nil {
		lastErr = err
	}
	for {
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return 0, lastErr
			}
			return 0, fmt.Errorf("ping %s: no reply", dst)
		case <-tick.C:
			seq++
			if err := send(seq); err != nil {
				lastErr = err
			}
		case <-readable:
			for {
				var buf bytes.Buffer
				_, terr := ep.Read(&buf, tcpip.ReadOptions{})
				if terr != nil {
					break // would block: wait for the next event
				}
				b := buf.Bytes()
				if len(b) < 8 {
					continue
				}
				if t, ok := sent[binary.BigEndian.Uint16(b[6:])]; ok {
					return time.Since(t), nil
				}
			}
		}
	}
}

// connect opens a TCP connection from s to dst and closes it; the handshake time
// is the round trip.
func connect(ctx context.Context, s *stack.Stack, dst netip.AddrPort) (time.Duration, error) {
	start := time.Now()
	c, err := gonet.DialContextTCP(ctx, s, tcpip.FullAddress{Addr: tcpipAddr(dst.Addr()), Port: dst.Port()}, protoOf(dst.Addr()))
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("tcp %s: no answer", dst)
		}
		return 0, fmt.Errorf("tcp %s: %w", dst, err)
	}
	rtt := time.Since(start)
	c.Close()
	return rtt, nil
}

// listener is a TCP listener (or a UDP echo, udp.go) on a stack with the
// goroutines that serve it.
type listener struct {
	l    *gonet.TCPListener
	udp  *gonet.UDPConn
	wg   sync.WaitGroup
	mu   sync.Mutex // guards conns
	conn map[net.Conn]bool
}

// listen accepts TCP connections on port at every address of s (one family) and
// hands each to serve on its own goroutine; Close stops all of them.
func listen(s *stack.Stack, proto tcpip.NetworkProtocolNumber, port uint16, serve func(net.Conn)) (*listener, error) {
	var wq waiter.Queue
	ep, err := bound(s, tcp.ProtocolNumber, proto, port, &wq)
	if err != nil {
		return nil, fmt.Errorf("listen on port %d: %w", port, err)
	}
	if terr := ep.Listen(64); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("listen on port %d: %v", port, terr)
	}
	gl := gonet.NewTCPListener(s, &wq, ep)
	l := &listener{l: gl, conn: make(map[net.Conn]bool)}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := gl.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.conn[c] = true
			l.mu.Unlock()
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				serve(c)
				c.Close()
				l.mu.Lock()
				delete(l.conn, c)
				l.mu.Unlock()
			}()
		}
	}()
	return l, nil
}

// bound returns an endpoint of transport (tcp, udp) bound to port at every
// address of s in one family (IPv6 apart from IPv4), address reuse on.
func bound(s *stack.Stack, transport tcpip.TransportProtocolNumber, proto tcpip.NetworkProtocolNumber, port uint16, wq *waiter.Queue) (tcpip.Endpoint, error) {
	ep, terr := s.NewEndpoint(transport, proto, wq)
	if terr != nil {
		return nil, fmt.Errorf("%v", terr)
	}
	if proto == ipv6.ProtocolNumber {
		ep.SocketOptions().SetV6Only(true) // the IPv4 one is separate
	}
	ep.SocketOptions().SetReuseAddress(true) // connections of an earlier listener may linger
	if terr := ep.Bind(tcpip.FullAddress{Port: port}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("%v", terr)
	}
	return ep, nil
}

// Close stops accepting, closes open connections and waits for their goroutines.
func (l *listener) Close() {
	if l.udp != nil {
		l.udp.Close()
		l.wg.Wait()
		return
	}
	l.l.Close()
	l.mu.Lock()
	for c := range l.conn {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func acceptAndClose(net.Conn) {}

// discard reads until EOF and reports the byte count; used by the benchmark.
func discard(c net.Conn) (int64, error) {
	n, err := io.Copy(io.Discard, c)
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return n, err
}

// sendEcho sends one ICMP echo request from s to dst and does not wait for a reply.
func sendEcho(s *stack.Stack, dst netip.Addr) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // ping sends its first request before it looks at ctx
	_, err := ping(ctx, s, dst)
	if err != nil && strings.HasSuffix(err.Error(), "no reply") {
		return nil
	}
	return err
}
