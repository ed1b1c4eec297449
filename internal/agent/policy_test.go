package agent_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/lab"
	"github.com/wgnet/wgnet/internal/policy"
)

// TestInProcessPolicy (issue 15's "and a policy, once it exists"): agents on
// the lab's in-process data plane follow a policy set on the controller. After
// each change every agent has applied the network's revision and the lab's
// matrix matches the policy the agents received, per protocol and port; the
// policy makes some pairs unreachable (so it is in force) and removing it
// makes every pair reachable again.
func TestInProcessPolicy(t *testing.T) {
	// What the policy below means, written from its rules by hand (not from
	// the filters the agents get): a packet to db1 or its subnet passes only
	// from app1 on tcp 5432; everything else passes. Set once the addresses
	// are known; nil: no policy, everything passes.
	var mu sync.Mutex
	var want func(policy.Packet) policy.Verdict
	f := newFleet(t, func(o *lab.Options) {
		o.Ports = []uint16{5432}
		o.Policy = func(p policy.Packet) policy.Verdict {
			mu.Lock()
			defer mu.Unlock()
			if want == nil {
				return policy.Verdict{Accept: true, Rule: -1, Origin: "no policy"}
			}
			return want(p)
		}
	})
	ctx := context.Background()
	admin := f.c.admin
	if _, err := admin.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.62.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, "n", api.CreateToken{Uses: 4, Routes: []string{"172.31.0.0/16"}})
	if err != nil {
		t.Fatal(err)
	}
	f.join(tok.Token, "hub", "192.0.2.1:51820")
	f.join(tok.Token, "app1", "192.0.2.11:51820")
	f.join(tok.Token, "db1", "192.0.2.12:51820", "172.31.2.0/24")
	f.join(tok.Token, "web1", "192.0.2.13:51820")
	for host, tag := range map[string]string{"app1": "app", "db1": "db"} {
		if _, err := admin.SetHost(ctx, "n", host, api.SetHost{AddTags: []string{tag}}); err != nil {
			t.Fatal(err)
		}
	}
	f.converge("four joined, tagged")

	hs, err := admin.Hosts(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	var app, db []netip.Prefix
	for _, h := range hs.Hosts {
		for _, a := range h.Addresses {
			switch h.Name {
			case "app1":
				app = append(app, netip.PrefixFrom(netip.MustParseAddr(a), 32))
			case "db1":
				db = append(db, netip.PrefixFrom(netip.MustParseAddr(a), 32), netip.MustParsePrefix("172.31.2.0/24"))
			}
		}
	}
	in := func(ps []netip.Prefix, a netip.Addr) bool {
		return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	mu.Lock()
	want = func(p policy.Packet) policy.Verdict {
		if !in(db, p.Dst) {
			return policy.Verdict{Accept: true, Rule: -1, Origin: "default allow"}
		}
		if in(app, p.Src) && p.Proto == policy.TCP && p.Port == 5432 {
			return policy.Verdict{Accept: true, Rule: 0, Origin: "allow apps -> dbs tcp 5432"}
		}
		return policy.Verdict{Accept: false, Rule: 1, Origin: "deny any -> dbs"}
	}
	mu.Unlock()

	p, err := admin.Policy(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	p.Groups = []api.PolicyGroup{{Name: "apps", Members: []string{"tag:app"}}, {Name: "dbs", Members: []string{"tag:db"}}}
	p.Rules = []string{"allow apps -> dbs tcp 5432", "deny any -> dbs"}
	if _, err := admin.SetPolicy(ctx, "n", p); err != nil {
		t.Fatal(err)
	}
	f.converge("policy: only apps reach dbs, on tcp 5432")
	m, err := f.net.lab.Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	denied, allowed, appToDB := 0, 0, 0
	for _, pr := range m.Probes {
		for _, c := range pr.Checks {
			if pr.From == "app1" && in(db, pr.To.Addr) && c.Proto == policy.TCP && c.Port == 5432 && c.Result.OK {
				appToDB++
			}
			switch {
			case c.Want && c.Result.OK:
				allowed++
			case !c.Want && !c.Result.OK:
				denied++
			}
		}
	}
	if appToDB != 2 {
		t.Errorf("app1 reached db1 and its subnet on tcp 5432 in %d of 2 checks", appToDB)
	}
	if denied == 0 || allowed == 0 {
		t.Errorf("with the policy: %d checks allowed and %d denied as intended; want some of each", allowed, denied)
	}
	t.Logf("with the policy: %d probes, %d checks allowed, %d denied, all as the policy says", len(m.Probes), allowed, denied)

	mu.Lock()
	want = nil
	mu.Unlock()
	if _, err := admin.SetPolicy(ctx, "n", api.Policy{}); err != nil {
		t.Fatal(err)
	}
	f.converge("policy removed")
	if m, err = f.net.lab.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pr := range m.Probes {
		if !pr.Want || pr.Problem() {
			t.Errorf("without a policy %s -> %s: want %v, problem %v", pr.From, pr.To, pr.Want, pr.Problem())
		}
	}
	f.rec.scan(t, f.keys)
}
