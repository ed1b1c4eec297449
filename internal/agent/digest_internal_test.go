package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
)

// TestDigestMoved: the digest the agent keeps from delta to delta (from
// the peers that differ only) is, after each of 600 random deltas, the
// digest of the state worked out whole, and the wire state's; a delta that
// changed something changes it.
func TestDigestMoved(t *testing.T) {
	r := newHeldRand(7, 400)
	cur := hold(r.state(300))
	prev := summed{st: cur, sum: heldDigest(cur)}
	changed := 0
	for round := range 600 {
		d := r.delta(cur.Flat())
		next, err := cur.apply(d)
		if err != nil {
			continue // another base
		}
		got := movedDigest(prev, next)
		whole := heldDigest(next)
		if wire := api.StateDigest(next.Flat()); got != whole || whole != wire {
			t.Fatalf("round %d: moved %s, whole %s, of the wire state %s", round, got, whole, wire)
		}
		cf, _ := json.Marshal(cur.Flat())
		nf, _ := json.Marshal(next.Flat())
		nf, cf = withoutRevision(nf), withoutRevision(cf)
		if (string(cf) != string(nf)) != (got != prev.sum) {
			t.Fatalf("round %d: the state changed: %v; the digest: %v", round, string(cf) != string(nf), got != prev.sum)
		}
		if got != prev.sum {
			changed++
		}
		cur, prev = next, summed{st: next, sum: got}
	}
	t.Logf("%d of 600 deltas changed the digest", changed)
}

// withoutRevision is a state's JSON with its revision and URLs blanked,
// which the digest leaves out.
func withoutRevision(b []byte) []byte {
	var st api.AgentState
	if json.Unmarshal(b, &st) != nil {
		return b
	}
	st.Revision, st.URLs = 0, nil
	out, _ := json.Marshal(st)
	return out
}

// TestDigestMismatch: a delta whose digest is not that of the state it
// makes here (a state that differs from the controller's) is not applied:
// the agent counts it (wgnet_agent_delta_digest_mismatches_total) and takes
// the whole state; a delta with the right digest, or none (a controller of
// an earlier release), is applied as it is.
func TestDigestMismatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		digest func(want *api.AgentState) string
		whole  bool
	}{
		{"right", func(want *api.AgentState) string { return api.StateDigest(want).String() }, false},
		{"none", func(*api.AgentState) string { return "" }, false},
		{"wrong", func(want *api.AgentState) string {
			return api.StateDigest(want).Add(api.Digest{1}).String()
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, want := testState(t, 1, "b", "c"), testState(t, 2, "b", "c", "d")
			want.Peers[0], want.Peers[1] = base.Peers[0], base.Peers[1]
			d := &api.AgentDelta{From: 1, Revision: 2, Peers: want.Peers[2:], Digest: tc.digest(want)}
			var mu sync.Mutex
			states := 0
			quit := make(chan struct{})
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(api.VersionHeader, "v3,v2,v1")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case r.URL.Path == "/v1/agent/state":
					states++
					st := base
					if states > 1 {
						st = want
					}
					json.NewEncoder(w).Encode(st)
				case r.URL.Path == "/v1/agent/changes" && r.URL.Query().Get("since") == "1":
					json.NewEncoder(w).Encode(api.AgentChanges{Revision: 2, Changes: []api.Change{{Revision: 2}}, Delta: d})
				case r.URL.Path == "/v1/agent/changes":
					mu.Unlock()
					select {
					case <-r.Context().Done():
					case <-quit:
					}
					mu.Lock()
				default:
					w.WriteHeader(http.StatusAccepted)
				}
			}))
			defer srv.Close()
			defer close(quit)
			a := testAgent(t, &gatePlane{gate: closed(), entered: make(chan struct{}, 64)}, func(o *Options) { o.Wait = time.Minute })
			a.urls, a.cfg.CAHash, a.cfg.Credential = []string{srv.URL}, api.CAHash(srv.Certificate()), api.AgentCredentialPrefix+"test"
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); a.Run(ctx) }()
			defer func() { cancel(); <-done }()
			deadline := time.Now().Add(20 * time.Second)
			for a.Applied() != 2 {
				if time.Now().After(deadline) {
					t.Fatalf("revision 2 not applied in 20 s (at %d)", a.Applied())
				}
				time.Sleep(10 * time.Millisecond)
			}
			got, _ := json.Marshal(a.State())
			w, _ := json.Marshal(want)
			mu.Lock()
			whole := states > 1
			mu.Unlock()
			mismatches := gauge(t, a, "wgnet_agent_delta_digest_mismatches_total")
			if string(got) != string(w) || whole != tc.whole || (mismatches == 1) != tc.whole {
				t.Errorf("state %s\nwant %s\nwhole state taken again: %v (want %v), mismatches counted: %v", got, w, whole, tc.whole, mismatches)
			}
		})
	}
}
