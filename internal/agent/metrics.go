package agent

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// StaleAfter is the handshake age after which a peer counts as stale (the
// session is renewed every two minutes while traffic flows).
const StaleAfter = 180 * time.Second

// metrics are the agent's Prometheus metrics; the peers' are read from the
// device at each scrape.
type metrics struct {
	applied   prometheus.Gauge
	reachable prometheus.Gauge
	reconcile prometheus.Histogram
	failures  prometheus.Counter
	refused   prometheus.Counter
	rollbacks prometheus.Counter
	deltas    prometheus.Counter
	wholes    prometheus.Counter
	// digestMismatches counts deltas whose result differed from the
	// controller's state (its digest).
	digestMismatches prometheus.Counter
	// unresolved counts the peers configured without an endpoint, their
	// host name never resolved.
	unresolved prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry, a *Agent) *metrics {
	m := &metrics{
		applied: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wgnet_agent_revision_applied",
			Help: "The network revision whose desired state this host has applied."}),
		reachable: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wgnet_agent_controller_reachable",
			Help: "1 when the last request to a controller got an answer."}),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wgnet_agent_reconcile_duration_seconds",
			Help: "Time to reconcile the interface with a desired state.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "wgnet_agent_reconcile_failures_total",
			Help: "Desired states the data plane failed to apply (each undone)."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "wgnet_agent_refused_total",
			Help: "Desired states the agent's guardrails refused."}),
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "wgnet_agent_safety_rollbacks_total",
			Help: "Changes rolled back because no controller answered after they altered the path to it."}),
		deltas: prometheus.NewCounter(prometheus.CounterOpts{Name: "wgnet_agent_deltas_total",
			Help: "Desired states received as a delta onto the one applied (API v2), each checked whole before it is applied."}),
		wholes: prometheus.NewCounter(prometheus.CounterOpts{Name: "wgnet_agent_whole_states_total",
			Help: "Desired states received whole (at start, when a delta does not apply, from a v1 controller, and every SnapshotEvery)."}),
		digestMismatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "wgnet_agent_delta_digest_mismatches_total",
			Help: "Deltas whose result differed from the controller's state by the digest the delta carries (the whole state is then asked for)."}),
		unresolved: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wgnet_agent_endpoints_unresolved",
			Help: "Peers configured without an endpoint at the last reconcile because their host name has never resolved (resolved again at each periodic reconcile)."}),
	}
	reg.MustRegister(m.unresolved, m.applied, m.reachable, m.reconcile, m.failures, m.refused, m.rollbacks, m.deltas, m.wholes, m.digestMismatches, &peerCollector{a: a})
	return m
}

var (
	peersDesc = prometheus.NewDesc("wgnet_agent_peers", "Peers by state: up (a handshake within 180 s), stale, never.", []string{"state"}, nil)
	ageDesc   = prometheus.NewDesc("wgnet_agent_peer_handshake_age_seconds", "Seconds since the peer's last handshake (absent: never).", []string{"peer"}, nil)
	rxDesc    = prometheus.NewDesc("wgnet_agent_peer_receive_bytes_total", "Bytes received from the peer.", []string{"peer"}, nil)
	txDesc    = prometheus.NewDesc("wgnet_agent_peer_transmit_bytes_total", "Bytes sent to the peer.", []string{"peer"}, nil)
)

// peerCollector reads the interface's peers at each scrape.
type peerCollector struct{ a *Agent }

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{peersDesc, ageDesc, rxDesc, txDesc} {
		ch <- d
	}
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	a.mu.Lock()
	name := a.ifaceLocked()
	names := map[wgkey.Key]string{}
	if a.applied != nil {
		a.applied.each(func(p *api.Peer) { names[keyOf(p.PublicKey)] = p.Name })
	}
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	peers, err := a.opts.Plane.Peers(ctx, name)
	if err != nil {
		return
	}
	count := map[string]int{"up": 0, "stale": 0, "never": 0}
	for _, p := range peers {
		label := names[p.PublicKey]
		if label == "" {
			label = p.PublicKey.String()
		}
		switch {
		case p.LastHandshake.IsZero():
			count["never"]++
		case time.Since(p.LastHandshake) > StaleAfter:
			count["stale"]++
		default:
			count["up"]++
		}
		if !p.LastHandshake.IsZero() {
			ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, time.Since(p.LastHandshake).Seconds(), label)
		}
		ch <- prometheus.MustNewConstMetric(rxDesc, prometheus.CounterValue, float64(p.RxBytes), label)
		ch <- prometheus.MustNewConstMetric(txDesc, prometheus.CounterValue, float64(p.TxBytes), label)
	}
	for state, n := range count {
		ch <- prometheus.MustNewConstMetric(peersDesc, prometheus.GaugeValue, float64(n), state)
	}
}
