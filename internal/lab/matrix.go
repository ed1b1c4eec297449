package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wgnet/wgnet/internal/policy"
)

// Result is the outcome of one probe.
type Result struct {
	OK  bool
	RTT time.Duration
	Err string
}

// MarshalJSON gives the RTT in milliseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	type out struct {
		OK    bool    `json:"ok"`
		RTTms float64 `json:"rtt_ms,omitempty"`
		Err   string  `json:"error,omitempty"`
	}
	return json.Marshal(out{r.OK, float64(r.RTT.Microseconds()) / 1000, r.Err})
}

// Probe is one source host → target pair: what was wanted and what happened.
type Probe struct {
	From string `json:"from"`
	// FromSubnet, with a policy, is the stand-in address of one of From's
	// routed subnets the probe starts at (its containers); zero: From itself.
	FromSubnet netip.Addr `json:"from_subnet,omitzero"`
	To         Target     `json:"to"`
	// Want says the pair is meant to reach each other. Without a policy every pair
	// of a hub or mesh is.
	Want bool   `json:"want"`
	ICMP Result `json:"icmp"`
	TCP  Result `json:"tcp"`
	// Checks, with a policy or extra ports (Options), are every protocol and
	// port probed (ICMP echo, TCP to ProbePort, TCP to each port of Options),
	// each with what the policy wants and why; ICMP and TCP repeat the first two.
	Checks []Check `json:"checks,omitempty"`
	// Why explains an unexpected result from the configs (see Explain).
	Why string `json:"why,omitempty"`
	// NotProbed says why the probe was not sent ("": it was): From has no
	// overlay address (assign_address: false, a `wg showconf` file), so
	// nothing can be sent from it by overlay address, or none of To's family
	// (an IPv4 address only in a dual-stack network), or the probe starts at
	// the stand-in of a subnet of the other family. Not a problem.
	NotProbed string `json:"not_probed,omitempty"`
}

// NoOverlayAddress is the NotProbed of a probe from a host without an overlay
// address.
const NoOverlayAddress = "no overlay address"

// NoFamilyAddress is the NotProbed of a probe from a host with no overlay
// address of the target's family: "no IPv6 overlay address".
func NoFamilyAddress(target netip.Addr) string {
	return "no " + familyName(target) + " overlay address"
}

func familyName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// notProbed says why a probe from src (from its overlay address, or from
// the stand-in fromSubnet of one of its subnets) to t can't be sent: no
// source address of t's family. "" when it can.
func notProbed(src *labHost, t Target, fromSubnet netip.Addr) string {
	switch {
	case fromSubnet.IsValid() && fromSubnet.Is4() != t.Addr.Is4():
		return "no " + familyName(t.Addr) + " address in an " + familyName(fromSubnet) + " subnet"
	case fromSubnet.IsValid():
		return ""
	case len(src.hc.Addresses) == 0:
		return NoOverlayAddress
	case !slices.ContainsFunc(src.hc.Addresses, func(a netip.Prefix) bool { return a.Addr().Is4() == t.Addr.Is4() }):
		return NoFamilyAddress(t.Addr)
	}
	return ""
}

// Check is one protocol and port of a probe.
type Check struct {
	Proto string `json:"proto"` // icmp, tcp or udp
	Port  uint16 `json:"port,omitempty"`
	// Want is what the policy says; Rule the rule (or default) it comes from.
	Want   bool   `json:"want"`
	Rule   string `json:"rule,omitempty"`
	Result Result `json:"result"`
}

// Problem reports whether the check's result differs from the policy.
func (c Check) Problem() bool { return c.Want != c.Result.OK }

// Name is "icmp" or "tcp/PORT".
func (c Check) Name() string {
	if c.Proto == "icmp" {
		return c.Proto
	}
	return fmt.Sprintf("%s/%d", c.Proto, c.Port)
}

// OK reports whether both the echo and the TCP connect got through (every
// check, when there are checks).
func (p Probe) OK() bool {
	if len(p.Checks) > 0 {
		return !slices.ContainsFunc(p.Checks, func(c Check) bool { return !c.Result.OK })
	}
	return p.ICMP.OK && p.TCP.OK
}

// Problem reports whether the result differs from the intent. A probe not
// sent is none.
func (p Probe) Problem() bool {
	if p.NotProbed != "" {
		return false
	}
	if len(p.Checks) > 0 {
		return slices.ContainsFunc(p.Checks, Check.Problem)
	}
	return p.Want != p.OK()
}

// Matrix is every probe of one run, sorted by source host and target.
type Matrix struct {
	Hosts  []string `json:"hosts"`
	Probes []Probe  `json:"probes"`
}

// Problems returns the probes whose result differs from the intent.
func (m *Matrix) Problems() []Probe {
	var out []Probe
	for _, p := range m.Probes {
		if p.Problem() {
			out = append(out, p)
		}
	}
	return out
}

// Probe sends an ICMP echo and opens a TCP connection from every host to every
// target of every other host, all pairs in parallel, each bounded by the probe
// timeout, and explains each unexpected result.
func (l *Lab) Probe(ctx context.Context) (*Matrix, error) {
	l.mu.Lock()
	m := &Matrix{}
	type job struct {
		idx  int
		node *Node
	}
	var jobs []job
	for _, src := range l.hosts {
		m.Hosts = append(m.Hosts, src.hc.Name)
		// With a policy, a host's subnets are sources too: "s2 and its
		// containers" is what a rule about s2 means.
		froms := []netip.Addr{{}}
		if l.opts.Policy != nil {
			for _, t := range src.subnets {
				froms = append(froms, t.Addr)
			}
		}
		for _, dst := range l.hosts {
			if dst == src {
				continue
			}
			for _, t := range l.targetsLocked(dst) {
				for _, from := range froms {
					p := l.newProbe(src, t, from)
					if p.NotProbed = notProbed(src, t, from); p.NotProbed == "" {
						jobs = append(jobs, job{len(m.Probes), src.node})
					}
					m.Probes = append(m.Probes, p)
				}
			}
		}
	}
	l.mu.Unlock()

	total := len(jobs)
	l.prime(ctx)
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, maxParallelProbes)
		dmu  sync.Mutex
		done int
	)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p := &m.Probes[j.idx]
			pctx, cancel := context.WithTimeout(ctx, l.opts.ProbeTimeout)
			defer cancel()
			runChecks(pctx, j.node.probeStack(p.FromSubnet), p)
			dmu.Lock()
			done++
			d := done
			dmu.Unlock()
			l.progress(Event{Kind: EventProbe, Done: d, Total: total})
		}()
	}
	wg.Wait()
	done, all := l.sessions()
	l.progress(Event{Kind: EventHandshakes, Done: done, Total: all, Final: true})
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	ex := l.explainer()
	for i := range m.Probes {
		p := &m.Probes[i]
		if p.Problem() {
			p.Why = ex.explain(p.From, p.To, p.OK())
			if len(p.Checks) > 0 {
				p.Why = checksWhy(p) + p.Why
			}
		}
	}
	sort.SliceStable(m.Probes, func(i, j int) bool {
		a, b := m.Probes[i], m.Probes[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.FromSubnet != b.FromSubnet {
			return a.FromSubnet.Less(b.FromSubnet)
		}
		if a.To.Host != b.To.Host {
			return a.To.Host < b.To.Host
		}
		if a.To.Subnet.IsValid() != b.To.Subnet.IsValid() {
			return !a.To.Subnet.IsValid()
		}
		return a.To.Addr.Less(b.To.Addr)
	})
	return m, nil
}

// newProbe is a probe from host src to target t: without a policy or extra
// ports, ICMP and TCP to ProbePort, both meant to pass; else one check per
// protocol and port, each wanted as the policy says.
func (l *Lab) newProbe(src *labHost, t Target, fromSubnet netip.Addr) Probe {
	p := Probe{From: src.hc.Name, FromSubnet: fromSubnet, To: t, Want: true}
	if len(l.opts.Ports) == 0 && len(l.opts.UDPPorts) == 0 && l.opts.Policy == nil {
		return p
	}
	p.Checks = []Check{{Proto: policy.ICMP}, {Proto: policy.TCP, Port: ProbePort}}
	for _, port := range l.opts.Ports {
		if port != ProbePort {
			p.Checks = append(p.Checks, Check{Proto: policy.TCP, Port: port})
		}
	}
	for _, port := range l.opts.UDPPorts {
		p.Checks = append(p.Checks, Check{Proto: policy.UDP, Port: port})
	}
	from := fromSubnet
	for _, a := range src.hc.Addresses {
		if !from.IsValid() && a.Addr().Is4() == t.Addr.Is4() {
			from = a.Addr()
		}
	}
	for i := range p.Checks {
		c := &p.Checks[i]
		c.Want = true
		if l.opts.Policy != nil && from.IsValid() {
			v := l.opts.Policy(policy.Packet{Src: from, Dst: t.Addr, Proto: c.Proto, Port: c.Port})
			c.Want, c.Rule = v.Accept, v.Origin
		}
		p.Want = p.Want && c.Want
	}
	return p
}

// runChecks runs p's probes from stack n side by side: ICMP echo, TCP
// connects, UDP echoes.
func runChecks(ctx context.Context, n *stack.Stack, p *Probe) {
	var wg sync.WaitGroup
	if len(p.Checks) == 0 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			p.ICMP = result(ping(ctx, n, p.To.Addr))
		}()
		go func() {
			defer wg.Done()
			p.TCP = result(connect(ctx, n, netip.AddrPortFrom(p.To.Addr, ProbePort)))
		}()
		wg.Wait()
		return
	}
	for i := range p.Checks {
		c := &p.Checks[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch c.Proto {
			case policy.ICMP:
				c.Result = result(ping(ctx, n, p.To.Addr))
			case policy.UDP:
				c.Result = result(udpProbe(ctx, n, netip.AddrPortFrom(p.To.Addr, c.Port)))
			default:
				c.Result = result(connect(ctx, n, netip.AddrPortFrom(p.To.Addr, c.Port)))
			}
		}()
	}
	wg.Wait()
	p.ICMP, p.TCP = p.Checks[0].Result, p.Checks[1].Result
}

// checksWhy says which checks differ from the policy and which rule wanted what.
func checksWhy(p *Probe) string {
	var parts []string
	for _, c := range p.Checks {
		if !c.Problem() {
			continue
		}
		got := "blocked"
		if c.Result.OK {
			got = "passed"
		}
		parts = append(parts, fmt.Sprintf("%s %s, the policy wants %s (%s)", c.Name(), got, passText(c.Want), c.Rule))
	}
	return strings.Join(parts, "; ") + ". "
}

func passText(want bool) string {
	if want {
		return "pass"
	}
	return "blocked"
}

func result(rtt time.Duration, err error) Result {
	if err != nil {
		return Result{Err: err.Error()}
	}
	return Result{OK: true, RTT: rtt}
}

// sessions counts peer entries with a completed handshake, over all hosts.
func (l *Lab) sessions() (done, total int) {
	l.mu.Lock()
	nodes := make([]*Node, 0, len(l.hosts))
	for _, h := range l.hosts {
		nodes = append(nodes, h.node)
	}
	l.mu.Unlock()
	for _, n := range nodes {
		st, err := n.State()
		if err != nil {
			continue
		}
		for _, p := range st.Peers {
			total++
			if !p.LastHandshake.IsZero() {
				done++
			}
		}
	}
	return done, total
}

// MarshalJSON adds the verdicts: "ok" (both probes got through) and "problem"
// (the result differs from the intent).
func (p Probe) MarshalJSON() ([]byte, error) {
	type plain Probe
	return json.Marshal(struct {
		plain
		OK      bool `json:"ok"`
		Problem bool `json:"problem"`
	}{plain(p), p.OK(), p.Problem()})
}
