package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/agent"
	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
)

// TestInProcessDeltas (API v2): agents on the lab's in-process data plane
// follow a full mesh through per-agent deltas while one agent speaks only
// v1, as an agent one release older does (whole states). Hosts join, a
// fifth joins, one leaves, an admin changes a route, an endpoint and the
// policy; after each step every agent has applied the network's revision,
// its desired state is byte for byte the one the controller sends whole
// (GET /v1/agent/state), and the lab's matrix holds. The v2 agents got
// deltas, the v1 agent none.
func TestInProcessDeltas(t *testing.T) {
	f := newFleet(t)
	f.versions = map[string][]string{"old": {api.Version}}
	f.snapshotEvery = map[string]time.Duration{"fresh": time.Nanosecond} // a whole state before every poll
	ctx := context.Background()
	admin := f.c.admin
	if _, err := admin.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "mesh", Subnets: []string{"10.63.0.0/24", "fd63::/64"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, "n", api.CreateToken{Uses: 7, Routes: []string{"172.29.0.0/16"}})
	if err != nil {
		t.Fatal(err)
	}
	f.join(tok.Token, "m1", "192.0.2.21:51820", "172.29.1.0/24")
	f.join(tok.Token, "m2", "192.0.2.22:51820")
	f.join(tok.Token, "old", "192.0.2.23:51820")
	f.join(tok.Token, "fresh", "192.0.2.26:51820")
	f.converge("four joined")
	f.sameAsSnapshots("four joined")

	f.join(tok.Token, "m4", "192.0.2.24:51820")
	f.converge("a fifth joined")
	f.sameAsSnapshots("a fifth joined")

	f.join(tok.Token, "m5", "192.0.2.25:51820")
	f.converge("a sixth joined")
	f.leave("m2")
	f.converge("m2 left")
	f.sameAsSnapshots("m2 left")

	if _, err := admin.SetHost(ctx, "n", "m4", api.SetHost{Routes: []string{"172.29.4.0/24"}}); err != nil {
		t.Fatal(err)
	}
	f.converge("m4 routes 172.29.4.0/24")
	f.sameAsSnapshots("m4 routes 172.29.4.0/24")

	ep := "192.0.2.125:51820"
	if _, err := admin.SetHost(ctx, "n", "m5", api.SetHost{Endpoint: &ep}); err != nil {
		t.Fatal(err)
	}
	f.converge("m5 moved")
	f.sameAsSnapshots("m5 moved")

	// A policy that lets everything through under a default deny: every
	// host's filter changes (a delta's head), every pair stays reachable.
	p, err := admin.Policy(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	p.Default, p.Rules = "deny", []string{"allow any -> any"}
	if _, err := admin.SetPolicy(ctx, "n", p); err != nil {
		t.Fatal(err)
	}
	f.converge("policy: default deny, allow any -> any")
	f.sameAsSnapshots("policy")
	for name, r := range f.agents {
		if r.a.State().Filter == nil || r.a.State().Filter.DefaultAccept {
			t.Errorf("%s: filter %+v, want the policy's default deny", name, r.a.State().Filter)
		}
	}

	for name, r := range f.agents {
		n, whole := metric(t, r.a, "wgnet_agent_deltas_total"), metric(t, r.a, "wgnet_agent_whole_states_total")
		switch {
		case name == "old" && (n != 0 || whole < 6):
			t.Errorf("the v1 agent received %v deltas and %v whole states, want none and one a change", n, whole)
		case name == "fresh" && whole < 6:
			t.Errorf("the agent with a whole state due at every poll received %v whole states and %v deltas", whole, n)
		case name != "old" && n == 0:
			t.Errorf("%s received no delta", name)
		case name != "old" && name != "fresh" && whole >= n:
			t.Errorf("%s received %v whole states and %v deltas, want mostly deltas", name, whole, n)
		case metric(t, r.a, "wgnet_agent_delta_digest_mismatches_total") != 0:
			t.Errorf("%s: a delta made a state whose digest is not the controller's", name)
		}
		t.Logf("%s: %v deltas, %v whole states", name, n, whole)
	}
	f.rec.scan(t, f.keys)
}

// sameAsSnapshots checks that every agent's applied desired state is byte
// for byte (as JSON) the whole state the controller sends for its host.
func (f *fleet) sameAsSnapshots(what string) {
	t := f.t
	t.Helper()
	ctx := context.Background()
	for name, r := range f.agents {
		c, err := client.New(client.Options{URL: f.c.url, Token: r.a.Config().Credential, CAHash: f.c.caHash, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := c.AgentState(ctx)
		c.Close()
		if err != nil {
			t.Fatalf("%s: snapshot of %s: %v", what, name, err)
		}
		want, _ := json.Marshal(snap)
		got, _ := json.Marshal(r.a.State())
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %s's state differs from the controller's snapshot:\n got %s\nwant %s", what, name, got, want)
		}
	}
}

// metric is the value of a's counter or gauge name (summed over labels).
func metric(t testing.TB, a *agent.Agent, name string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return v
}
