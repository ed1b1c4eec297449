package lab

import (
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// veth is one end of a point-to-point link between two stacks, like a veth pair:
// what one end's stack writes, the other end receives, on the writer's goroutine.
// Unlike gVisor's link/pipe it copies each packet, so two stacks never share
// packet memory. An end with an intercept hands what arrives to it (the host's
// router) instead of to its stack.
type veth struct {
	peer *veth
	mtu  uint32

	mu         sync.RWMutex // guards dispatcher and intercept
	dispatcher stack.NetworkDispatcher
	intercept  func([]byte)
}

var _ stack.LinkEndpoint = (*veth)(nil)

// newVeth returns both ends of a new link.
func newVeth(mtu uint32) (*veth, *veth) {
	a, b := &veth{mtu: mtu}, &veth{mtu: mtu}
	a.peer, b.peer = b, a
	return a, b
}

// setIntercept makes packets arriving at e go to f instead of e's stack.
func (e *veth) setIntercept(f func([]byte)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.intercept = f
}

// WritePackets sends copies of pkts to the other end.
func (e *veth) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		v := pkt.ToView()
		e.peer.receive(v.AsSlice())
		v.Release()
	}
	return pkts.Len(), nil
}

func (e *veth) receive(p []byte) {
	e.mu.RLock()
	f := e.intercept
	e.mu.RUnlock()
	if f != nil {
		f(p)
		return
	}
	e.deliver(p)
}

// deliver hands a copy of the IP packet p to e's stack.
func (e *veth) deliver(p []byte) {
	e.mu.RLock()
	d := e.dispatcher
	e.mu.RUnlock()
	proto, ok := ipProto(p)
	if d == nil || !ok {
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}

// send puts the IP packet p on the wire towards the other end's stack.
func (e *veth) send(p []byte) { e.peer.deliver(p) }

func (e *veth) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dispatcher = d
}

func (e *veth) IsAttached() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dispatcher != nil
}

func (e *veth) MTU() uint32                                { return e.mtu }
func (e *veth) SetMTU(uint32)                              {}
func (*veth) Capabilities() stack.LinkEndpointCapabilities { return 0 }
func (*veth) MaxHeaderLength() uint16                      { return 0 }
func (*veth) LinkAddress() tcpip.LinkAddress               { return "" }
func (*veth) SetLinkAddress(tcpip.LinkAddress)             {}
func (*veth) Wait()                                        {}
func (*veth) ARPHardwareType() header.ARPHardwareType      { return header.ARPHardwareNone }
func (*veth) AddHeader(*stack.PacketBuffer)                {}
func (*veth) ParseHeader(*stack.PacketBuffer) bool         { return true }
func (*veth) Close()                                       {}
func (*veth) SetOnCloseAction(func())                      {}

// ipProto returns the network protocol of the IP packet p.
func ipProto(p []byte) (tcpip.NetworkProtocolNumber, bool) {
	if len(p) == 0 {
		return 0, false
	}
	switch p[0] >> 4 {
	case 4:
		return header.IPv4ProtocolNumber, true
	case 6:
		return header.IPv6ProtocolNumber, true
	}
	return 0, false
}
