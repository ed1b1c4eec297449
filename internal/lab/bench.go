package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// BenchPort is the TCP port the benchmark's receiver listens on.
const BenchPort = 9

// DefaultBenchDuration is how long each benchmark copy runs when none is given.
const DefaultBenchDuration = 2 * time.Second

// BenchResult is TCP throughput through the tunnel next to the same copy between
// two stacks joined without WireGuard.
type BenchResult struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Path is the hosts the tunnel copy passes, per the configs: From, any hub
	// that forwards it, To.
	Path     []string      `json:"path"`
	Duration time.Duration `json:"-"`
	// Tunnel and Direct are in Gbit/s.
	Tunnel float64 `json:"tunnel_gbps"`
	Direct float64 `json:"direct_gbps"`
}

// Ratio is Tunnel / Direct: what share of the direct throughput WireGuard keeps.
func (r BenchResult) Ratio() float64 {
	if r.Direct == 0 {
		return 0
	}
	return r.Tunnel / r.Direct
}

// Bench copies data over TCP from host from to host to's first overlay address for
// d, then the same copy between two fresh stacks with the same MTU joined by packet
// queues and a goroutine each way, as the tunnel's stacks are, without WireGuard.
func (l *Lab) Bench(ctx context.Context, from, to string, d time.Duration) (BenchResult, error) {
	if d <= 0 {
		d = DefaultBenchDuration
	}
	res := BenchResult{From: from, To: to, Duration: d}
	var err error
	src, ok := l.Node(from)
	if !ok {
		return res, fmt.Errorf("bench: no host %q", from)
	}
	dst, ok := l.Node(to)
	if !ok {
		return res, fmt.Errorf("bench: no host %q", to)
	}
	if src == dst {
		return res, errors.New("bench: pick two different hosts")
	}
	addrs := dst.addrs()
	if len(addrs) == 0 {
		return res, fmt.Errorf("bench: %s has no overlay address", to)
	}
	if res.Path, err = l.explainer().route(from, addrs[0]); err != nil {
		return res, fmt.Errorf("bench: %s can't reach %s: %w", from, to, err)
	}
	bps, err := copyRate(ctx, src.stack, dst.stack, addrs[0], d)
	if err != nil {
		return res, fmt.Errorf("bench through the tunnel: %w", err)
	}
	res.Tunnel = bps / 1e9

	bps, err = directRate(ctx, src.tun.mtu, d)
	if err != nil {
		return res, fmt.Errorf("bench without WireGuard: %w", err)
	}
	res.Direct = bps / 1e9
	return res, nil
}

// directRate measures a copy between two stacks joined by a queue-and-goroutine link.
func directRate(ctx context.Context, mtu int, d time.Duration) (float64, error) {
	a, err := newStack()
	if err != nil {
		return 0, err
	}
	defer a.Destroy()
	b, err := newStack()
	if err != nil {
		return 0, err
	}
	defer b.Destroy()
	ea, eb := channel.New(tunQueue, uint32(mtu), ""), channel.New(tunQueue, uint32(mtu), "")
	defer ea.Close()
	defer eb.Close()
	addrA, addrB := netip.MustParsePrefix("198.18.0.1/30"), netip.MustParsePrefix("198.18.0.2/30")
	for _, x := range []struct {
		s  *stack.Stack
		ep *channel.Endpoint
		p  netip.Prefix
	}{{a, ea, addrA}, {b, eb, addrB}} {
		if err := x.s.CreateNIC(1, x.ep); err != nil {
			return 0, fmt.Errorf("create NIC: %v", err)
		}
		if err := x.s.AddProtocolAddress(1, protocolAddress(x.p), stack.AddressProperties{}); err != nil {
			return 0, fmt.Errorf("add address: %v", err)
		}
		setRoutes(x.s, []route{{x.p.Masked(), 1}})
	}
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	pump := func(from, to *channel.Endpoint) {
		defer wg.Done()
		for {
			pkt := from.ReadContext(pctx)
			if pkt == nil {
				return
			}
			proto := pkt.NetworkProtocolNumber
			np := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: pkt.ToBuffer()})
			pkt.DecRef()
			to.InjectInbound(proto, np)
			np.DecRef()
		}
	}
	wg.Add(2)
	go pump(ea, eb)
	go pump(eb, ea)
	defer func() { stop(); wg.Wait() }()
	return copyRate(ctx, a, b, addrB.Addr(), d)
}

// copyRate writes to dst on BenchPort from src for d and returns the bits per
// second the receiver counted, from accept to end of stream.
func copyRate(ctx context.Context, src, dst *stack.Stack, dstAddr netip.Addr, d time.Duration) (float64, error) {
	type got struct {
		n       int64
		elapsed time.Duration
		err     error
	}
	results := make(chan got, 1)
	l, err := listen(dst, protoOf(dstAddr), BenchPort, func(c net.Conn) {
		start := time.Now()
		n, err := discard(c)
		results <- got{n, time.Since(start), err}
	})
	if err != nil {
		return 0, err
	}
	defer l.Close()

	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(dctx, src, tcpip.FullAddress{Addr: tcpipAddr(dstAddr), Port: BenchPort}, protoOf(dstAddr))
	if err != nil {
		return 0, fmt.Errorf("connect to %s: %w", dstAddr, err)
	}
	deadline := time.Now().Add(d)
	c.SetWriteDeadline(deadline)
	buf := make([]byte, 64<<10)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := c.Write(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break
			}
			c.Close()
			return 0, fmt.Errorf("write: %w", err)
		}
	}
	c.SetWriteDeadline(time.Time{})
	c.Close()
	select {
	case r := <-results:
		if r.err != nil {
			return 0, r.err
		}
		if r.elapsed <= 0 {
			return 0, errors.New("no time elapsed")
		}
		return float64(r.n) * 8 / r.elapsed.Seconds(), nil
	case <-time.After(5 * time.Second):
		return 0, errors.New("receiver did not finish")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
