package controller_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/agent"
	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/policy"
)

// TestNetworkPolicy: a controller network's policy (issue 13 on issue 14's
// controller) is set whole, checked against the hosts, guarded by the
// revision its editor read, logged as a change, and compiled into each
// host's state: the db host's agent gets a filter that lets the app host in on
// tcp/5432 only, which the agent reads back into the same intent the offline
// compiler makes.
func TestNetworkPolicy(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	c := f.client(t)
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.0.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	_, hubKey := pub(t)
	_, appKey := pub(t)
	if _, err := c.AddHost(ctx, "n", api.Host{Name: "hub", PublicKey: hubKey, Endpoint: "192.0.2.1:51820"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddHost(ctx, "n", api.Host{Name: "app", PublicKey: appKey, Tags: []string{"app"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateToken(ctx, "n", api.CreateToken{Uses: 1, Routes: []string{"172.20.3.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	dbPriv, dbKey := pub(t)
	e, err := client.Enroll(ctx, tok.Token, api.Host{Name: "db", PublicKey: dbKey, Routes: []string{"172.20.3.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetHost(ctx, "n", "db", api.SetHost{AddTags: []string{"db", "x"}, RemoveTags: []string{"x"}}); err != nil {
		t.Fatal(err)
	}

	p, err := c.Policy(ctx, "n")
	if err != nil || p.Revision != 5 || len(p.Rules) != 0 {
		t.Fatalf("policy of a new network = %+v, %v", p, err)
	}
	bad := p
	bad.Rules = []string{"allow nosuch -> db tcp 5432"}
	if _, err := c.SetPolicy(ctx, "n", bad); status(err) != 400 || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("a rule naming nothing = %v, want 400 naming it", err)
	}
	bad.Rules = []string{"allow app => db"}
	if _, err := c.SetPolicy(ctx, "n", bad); status(err) != 400 || !strings.Contains(err.Error(), "policy.rules[0]") {
		t.Errorf("a malformed rule = %v, want 400 naming it", err)
	}
	want := api.Policy{Revision: 5, Default: "deny",
		Groups: []api.PolicyGroup{{Name: "apps", Members: []string{"tag:app"}}, {Name: "dbs", Members: []string{"tag:db"}}},
		Rules:  []string{"allow apps -> dbs tcp 5432"}}
	got, err := c.SetPolicy(ctx, "n", want)
	if err != nil || got.Revision != 6 || strings.Join(got.Rules, "|") != "allow apps -> dbs tcp 5432" || got.Default != "deny" {
		t.Fatalf("set policy = %+v, %v", got, err)
	}
	if _, err := c.SetPolicy(ctx, "n", want); status(err) != 409 {
		t.Errorf("a second write from revision 5 = %v, want 409", err)
	}
	if ch, err := c.Changes(ctx, "n", 5); err != nil || len(ch.Changes) != 1 || ch.Changes[0].Kind != "policy-changed" {
		t.Errorf("changes after the policy = %+v, %v", ch, err)
	}

	st, err := f.agentClient(t, e.Credential).AgentState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Filter == nil || st.Filter.DefaultAccept || len(st.Filter.Rules) != 1 || st.Filter.Rules[0].Proto != "tcp" ||
		strings.Join(st.Filter.Rules[0].Ports, ",") != "5432" || !st.Filter.Rules[0].Accept {
		t.Fatalf("db's filter = %+v", st.Filter)
	}
	h, err := agent.Intent(&st, "/etc/wireguard/wg0.key", dbPriv.Public())
	if err != nil {
		t.Fatal(err)
	}
	app := h.Firewall.Filter
	for _, tc := range []struct {
		src, dst string
		proto    string
		port     uint16
		pass     bool
	}{
		{"10.0.0.2", "172.20.3.9", "tcp", 5432, true},  // app to db's subnet on 5432
		{"10.0.0.2", "10.0.0.3", "tcp", 5432, true},    // app to db itself
		{"10.0.0.2", "10.0.0.3", "tcp", 22, false},     // not ssh
		{"10.0.0.1", "10.0.0.3", "tcp", 5432, false},   // the hub is no app
		{"10.0.0.2", "172.20.3.9", "udp", 5432, false}, // not udp
	} {
		pk := policy.Packet{Src: netip.MustParseAddr(tc.src), Dst: netip.MustParseAddr(tc.dst), Proto: tc.proto, Port: tc.port}
		if v := policy.Eval(&app, pk); v.Accept != tc.pass {
			t.Errorf("%s: verdict %+v, want accept=%v", pk, v, tc.pass)
		}
	}
	cfg, err := c.Config(ctx, "n", "db")
	if err != nil || !strings.Contains(cfg.WgQuick, "wgnet-policy-") || !strings.Contains(cfg.WgQuick, "5432") {
		t.Errorf("db's rendered config carries no policy:\n%s (%v)", cfg.WgQuick, err)
	}
	// An empty policy removes it: the filter is gone.
	if _, err := c.SetPolicy(ctx, "n", api.Policy{}); err != nil {
		t.Fatal(err)
	}
	if st, err := f.agentClient(t, e.Credential).AgentState(ctx); err != nil || st.Filter != nil {
		t.Errorf("state after the policy was removed: filter %+v, %v", st.Filter, err)
	}
}
