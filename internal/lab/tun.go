package lab

import (
	"context"
	"os"
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tunQueue is how many packets the stack may queue towards WireGuard before it drops.
const tunQueue = 4096

// tunDevice is the tun.Device wireguard-go reads and writes: the other side of a
// gVisor channel link endpoint, which is the stack's "wg0". Unlike
// tun/netstack.CreateNetTUN it hands over packets in batches and leaves the stack
// (and so forwarding) to its owner.
type tunDevice struct {
	ep *channel.Endpoint
	// input gets every packet WireGuard decrypted; it calls inject for those the
	// stack should see. Set before the device starts.
	input func([]byte)
	// output, if set, sees every packet that goes into WireGuard (the node's
	// flow table). Set before the device starts.
	output func([]byte)
	mtu    int
	events chan tun.Event
	ctx    context.Context // done when closed: unblocks Read
	cancel context.CancelFunc
	once   sync.Once
}

var _ tun.Device = (*tunDevice)(nil)

func newTunDevice(mtu int) *tunDevice {
	ctx, cancel := context.WithCancel(context.Background())
	t := &tunDevice{
		ep:     channel.New(tunQueue, uint32(mtu), ""),
		mtu:    mtu,
		events: make(chan tun.Event, 1),
		ctx:    ctx,
		cancel: cancel,
	}
	t.events <- tun.EventUp
	return t
}

func (t *tunDevice) File() *os.File           { return nil }
func (t *tunDevice) MTU() (int, error)        { return t.mtu, nil }
func (t *tunDevice) Name() (string, error)    { return "lab", nil }
func (t *tunDevice) Events() <-chan tun.Event { return t.events }
func (t *tunDevice) BatchSize() int           { return bindBatch }

// Read blocks for one packet the stack sent into the tunnel, then takes whatever
// else is queued, up to len(bufs).
func (t *tunDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	pkt := t.ep.ReadContext(t.ctx)
	if pkt == nil {
		return 0, os.ErrClosed
	}
	n := 0
	for pkt != nil {
		view := pkt.ToView()
		pkt.DecRef()
		k, _ := view.Read(bufs[n][offset:])
		view.Release()
		sizes[n] = k
		if t.output != nil {
			t.output(bufs[n][offset : offset+k])
		}
		n++
		if n == len(bufs) {
			break
		}
		pkt = t.ep.Read()
	}
	return n, nil
}

// Write hands decrypted packets to input (the node's router).
func (t *tunDevice) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		p := b[offset:]
		if len(p) == 0 {
			continue
		}
		if _, ok := ipProto(p); !ok {
			return 0, syscall.EAFNOSUPPORT
		}
		t.input(p)
	}
	return len(bufs), nil
}

// inject hands a copy of the IP packet p to the stack, as arriving from the tunnel.
func (t *tunDevice) inject(p []byte) {
	proto, ok := ipProto(p)
	if !ok {
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
	t.ep.InjectInbound(proto, pkt)
	pkt.DecRef()
}

// send queues a copy of the IP packet p for WireGuard, as if the stack sent it.
func (t *tunDevice) send(p []byte) {
	proto, ok := ipProto(p)
	if !ok {
		return
	}
	if t.output != nil {
		t.output(p)
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
	pkt.NetworkProtocolNumber = proto
	var list stack.PacketBufferList
	list.PushBack(pkt)
	t.ep.WritePackets(list) // the queue keeps its own reference; full: dropped
	pkt.DecRef()
}

// Close unblocks Read and ends the event stream; the stack owns the link endpoint.
func (t *tunDevice) Close() error {
	t.once.Do(func() {
		t.cancel()
		close(t.events)
	})
	return nil
}
