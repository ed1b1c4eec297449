package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"sort"
	"sync"
	"time"
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
	To   Target `json:"to"`
	// Want says the pair is meant to reach each other. Without a policy every pair
	// of a hub or mesh is.
	Want bool   `json:"want"`
	ICMP Result `json:"icmp"`
	TCP  Result `json:"tcp"`
	// Why explains an unexpected result from the configs (see Explain).
	Why string `json:"why,omitempty"`
}

// OK reports whether both the echo and the TCP connect got through.
func (p Probe) OK() bool { return p.ICMP.OK && p.TCP.OK }

// Problem reports whether the result differs from the intent.
func (p Probe) Problem() bool { return p.Want != p.OK() }

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
		for _, dst := range l.hosts {
			if dst == src {
				continue
			}
			for _, t := range l.targetsLocked(dst) {
				jobs = append(jobs, job{len(m.Probes), src.node})
				m.Probes = append(m.Probes, Probe{From: src.hc.Name, To: t, Want: true})
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
			var inner sync.WaitGroup
			inner.Add(2)
			go func() {
				defer inner.Done()
				p.ICMP = result(j.node.Ping(pctx, p.To.Addr))
			}()
			go func() {
				defer inner.Done()
				p.TCP = result(j.node.Connect(pctx, netip.AddrPortFrom(p.To.Addr, ProbePort)))
			}()
			inner.Wait()
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
		}
	}
	sort.SliceStable(m.Probes, func(i, j int) bool {
		a, b := m.Probes[i], m.Probes[j]
		if a.From != b.From {
			return a.From < b.From
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
