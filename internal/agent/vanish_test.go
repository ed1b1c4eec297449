package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
)

// TestVanishMidChange (issue 15): a change is committed, and the controller
// dies while it answers the agents (every answer cut half way), then is gone.
// No agent applies anything of the change: each keeps its last good state,
// and the network keeps working. When the controller returns, every agent
// applies the change.
func TestVanishMidChange(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	if _, err := f.c.admin.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.63.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := f.c.admin.CreateToken(ctx, "n", api.CreateToken{Uses: 4, Routes: []string{"172.29.0.0/16"}})
	if err != nil {
		t.Fatal(err)
	}
	f.join(tok.Token, "hub", "192.0.2.1:51820")
	f.join(tok.Token, "s1", "192.0.2.11:51820")
	f.join(tok.Token, "s2", "192.0.2.12:51820")
	f.converge("three joined")
	before := map[string]uint64{}
	for name, r := range f.agents {
		before[name] = r.a.Applied()
	}

	f.rec.cut.Store(true)
	// The change: s2 routes a subnet (every agent's state changes).
	if _, err := f.c.admin.SetHost(ctx, "n", "s2", api.SetHost{Routes: []string{"172.29.2.0/24"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the long polls wake, their answers are cut
	f.c.stop()
	f.rec.cut.Store(false)
	if f.rec.cuts.Load() < int64(len(f.agents)) {
		t.Fatalf("%d answers cut, want one at least for each of the %d agents", f.rec.cuts.Load(), len(f.agents))
	}
	time.Sleep(time.Second) // polls fail with the controller gone
	for name, r := range f.agents {
		if r.a.Applied() != before[name] {
			t.Errorf("%s applied revision %d from cut answers; want it to keep %d", name, r.a.Applied(), before[name])
		}
	}
	m, err := f.net.lab.Probe(ctx)
	if err != nil || len(m.Problems()) > 0 || len(m.Probes) == 0 {
		t.Fatalf("with the controller gone mid-change: %v, %d probes, problems %+v", err, len(m.Probes), m.Problems())
	}
	t.Logf("controller gone mid-change (%d answers cut): every agent kept its state, %d probes as intended", f.rec.cuts.Load(), len(m.Probes))

	f.c.serve(t, f.c.addr)
	f.converge("controller back: the change applied everywhere")
}
