package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netmodel"
	"github.com/wgnet/wgnet/internal/policy"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// DefaultProbeTimeout bounds each probe when Options.ProbeTimeout is zero.
const DefaultProbeTimeout = time.Second

// maxParallelProbes bounds how many pairs are probed at once.
const maxParallelProbes = 64

// Options configures a Lab. The zero value is usable.
type Options struct {
	// Logger receives wireguard-go's log lines at debug level. Nil: discarded.
	Logger *slog.Logger
	// Progress is told what the lab is doing, for a live display. Calls are
	// serialized and may come with the lab's lock held: Progress must not call
	// the Lab. Nil: nobody is told.
	Progress func(Event)
	// ProbeTimeout bounds each probe (ICMP echo and TCP connect run side by
	// side), and the wait for the first handshakes before them. Zero:
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// Ports are TCP ports every lab address listens on and every probe
	// connects to, besides ProbePort: the ports a policy names. When set, or
	// when Policy is, each probe is a set of checks (Probe.Checks).
	Ports []uint16
	// UDPPorts are UDP ports every lab address echoes on and every probe
	// sends to (the udp ports a policy names).
	UDPPorts []uint16
	// Policy, when set, is what the probes are held to: the verdict of the
	// network's policy for a packet and the rule it comes from. Nil: every
	// address is meant to reach every other on every protocol and port.
	Policy func(policy.Packet) policy.Verdict
}

// EventKind says what an Event reports.
type EventKind int

const (
	EventHostUp     EventKind = iota // Host is up; Text gives its loopback address
	EventHandshakes                  // Done of Total peerings have a session
	EventProbe                       // Done of Total probes are finished
	EventNote                        // Text is worth telling as it happens
)

// Event is one step of progress.
type Event struct {
	Kind        EventKind
	Host        string
	Text        string
	Done, Total int
	// Final marks the last event of its kind in a run.
	Final bool
}

// Lab is a whole network running in this process. Every method is safe for
// concurrent use.
type Lab struct {
	opts Options
	pmu  sync.Mutex // serializes Progress calls

	// eps is the endpoint map the nodes' resolvers read; replaced on every change.
	eps atomic.Pointer[endpointMap]

	mu    sync.Mutex // guards hosts and notes
	hosts []*labHost // sorted by name
	notes []string
}

// labHost is one running host.
type labHost struct {
	hc      intent.Host
	node    *Node
	key     wgkey.Key // the public key it runs with
	subnets []Target  // stand-ins of hc.Routes
}

// Target is an address a probe goes to: a host's overlay address or the stand-in of
// one of its routed subnets.
type Target struct {
	Host   string       `json:"host"`
	Addr   netip.Addr   `json:"addr"`
	Subnet netip.Prefix `json:"subnet,omitzero"` // zero: an overlay address
}

// String names the target for people: "s2 192.168.100.11" or "s2 10.0.5.1 (10.0.5.0/24)".
func (t Target) String() string {
	if t.Subnet.IsValid() {
		return fmt.Sprintf("%s %s (%s)", t.Host, t.Addr, t.Subnet)
	}
	return fmt.Sprintf("%s %s", t.Host, t.Addr)
}

// Start runs every host: a node per host, up on loopback, with stand-ins for its
// routed subnets, configured with its config. On error everything started is closed.
func Start(ctx context.Context, hosts []intent.Host, opts Options) (*Lab, error) {
	if opts.ProbeTimeout == 0 {
		opts.ProbeTimeout = DefaultProbeTimeout
	}
	l := &Lab{opts: opts}
	l.eps.Store(&endpointMap{})
	if err := l.Update(ctx, hosts); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) progress(e Event) {
	if l.opts.Progress == nil {
		return
	}
	l.pmu.Lock()
	defer l.pmu.Unlock()
	l.opts.Progress(e)
}

// notef records a note once; the caller holds l.mu.
func (l *Lab) notef(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	if slices.Contains(l.notes, text) {
		return
	}
	l.notes = append(l.notes, text)
	l.progress(Event{Kind: EventNote, Text: text})
}

// Notes returns what the lab had to assume or could not map (throw-away keys,
// endpoints that name no host), in the order it found them.
func (l *Lab) Notes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.notes)
}

func validateHosts(hosts []intent.Host) error {
	var errs []error
	seen := make(map[string]bool)
	for i, h := range hosts {
		switch {
		case h.Name == "":
			errs = append(errs, fmt.Errorf("host %d has no name", i+1))
		case seen[h.Name]:
			errs = append(errs, fmt.Errorf("host %s is given twice", h.Name))
		}
		seen[h.Name] = true
	}
	return errors.Join(errs...)
}

// HostChanges is what Apply changed on one host.
type HostChanges struct {
	Host    string   `json:"host"`
	Added   bool     `json:"added,omitempty"` // the host is new
	Changes []string `json:"changes,omitempty"`
}

// Update makes the lab run hosts: new hosts start, hosts that went stop, and every
// other host gets only the difference from what it runs (Node.Configure), so
// their sessions keep going. Subnets that went stay attached until Close.
func (l *Lab) Update(ctx context.Context, hosts []intent.Host) error {
	_, err := l.Apply(ctx, hosts)
	return err
}

// Apply is Update that also reports what it changed. Like wg syncconf it is not
// atomic: on error some hosts may run the new configs and others the old.
func (l *Lab) Apply(ctx context.Context, hosts []intent.Host) ([]HostChanges, error) {
	if err := validateHosts(hosts); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()

	want := make(map[string]intent.Host, len(hosts))
	for _, h := range hosts {
		want[h.Name] = h
	}
	var kept []*labHost
	var out []HostChanges
	for _, h := range l.hosts {
		if _, ok := want[h.hc.Name]; ok {
			kept = append(kept, h)
			continue
		}
		h.node.Close()
		out = append(out, HostChanges{Host: h.hc.Name, Changes: []string{"stopped"}})
	}
	l.hosts = kept
	existing := make(map[string]*labHost)
	for _, h := range l.hosts {
		existing[h.hc.Name] = h
	}

	// Start new hosts, so that every host has its loopback port before anyone's
	// endpoints are mapped.
	var added []*labHost
	for _, hc := range hosts {
		if existing[hc.Name] != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		n, err := NewNode(hc.Name, NodeOptions{Endpoint: l.resolve, Logger: l.opts.Logger, MTU: hc.MTU, Ports: l.opts.Ports, UDPPorts: l.opts.UDPPorts})
		if err != nil {
			return out, err
		}
		h := &labHost{hc: hc, node: n}
		l.hosts = append(l.hosts, h)
		added = append(added, h)
		if err := n.Up(); err != nil {
			return out, err
		}
		l.progress(Event{Kind: EventHostUp, Host: hc.Name, Text: n.Addr().String()})
	}
	sort.Slice(l.hosts, func(i, j int) bool { return l.hosts[i].hc.Name < l.hosts[j].hc.Name })

	for _, h := range l.hosts {
		h.hc = want[h.hc.Name]
		h.key = h.node.keyFor(&h.hc)
	}
	for _, h := range added {
		if h.hc.PrivateKey.IsZero() {
			l.notef("%s: its config has no PrivateKey (set by a hook on the real host); the lab gives it a throw-away key, so peers that list its real public key can't reach it", h.hc.Name)
		}
	}
	l.storeEndpointsLocked()

	for _, h := range l.hosts {
		// Subnets first, so the node routes to them once configured.
		have := make(map[netip.Prefix]bool)
		for _, t := range h.subnets {
			have[t.Subnet] = true
		}
		for _, p := range h.hc.Routes {
			p = p.Masked()
			if have[p] {
				continue
			}
			a, err := h.node.AttachSubnet(p)
			if err != nil {
				return out, err
			}
			h.subnets = append(h.subnets, Target{Host: h.hc.Name, Addr: a, Subnet: p})
		}
	}
	isNew := make(map[*labHost]bool)
	for _, h := range added {
		isNew[h] = true
	}
	for _, h := range l.hosts {
		changes, err := h.node.Diff(&h.hc)
		if err != nil {
			return out, err
		}
		if err := h.node.Configure(&h.hc); err != nil {
			return out, err
		}
		hc := HostChanges{Host: h.hc.Name, Added: isNew[h]}
		if !isNew[h] {
			for _, c := range changes {
				if c.Peer.IsZero() {
					hc.Changes = append(hc.Changes, c.What)
				} else {
					hc.Changes = append(hc.Changes, "peer "+l.peerNameLocked(c.Peer)+": "+c.What)
				}
			}
		}
		if hc.Added || len(hc.Changes) > 0 {
			out = append(out, hc)
		}
	}
	return out, nil
}

// peerNameLocked names a public key: the lab host that has it, else the key.
func (l *Lab) peerNameLocked(k wgkey.Key) string {
	for _, h := range l.hosts {
		if h.key == k {
			return h.hc.Name
		}
	}
	return "key " + shortKey(k)
}

func shortKey(k wgkey.Key) string { return netmodel.ShortKey(k) }

// endpointMap maps the endpoints written in configs onto the lab's loopback ports.
type endpointMap struct {
	byEndpoint map[string]netip.AddrPort // "107.100.10.10:51820" → the host others reach there
	byKey      map[wgkey.Key]netip.AddrPort
	byName     map[string]netip.AddrPort
}

// resolve maps a peer's endpoint: first by the endpoint text (what other configs
// call that host), then by the peer's key, then by its name. A peer without an
// Endpoint gets none: the lab does not invent reachability.
func (l *Lab) resolve(p wgconf.Peer) (netip.AddrPort, bool) {
	if p.Endpoint == nil {
		return netip.AddrPort{}, false
	}
	m := l.eps.Load()
	if ap, ok := m.byEndpoint[p.Endpoint.String()]; ok {
		return ap, true
	}
	if ap, ok := m.byKey[p.PublicKey]; ok {
		return ap, true
	}
	if ap, ok := m.byName[p.Name]; ok && p.Name != "" {
		return ap, true
	}
	return netip.AddrPort{}, false
}

func (l *Lab) storeEndpointsLocked() {
	m := &endpointMap{
		byEndpoint: make(map[string]netip.AddrPort),
		byKey:      make(map[wgkey.Key]netip.AddrPort),
		byName:     make(map[string]netip.AddrPort),
	}
	hostOf := make(map[wgkey.Key]*labHost)
	for _, h := range l.hosts {
		ap := h.node.Addr()
		m.byKey[h.key] = ap
		m.byName[h.hc.Name] = ap
		hostOf[h.key] = h
	}
	names := make(map[string]map[string]bool) // endpoint text → host names it is used for
	for _, h := range l.hosts {
		for _, p := range h.hc.Peers {
			if p.Endpoint == nil {
				continue
			}
			t, ok := hostOf[p.PublicKey]
			if !ok {
				continue
			}
			ep := p.Endpoint.String()
			if names[ep] == nil {
				names[ep] = make(map[string]bool)
			}
			names[ep][t.hc.Name] = true
			m.byEndpoint[ep] = t.node.Addr()
		}
	}
	for _, ep := range sortedKeys(names) {
		if hs := names[ep]; len(hs) > 1 {
			delete(m.byEndpoint, ep)
			l.notef("endpoint %s is given for several hosts (%s); the lab maps it by each peer's key instead", ep, strings.Join(sortedKeys(hs), ", "))
		}
	}
	l.eps.Store(m)
	for _, h := range l.hosts {
		for _, p := range h.hc.Peers {
			if _, ok := l.resolve(p); p.Endpoint != nil && !ok {
				l.notef("%s: peer %s has Endpoint %s, which is no host of the lab; it gets no endpoint", h.hc.Name, peerLabelOf(p), p.Endpoint)
			}
		}
	}
}

func peerLabelOf(p wgconf.Peer) string { return peerLabel(&p) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Hosts returns the running hosts' names, sorted.
func (l *Lab) Hosts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, h := range l.hosts {
		out = append(out, h.hc.Name)
	}
	return out
}

// Node returns the node running host name.
func (l *Lab) Node(name string) (*Node, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h.hc.Name == name {
			return h.node, true
		}
	}
	return nil, false
}

// Targets returns every probe target of host name: its overlay addresses, then its
// subnets' stand-ins.
func (l *Lab) Targets(name string) []Target {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h.hc.Name == name {
			return l.targetsLocked(h)
		}
	}
	return nil
}

func (l *Lab) targetsLocked(h *labHost) []Target {
	var out []Target
	for _, a := range h.hc.Addresses {
		out = append(out, Target{Host: h.hc.Name, Addr: a.Addr()})
	}
	return append(out, h.subnets...)
}

// Close stops every host and waits for their stacks. The lab can't be used after.
func (l *Lab) Close() error {
	l.mu.Lock()
	hosts := l.hosts
	l.hosts = nil
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.node.Close()
		}()
	}
	wg.Wait()
	return nil
}
