package agent_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
)

// TestRouteApproval (issue 15): a host that asks, when it joins, for a route
// its token does not allow joins without it; the route waits for an admin,
// no agent routes it meanwhile, and once the admin approves it every agent
// converges with it and the lab reaches the subnet.
func TestRouteApproval(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	admin := f.c.admin
	if _, err := admin.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.64.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, "n", api.CreateToken{Uses: 3, Routes: []string{"172.28.1.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	f.join(tok.Token, "hub", "192.0.2.1:51820")
	f.join(tok.Token, "s1", "192.0.2.11:51820", "172.28.1.0/24", "172.27.0.0/24")
	f.converge("joined; 172.27.0.0/24 waits")
	hs, err := admin.Hosts(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs.Hosts {
		if h.Name == "s1" && (!slices.Equal(h.Routes, []string{"172.28.1.0/24"}) || !slices.Equal(h.PendingRoutes, []string{"172.27.0.0/24"})) {
			t.Fatalf("s1 after joining: routes %v, pending %v", h.Routes, h.PendingRoutes)
		}
	}
	st, err := f.c.admin.Config(ctx, "n", "hub")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(st.WgQuick, "172.27.0.0/24") {
		t.Errorf("the hub routes a route nobody approved:\n%s", st.WgQuick)
	}
	if _, err := admin.SetHost(ctx, "n", "s1", api.SetHost{Routes: []string{"172.27.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	f.converge("approved: everyone routes 172.27.0.0/24 to s1")
	hs, _ = admin.Hosts(ctx, "n")
	for _, h := range hs.Hosts {
		if h.Name == "s1" && (len(h.PendingRoutes) != 0 || len(h.Routes) != 2) {
			t.Errorf("s1 after approval: routes %v, pending %v", h.Routes, h.PendingRoutes)
		}
	}
}
