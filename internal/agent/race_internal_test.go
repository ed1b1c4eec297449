package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

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
		a.applied, a.up = hold(testState(t, 1, "b")), true
		var wg sync.WaitGroup
		wg.Go(func() { a.reconcile(ctx) })
		<-plane.entered // the reconcile holds revision 1, inside Apply
		done := make(chan error, 1)
		go func() { done <- a.apply(ctx, hold(testState(t, 2, "b", "c")), true) }()
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
	mu    sync.Mutex
	peers []UnresolvedPeer
}

func (p *unresolvedPlane) Unresolved() []UnresolvedPeer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.peers)
}

func (p *unresolvedPlane) set(peers ...UnresolvedPeer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers = peers
}

// TestUnresolvedReported: peers a data plane configured without their
// endpoint are counted in wgnet_agent_endpoints_unresolved, named by
// Agent.Unresolved with the time first seen (kept while they stay so, and
// across a restart of the agent), and written to UnresolvedFile for `agent
// show`, until a reconcile finds every name resolving.
func TestUnresolvedReported(t *testing.T) {
	ctx := context.Background()
	plane := &unresolvedPlane{gatePlane: gatePlane{gate: closed(), entered: make(chan struct{}, 8)}}
	b := UnresolvedPeer{Peer: "b", Host: "b.test", Error: "no such host"}
	plane.set(b)
	a := testAgent(t, plane)
	before := time.Now()
	if err := a.apply(ctx, hold(testState(t, 1, "b")), true); err != nil {
		t.Fatal(err)
	}
	got := a.Unresolved()
	if g := gauge(t, a, "wgnet_agent_endpoints_unresolved"); g != 1 || len(got) != 1 || got[0].Peer != "b" || got[0].Host != "b.test" || got[0].Since.Before(before) {
		t.Fatalf("after an apply with b unresolved: metric %v, Unresolved %+v", g, got)
	}
	first := got[0].Since
	file, err := LoadUnresolved(a.opts.Dir)
	if err != nil || !slices.Equal(file, got) {
		t.Errorf("%s: %+v, %v; want %+v", UnresolvedFile, file, err, got)
	}
	// Still unresolved at the next apply: since when is kept.
	time.Sleep(10 * time.Millisecond)
	a.reconcile(ctx)
	if got := a.Unresolved(); len(got) != 1 || !got[0].Since.Equal(first) {
		t.Errorf("b still unresolved: %+v; want since %s", got, first)
	}
	// A new process of the agent over the same directory knows since when.
	b2 := testAgent(t, plane, func(o *Options) { o.Dir = a.opts.Dir })
	if u, err := LoadUnresolved(b2.opts.Dir); err != nil || len(u) != 1 || !u[0].Since.Equal(first) {
		t.Fatalf("the file read again: %+v, %v", u, err)
	}
	b2.loadUnresolved() // as New does
	if g := gauge(t, b2, "wgnet_agent_endpoints_unresolved"); g != 1 {
		t.Errorf("restarted: metric %v before the first apply; want 1", g)
	}
	if err := b2.apply(ctx, hold(testState(t, 1, "b")), false); err != nil {
		t.Fatal(err)
	}
	if got := b2.Unresolved(); len(got) != 1 || !got[0].Since.Equal(first) {
		t.Errorf("after a restart, b still unresolved: %+v; want since %s", got, first)
	}
	plane.set()
	a.reconcile(ctx)
	if g := gauge(t, a, "wgnet_agent_endpoints_unresolved"); g != 0 || a.Unresolved() != nil {
		t.Errorf("after a reconcile with every name resolving: metric %v, Unresolved %+v", g, a.Unresolved())
	}
	if _, err := os.Stat(filepath.Join(a.opts.Dir, UnresolvedFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s with every name resolving: %v; want it gone", UnresolvedFile, err)
	}
}

// gauge is the value of the agent's gauge (or counter) name, as a scrape
// reads it.
func gauge(t *testing.T, a *Agent, name string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestReportUnresolvedVersions: the status report names the peers configured
// without an endpoint (PeerStatus.Unresolved) only to a controller that says
// it speaks v3; a v2 controller (whose reader refuses fields it does not
// know, as the last release's does) gets the report of before, and takes it.
func TestReportUnresolvedVersions(t *testing.T) {
	// The last release's wire form of a report.
	type v2Peer struct {
		Host          string `json:"host,omitempty"`
		PublicKey     string `json:"public_key"`
		Endpoint      string `json:"endpoint,omitempty"`
		LastHandshake string `json:"last_handshake,omitempty"`
		RxBytes       uint64 `json:"rx_bytes"`
		TxBytes       uint64 `json:"tx_bytes"`
	}
	type v2Report struct {
		Revision uint64   `json:"revision"`
		Time     string   `json:"time"`
		Peers    []v2Peer `json:"peers"`
	}
	for _, speaks := range []string{"v2,v1", "v3,v2,v1"} {
		t.Run(speaks, func(t *testing.T) {
			ctx := context.Background()
			var got []api.AgentReport
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(api.VersionHeader, speaks)
				d := json.NewDecoder(r.Body)
				d.DisallowUnknownFields()
				var err error
				var rep api.AgentReport
				if speaks == "v2,v1" {
					err = d.Decode(&v2Report{})
				} else {
					err = d.Decode(&rep)
				}
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				got = append(got, rep)
				w.WriteHeader(http.StatusAccepted)
			}))
			defer srv.Close()
			plane := &unresolvedPlane{gatePlane: gatePlane{gate: closed(), entered: make(chan struct{}, 8)}}
			plane.set(UnresolvedPeer{Peer: "b", Host: "b.test", Error: "no such host"})
			a := testAgent(t, plane)
			a.urls, a.cfg.CAHash, a.cfg.Credential = []string{srv.URL}, api.CAHash(srv.Certificate()), api.AgentCredentialPrefix+"test"
			st := testState(t, 1, "a", "b")
			if err := a.apply(ctx, hold(st), true); err != nil {
				t.Fatal(err)
			}
			// The first report goes before any answer said what the
			// controller speaks: the report of before; the second knows.
			for i := range 2 {
				if err := a.Report(ctx); err != nil {
					t.Fatalf("report %d to a controller speaking %s: %v", i, speaks, err)
				}
			}
			if speaks == "v2,v1" {
				return
			}
			if len(got) != 2 || len(got[0].Peers) != 0 || len(got[1].Peers) != 1 {
				t.Fatalf("reports: %+v", got)
			}
			p := got[1].Peers[0]
			since, err := time.Parse(time.RFC3339Nano, p.Unresolved.Since)
			if p.PublicKey != st.Peers[1].PublicKey || p.Unresolved.Host != "b.test" || p.Unresolved.Error != "no such host" || err != nil || !since.Equal(a.Unresolved()[0].Since) {
				t.Errorf("b in the report: %+v %+v; want b's key, b.test, no such host, since %s", p, p.Unresolved, a.Unresolved()[0].Since)
			}
		})
	}
}
