package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wgnet/wgnet/internal/devconf"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netmodel"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// DefaultMTU is the tunnel MTU when a config sets none (wg-quick's default over a
// 1500-byte underlay).
const DefaultMTU = 1420

// Backend is what a node's device reports as its device.State.Backend.
const Backend = "lab"

// tunNIC is the stack's WireGuard interface; subnets get the NICs after it.
const tunNIC tcpip.NICID = 1

// NodeOptions configures a Node. The zero value is usable: no endpoints are mapped,
// logs are dropped, the MTU is DefaultMTU.
type NodeOptions struct {
	// Endpoint maps a peer's Endpoint onto the loopback address of the lab host it
	// means. ok=false leaves the peer without an endpoint. Nil: no peer gets one.
	Endpoint func(wgconf.Peer) (addr netip.AddrPort, ok bool)
	// Logger receives wireguard-go's log lines at debug level. Nil: discarded.
	Logger *slog.Logger
	// MTU of the tunnel; 0: DefaultMTU. It can't change once the node exists (a
	// later config's MTU is not applied).
	MTU int
	// Ports are TCP ports the node's addresses and its subnets' stand-ins listen
	// on besides ProbePort (the ports a policy names), UDPPorts the UDP ports
	// they echo on.
	Ports, UDPPorts []uint16
}

// listenAll opens the probe listeners of o on s for one family: TCP on every
// port, UDP echo on every UDP port.
func (o NodeOptions) listenAll(s *stack.Stack, proto tcpip.NetworkProtocolNumber) ([]*listener, error) {
	var out []*listener
	for _, port := range o.ports() {
		l, err := listen(s, proto, port, acceptAndClose)
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	for _, port := range o.UDPPorts {
		l, err := udpEcho(s, proto, port)
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

// ports returns every TCP port a node's address listens on.
func (o NodeOptions) ports() []uint16 {
	out := []uint16{ProbePort}
	for _, p := range o.Ports {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// Node is one lab host: a device.Embedded (upstream wireguard-go) whose "TUN" is an
// in-process gVisor stack, and whose UDP socket is on 127.0.0.1. Its WireGuard
// plane is a Device backend like the others (it passes devicetest.Run), and the
// node drives it like `wgnet sync` drives a real host: devconf works out the patch.
//
// The node behaves like the host's kernel under wg-quick: its stack owns the
// config's Address(es) and routes every peer's AllowedIPs into the tunnel (unless
// Table = off); what is not for the host is forwarded only when the config turns
// forwarding on (see router.go). A routed subnet is a separate stack behind a
// point-to-point link (AttachSubnet), like a container behind its bridge, so
// reaching it from the tunnel also needs forwarding.
type Node struct {
	name      string
	opts      NodeOptions
	log       *slog.Logger
	stack     *stack.Stack
	tun       *tunDevice
	bind      *loopBind
	dev       *device.Embedded
	throwaway wgkey.Private            // used when a config has no private key
	fwd       atomic.Pointer[fwdState] // the router's view; written under mu

	mu        sync.Mutex // guards the fields below
	up        bool
	closed    bool
	cfg       *intent.Host                 // last applied
	endpoints map[wgkey.Key]netip.AddrPort // endpoints set at the last Configure
	subnets   []*subnet
	listeners []*listener
}

// subnet is a routed subnet's stand-in: one address in it, on its own stack.
type subnet struct {
	prefix netip.Prefix
	addr   netip.Addr
	nic    tcpip.NICID // on the host's stack
	link   *veth       // the host's end
	stack  *stack.Stack
	lis    []*listener
}

// NewNode builds a node whose device is down. MTU: opts.MTU, else DefaultMTU.
func NewNode(name string, opts NodeOptions) (*Node, error) {
	mtu := opts.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < 1280 || mtu > 65535 {
		return nil, fmt.Errorf("host %s: MTU %d out of range 1280-65535", name, mtu)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("host", name)
	s, err := newStack()
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	n := &Node{
		name:      name,
		opts:      opts,
		log:       log,
		stack:     s,
		tun:       newTunDevice(mtu),
		bind:      newLoopBind(),
		endpoints: make(map[wgkey.Key]netip.AddrPort),
	}
	n.tun.input = n.fromTunnel
	n.tun.output = n.track
	if n.throwaway, err = wgkey.GeneratePrivate(); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	if err := s.CreateNIC(tunNIC, n.tun.ep); err != nil {
		n.tun.Close()
		n.tun.ep.Close()
		s.Destroy()
		return nil, fmt.Errorf("host %s: create tunnel NIC: %v", name, err)
	}
	devOpts := device.EmbeddedOptions{Backend: Backend}
	if opts.Logger != nil {
		devOpts.Logger = log
	}
	n.dev = device.NewEmbedded(name, n.tun, n.bind, devOpts)
	return n, nil
}

// Name returns the host name the node was made for.
func (n *Node) Name() string { return n.name }

// Up opens the UDP socket on 127.0.0.1 (a port the OS picks) and starts the device
// and the probe listeners.
func (n *Node) Up() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("node closed")
	}
	if n.up {
		return nil
	}
	if err := n.dev.Up(); err != nil {
		return fmt.Errorf("host %s: %w", n.name, err)
	}
	for _, proto := range []tcpip.NetworkProtocolNumber{ipv4.ProtocolNumber, ipv6.ProtocolNumber} {
		ls, err := n.opts.listenAll(n.stack, proto)
		n.listeners = append(n.listeners, ls...)
		if err != nil {
			return fmt.Errorf("host %s: %w", n.name, err)
		}
	}
	n.up = true
	return nil
}

// Addr returns the node's UDP address on loopback; invalid before Up.
func (n *Node) Addr() netip.AddrPort {
	st, err := n.State()
	if err != nil || st.ListenPort == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(st.ListenPort))
}

// PublicKey returns the public key the node runs with: its config's, or that of
// its throw-away key when the config has none.
func (n *Node) PublicKey() wgkey.Key {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.privateKeyFor(n.cfg).Public()
}

// privateKeyFor returns the private key the node runs with under cfg (nil: none
// yet): the config's, or the throw-away key when the config has none.
func (n *Node) privateKeyFor(cfg *intent.Host) wgkey.Private {
	if cfg != nil && !cfg.PrivateKey.IsZero() {
		return cfg.PrivateKey
	}
	return n.throwaway
}

// Diff returns what Configure(cfg) would change on the device, without changing it.
func (n *Node) Diff(cfg *intent.Host) ([]Change, error) {
	if cfg == nil {
		return nil, errors.New("nil config")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	d, _, err := n.diffLocked(cfg)
	if err != nil {
		return nil, err
	}
	return changeList(d), nil
}

// diffLocked works out, with devconf as `wgnet sync` does, what takes the device
// from what it runs to cfg, and returns the device configuration wanted. The node
// keeps its loopback port (ListenPort is not applied) and has no use for FwMark; a
// config without a private key runs with the node's throw-away key.
func (n *Node) diffLocked(cfg *intent.Host) (*devconf.Changes, *devconf.Want, error) {
	running, err := n.dev.State()
	if err != nil {
		return nil, nil, fmt.Errorf("host %s: %w", n.name, err)
	}
	w := devconf.FromHost(cfg, n.opts.Endpoint)
	priv := n.privateKeyFor(cfg)
	w.PrivateKey = &priv
	w.ListenPort, w.FwMark = nil, nil
	w.Configured = n.endpoints
	return devconf.Diff(running, w, n.dev.RemovesAllowedIPs()), w, nil
}

// Configure makes the node run cfg: the stack gets the config's addresses, routes
// and forwarding; the device gets only the difference from what it runs now, so
// sessions of unchanged peers keep going (see devconf). ListenPort is not applied:
// the node keeps its loopback port. FwMark, DNS and hooks other than forwarding
// have no meaning in the lab.
func (n *Node) Configure(cfg *intent.Host) error {
	if cfg == nil {
		return errors.New("nil config")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("node closed")
	}
	if err := n.configureStackLocked(cfg); err != nil {
		return fmt.Errorf("host %s: %w", n.name, err)
	}
	d, w, err := n.diffLocked(cfg)
	if err != nil {
		return err
	}
	add, remove := d.Patches()
	for _, patch := range []device.Config{add, remove} {
		if patch.Empty() {
			continue
		}
		if err := n.dev.Configure(patch); err != nil {
			return fmt.Errorf("host %s: %w", n.name, err)
		}
	}
	n.cfg = cfg
	clear(n.endpoints)
	for _, p := range w.Peers {
		if p.Endpoint.IsValid() {
			n.endpoints[p.PublicKey] = p.Endpoint
		}
	}
	return nil
}

// configureStackLocked sets addresses, routes and forwarding as wg-quick and the
// config's PostUp would on a Linux host.
func (n *Node) configureStackLocked(cfg *intent.Host) error {
	want := make(map[netip.Prefix]bool)
	for _, a := range cfg.Addresses {
		want[a] = true
	}
	for _, pa := range n.stack.AllAddresses()[tunNIC] {
		p := netip.PrefixFrom(netipAddr(pa.AddressWithPrefix.Address), pa.AddressWithPrefix.PrefixLen)
		if !want[p] {
			if err := n.stack.RemoveAddress(tunNIC, pa.AddressWithPrefix.Address); err != nil {
				return fmt.Errorf("remove address %s: %v", p, err)
			}
		}
		delete(want, p)
	}
	for p := range want {
		if err := n.stack.AddProtocolAddress(tunNIC, protocolAddress(p), stack.AddressProperties{}); err != nil {
			return fmt.Errorf("add address %s: %v", p, err)
		}
	}
	n.setRoutesLocked(cfg)
	return nil
}

// setRoutesLocked rebuilds the routing table (the stack's, for what the host sends
// itself, and the router's, for what it forwards) and the router's view of the
// host's addresses and forwarding switches.
func (n *Node) setRoutesLocked(cfg *intent.Host) {
	var routes []route
	// Subnets first: on equal prefixes the first route wins, as the container
	// bridge's route is there before wg-quick runs.
	for _, s := range n.subnets {
		routes = append(routes, route{s.prefix, s.nic})
	}
	st := &fwdState{local: make(map[netip.Addr]bool), links: make(map[tcpip.NICID]*veth)}
	if cfg != nil {
		for _, a := range cfg.Addresses {
			routes = append(routes, route{a.Masked(), tunNIC})
			st.local[a.Addr()] = true
		}
		if netmodel.TableRoutes(cfg.Table) {
			for _, p := range cfg.Peers {
				for _, a := range p.AllowedIPs {
					routes = append(routes, route{a.Masked(), tunNIC})
				}
			}
		}
		st.fwd4, st.fwd6 = cfg.Forward.V4, cfg.Forward.V6
	}
	st.filter, st.flows = filterOf(cfg), &flows{}
	if old := n.fwd.Load(); old != nil && reflect.DeepEqual(old.filter, st.filter) {
		st.flows = old.flows // the same filter: connections stay; a new one starts afresh
	}
	for _, s := range n.subnets {
		st.links[s.nic] = s.link
	}
	st.routes = setRoutes(n.stack, routes)
	n.fwd.Store(st)
}

// AttachSubnet puts a stand-in for routed subnet p behind the node, like a container
// on a bridge: a small stack holding the first usable address of p, with a default
// route back to the host. It returns that address.
func (n *Node) AttachSubnet(p netip.Prefix) (netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return netip.Addr{}, errors.New("node closed")
	}
	p = p.Masked()
	for _, s := range n.subnets {
		if s.prefix == p {
			return s.addr, nil
		}
	}
	addr := firstUsable(p)
	cs, err := newStack()
	if err != nil {
		return netip.Addr{}, err
	}
	nic := tcpip.NICID(2 + len(n.subnets))
	hostEnd, subnetEnd := newVeth(uint32(n.tun.mtu))
	if err := cs.CreateNIC(1, subnetEnd); err != nil {
		cs.Destroy()
		return netip.Addr{}, fmt.Errorf("subnet %s: create NIC: %v", p, err)
	}
	if err := cs.AddProtocolAddress(1, protocolAddress(netip.PrefixFrom(addr, p.Bits())), stack.AddressProperties{}); err != nil {
		cs.Destroy()
		return netip.Addr{}, fmt.Errorf("subnet %s: add address: %v", p, err)
	}
	def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if addr.Is6() {
		def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	setRoutes(cs, []route{{def, 1}})
	s := &subnet{prefix: p, addr: addr, nic: nic, link: hostEnd, stack: cs}
	hostEnd.setIntercept(n.fromSubnet)
	ls, err := n.opts.listenAll(cs, protoOf(addr))
	s.lis = ls
	if err != nil {
		s.close()
		return netip.Addr{}, fmt.Errorf("subnet %s: %w", p, err)
	}
	if err := n.stack.CreateNIC(nic, hostEnd); err != nil {
		s.close()
		return netip.Addr{}, fmt.Errorf("subnet %s: create host NIC: %v", p, err)
	}
	n.subnets = append(n.subnets, s)
	n.setRoutesLocked(n.cfg)
	return addr, nil
}

// firstUsable returns the first address after the network address (the address
// itself for a single-address prefix).
func firstUsable(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	if p.Bits() == a.BitLen() {
		return a
	}
	return a.Next()
}

func (s *subnet) close() {
	for _, l := range s.lis {
		l.Close()
	}
	s.stack.Destroy()
}

// State returns the device's view of itself.
func (n *Node) State() (*device.State, error) {
	st, err := n.dev.State()
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", n.name, err)
	}
	return st, nil
}

// Handshakes returns how many handshakes completed with the peer at remote, seen on
// the wire (the device only reports the last one).
func (n *Node) Handshakes(remote netip.AddrPort) int { return n.bind.Handshakes(remote) }

// Ping sends ICMP echo requests to dst from the node's stack until one is answered
// or ctx ends, and returns the round-trip time of the answered one.
func (n *Node) Ping(ctx context.Context, dst netip.Addr) (time.Duration, error) {
	return ping(ctx, n.stack, dst)
}

// probeStack is the stack a probe from address from starts at: the stand-in
// of the node's subnet with that address, else (zero, or none) the node's own.
func (n *Node) probeStack(from netip.Addr) *stack.Stack {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.subnets {
		if s.addr == from {
			return s.stack
		}
	}
	return n.stack
}

// Connect opens a TCP connection to dst from the node's stack and returns the time
// the handshake took.
func (n *Node) Connect(ctx context.Context, dst netip.AddrPort) (time.Duration, error) {
	return connect(ctx, n.stack, dst)
}

// Close stops the device, the listeners and every stack. It waits for the stacks'
// goroutines; wireguard-go's workers exit right after Close returns.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	lis, subnets := n.listeners, n.subnets
	n.listeners, n.subnets = nil, nil
	n.mu.Unlock()

	for _, l := range lis {
		l.Close()
	}
	n.dev.Close() // closes the tun device and the bind
	for _, s := range subnets {
		s.close()
	}
	n.stack.Close()
	n.tun.ep.Close()
	n.stack.Wait()
	return nil
}

// addrs returns the node's overlay addresses.
func (n *Node) addrs() []netip.Addr {
	var out []netip.Addr
	for _, pa := range n.stack.AllAddresses()[tunNIC] {
		out = append(out, netipAddr(pa.AddressWithPrefix.Address))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// keyFor returns the public key the node runs with under cfg.
func (n *Node) keyFor(cfg *intent.Host) wgkey.Key { return n.privateKeyFor(cfg).Public() }
