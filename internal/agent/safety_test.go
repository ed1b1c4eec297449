package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/agent"
	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// fakeController serves the agent routes from a state the test sets.
type fakeController struct {
	mu    sync.Mutex
	st    api.AgentState
	moved chan struct{}
}

func (f *fakeController) set(st api.AgentState) {
	f.mu.Lock()
	f.st = st
	close(f.moved)
	f.moved = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeController) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	st, moved := f.st, f.moved
	f.mu.Unlock()
	w.Header().Set(api.VersionHeader, "v1")
	switch r.URL.Path {
	case "/v1/agent/state":
		json.NewEncoder(w).Encode(st)
	case "/v1/agent/changes":
		since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
		if st.Revision == since {
			select {
			case <-moved:
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			f.mu.Lock()
			st = f.st
			f.mu.Unlock()
		}
		out := api.AgentChanges{Revision: st.Revision, Changes: []api.Change{}}
		if st.Revision != since {
			out.Changes = append(out.Changes, api.Change{Revision: st.Revision, Kind: "host-changed", Host: "other"})
			out.State = &st
		}
		json.NewEncoder(w).Encode(out)
	case "/v1/agent/status":
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, r)
	}
}

// recordingPlane remembers the revisions of the intents it applied.
type recordingPlane struct {
	mu      sync.Mutex
	applied []string // each applied intent's first comment
}

func (p *recordingPlane) Apply(_ context.Context, _ string, h *intent.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applied = append(p.applied, h.Comments[0])
	return nil
}
func (p *recordingPlane) Peers(context.Context, string) ([]device.PeerState, error) { return nil, nil }
func (p *recordingPlane) Remove(context.Context, string) error                      { return nil }

// TestSafetyWindow: a change that moves the route to the controller's address
// into the tunnel, after which no controller answers, is rolled back when the
// window passes; the same without a change of path (a plain outage) changes
// nothing.
func TestSafetyWindow(t *testing.T) {
	for _, tc := range []struct {
		name         string
		pathChange   bool
		wantRollback bool
	}{{"path to the controller changed", true, true}, {"plain outage", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			own, _ := wgkey.GeneratePrivate()
			other, _ := wgkey.GeneratePrivate()
			state := func(rev uint64, allowed ...string) api.AgentState {
				return api.AgentState{Network: "n", Host: "me", Revision: rev, Subnets: []string{"127.0.0.0/8"}, Interface: "wgx",
					Addresses: []string{"127.0.5.2/8"}, ListenPort: 51820,
					Peers: []api.Peer{{Name: "other", PublicKey: other.Public().String(), AllowedIPs: allowed}}}
			}
			fc := &fakeController{st: state(2, "127.0.5.1/32"), moved: make(chan struct{})}
			srv := httptest.NewTLSServer(fc)
			defer srv.Close()
			dir := t.TempDir()
			keyFile := filepath.Join(dir, "k")
			if err := writeKey(keyFile, own); err != nil {
				t.Fatal(err)
			}
			cfg := agent.Config{Network: "n", Host: "me", Credential: "wgnet-agent-x", URLs: []string{srv.URL},
				CAHash: api.CAHash(srv.Certificate()), KeyFile: keyFile,
				Allow: agent.Allowed{PublicRoutes: true}} // the network is on loopback, where the fake controller is
			b, _ := json.Marshal(cfg)
			if err := os.WriteFile(filepath.Join(dir, agent.ConfigFile), b, 0o600); err != nil {
				t.Fatal(err)
			}
			plane := &recordingPlane{}
			a, err := agent.New(agent.Options{Dir: dir, Plane: plane, Wait: time.Second, SafetyWindow: time.Second,
				BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); a.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitFor(t, func() bool { return a.Applied() == 2 }, "revision 2 applied")
			next := state(3, "127.0.5.1/32", "127.0.7.0/24") // not the controller's 127.0.0.1
			if tc.pathChange {
				next = state(3, "127.0.5.1/32", "127.0.0.1/32") // the controller's address into the tunnel
			}
			fc.set(next)
			waitFor(t, func() bool { return a.Applied() == 3 }, "revision 3 applied")
			srv.CloseClientConnections()
			srv.Close() // no controller from now on
			time.Sleep(2500 * time.Millisecond)
			want := uint64(3)
			if tc.wantRollback {
				want = 2
			}
			if got := a.Applied(); got != want {
				plane.mu.Lock()
				t.Errorf("after the window: revision %d applied, want %d (applied: %q)", got, want, plane.applied)
				plane.mu.Unlock()
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
