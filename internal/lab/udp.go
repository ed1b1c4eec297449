package lab

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// A UDP probe sends a datagram and waits for the echo that every lab address
// sends back from each UDP port a policy names (Options.UDPPorts).

// udpEcho answers every datagram to port at every address of s (one family)
// with the same bytes; Close stops it.
func udpEcho(s *stack.Stack, proto tcpip.NetworkProtocolNumber, port uint16) (*listener, error) {
	var wq waiter.Queue
	ep, err := bound(s, udp.ProtocolNumber, proto, port, &wq)
	if err != nil {
		return nil, fmt.Errorf("udp echo on port %d: %w", port, err)
	}
	c := gonet.NewUDPConn(&wq, ep)
	l := &listener{udp: c}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}()
	return l, nil
}

// udpProbe sends datagrams from s to dst until one comes back or ctx ends.
func udpProbe(ctx context.Context, s *stack.Stack, dst netip.AddrPort) (time.Duration, error) {
	c, err := gonet.DialUDP(s, nil, &tcpip.FullAddress{Addr: tcpipAddr(dst.Addr()), Port: dst.Port()}, protoOf(dst.Addr()))
	if err != nil {
		return 0, fmt.Errorf("udp %s: %v", dst, err)
	}
	defer c.Close()
	msg := []byte("wgnetlab udp probe")
	buf := make([]byte, 64)
	for ctx.Err() == nil {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, fmt.Errorf("udp %s: %v", dst, err)
		}
		deadline := start.Add(pingInterval)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		c.SetReadDeadline(deadline)
		if n, err := c.Read(buf); err == nil && bytes.Equal(buf[:n], msg) {
			return time.Since(start), nil
		}
	}
	return 0, fmt.Errorf("udp %s: no answer", dst)
}

// Echo sends UDP datagrams to dst from the node's stack until one is echoed
// or ctx ends, and returns the round-trip time.
func (n *Node) Echo(ctx context.Context, dst netip.AddrPort) (time.Duration, error) {
	return udpProbe(ctx, n.stack, dst)
}
