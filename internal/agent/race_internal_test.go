package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// gatePlane is a data plane whose first Apply waits for gate to close; it
// records the comment of each intent applied and whether two applies ever
// overlapped.
type gatePlane struct {
	gate    chan struct{}
	entered chan struct{} // one value per Apply entered

	mu         sync.Mutex
	calls      int
	inside     int
	overlapped bool
	last       string
}

func (p *gatePlane) Apply(_ context.Context, _ string, h *intent.Host) error {
	p.mu.Lock()
	p.calls++
	first := p.calls == 1
	p.inside++
	p.overlapped = p.overlapped || p.inside > 1
	p.mu.Unlock()
	p.entered <- struct{}{}
	if first {
		<-p.gate
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inside--
	p.last = h.Comments[0]
	return nil
}
func (p *gatePlane) Peers(context.Context, string) ([]device.PeerState, error) { return nil, nil }
func (p *gatePlane) Remove(context.Context, string) error                      { return nil }

// testAgent is an agent on plane without a controller, its files in a
// temporary directory.
func testAgent(t *testing.T, plane DataPlane, more ...func(*Options)) *Agent {
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Dir: t.TempDir(), Plane: plane, Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), SafetyWindow: -1}
	for _, f := range more {
		f(&opts)
	}
	opts.defaults()
	a := &Agent{opts: opts, cfg: Config{Interface: "wgt", KeyFile: "/nonexistent"}, pub: k.Public(),
		kick: make(chan struct{}, 1), applying: make(chan struct{}, 1), clients: map[string]*client.Client{}}
	a.m = newMetrics(opts.Registry, a)
	return a
}

// testState is a desired state of revision rev with one peer per name.
func testState(t *testing.T, rev uint64, peers ...string) *api.AgentState {
	st := &api.AgentState{Network: "n", Host: "me", Revision: rev, Subnets: []string{"10.9.0.0/16"}, Addresses: []string{"10.9.0.1/16"}}
	for i, name := range peers {
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			t.Fatal(err)
		}
		st.Peers = append(st.Peers, api.Peer{Name: name, PublicKey: k.Public().String(), AllowedIPs: []string{fmt.Sprintf("10.9.1.%d/32", i+1)}})
	}
	return st
}

// TestReconcileRace: the periodic reconcile, inside the data plane with
// revision 1 when revision 2 arrives, does not put revision 1 back after it:
// the two applies never overlap and the interface ends at revision 2.
func TestReconcileRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		plane := &gatePlane{gate: make(chan struct{}), entered: make(chan struct{}, 4)}
		a := testAgent(t, plane)
		a.applied, a.up = testState(t, 1, "b"), true
		var wg sync.WaitGroup
		wg.Go(func() { a.reconcile(ctx) })
		<-plane.entered // the reconcile holds revision 1, inside Apply
		done := make(chan error, 1)
		go func() { done <- a.apply(ctx, testState(t, 2, "b", "c"), true) }()
		synctest.Wait() // revision 2 applied (the race) or waiting for the reconcile
		close(plane.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		plane.mu.Lock()
		defer plane.mu.Unlock()
		if plane.overlapped {
			t.Error("the periodic reconcile and apply were inside the data plane at once")
		}
		if want := "revision 2"; !strings.Contains(plane.last, want) || a.Applied() != 2 {
			t.Errorf("interface left at %q, agent says revision %d; want %s", plane.last, a.Applied(), want)
		}
	})
}

// unresolvedPlane is a data plane that says some peers' endpoint host names
// never resolved.
type unresolvedPlane struct {
	gatePlane
	names []string
}

func (p *unresolvedPlane) Unresolved() []string { return p.names }

// TestUnresolvedReported: peers a data plane configured without their
// endpoint are counted in wgnet_agent_endpoints_unresolved and named by
// Agent.Unresolved, until a reconcile finds every name resolving.
func TestUnresolvedReported(t *testing.T) {
	ctx := context.Background()
	plane := &unresolvedPlane{gatePlane: gatePlane{gate: make(chan struct{}), entered: make(chan struct{}, 4)}, names: []string{"b (b.test: no such host)"}}
	close(plane.gate)
	a := testAgent(t, plane)
	if err := a.apply(ctx, testState(t, 1, "b"), true); err != nil {
		t.Fatal(err)
	}
	<-plane.entered
	if got := gauge(t, a, "wgnet_agent_endpoints_unresolved"); got != 1 || !slices.Equal(a.Unresolved(), plane.names) {
		t.Errorf("after an apply with b unresolved: metric %v, Unresolved %q", got, a.Unresolved())
	}
	plane.names = nil
	a.reconcile(ctx)
	<-plane.entered
	if got := gauge(t, a, "wgnet_agent_endpoints_unresolved"); got != 0 || a.Unresolved() != nil {
		t.Errorf("after a reconcile with every name resolving: metric %v, Unresolved %q", got, a.Unresolved())
	}
}

// gauge is the value of the agent's gauge name, as a scrape reads it.
func gauge(t *testing.T, a *Agent, name string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
