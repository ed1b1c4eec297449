package agent_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/agent"
	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func key(t *testing.T) wgkey.Key {
	t.Helper()
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// TestGuard: the agent refuses what the controller may not make it do.
func TestGuard(t *testing.T) {
	own, other := key(t), key(t)
	good := func() *api.AgentState {
		return &api.AgentState{Network: "n", Host: "s1", Revision: 7, Subnets: []string{"10.0.0.0/24", "fd00::/64"},
			ApprovedRoutes: []string{"172.20.1.0/24", "172.20.2.0/24"}, Addresses: []string{"10.0.0.2/24"},
			Routes: []string{"172.20.1.0/24"}, ListenPort: 51820, MTU: 1420,
			Peers: []api.Peer{{Name: "hub", PublicKey: other.String(), Endpoint: "192.0.2.1:51820",
				AllowedIPs: []string{"10.0.0.0/24", "fd00::/64", "172.20.2.0/24"}}}}
	}
	if h, err := agent.Intent(good(), "/k", own); err != nil || len(h.Peers) != 1 || h.KeyFile != "/k" || len(h.Hooks.PostUp) != 0 {
		t.Fatalf("a good state: %+v, %v", h, err)
	}
	for _, tc := range []struct {
		name   string
		change func(*api.AgentState)
		want   string
	}{
		{"default route v4", func(s *api.AgentState) { s.Peers[0].AllowedIPs = append(s.Peers[0].AllowedIPs, "0.0.0.0/0") }, "default route"},
		{"default route v6", func(s *api.AgentState) { s.Peers[0].AllowedIPs = []string{"::/0"} }, "default route"},
		{"approved default route", func(s *api.AgentState) { s.ApprovedRoutes = append(s.ApprovedRoutes, "0.0.0.0/0") }, "default route"},
		{"outside", func(s *api.AgentState) { s.Peers[0].AllowedIPs = append(s.Peers[0].AllowedIPs, "192.168.1.0/24") }, "outside"},
		{"wider than a subnet", func(s *api.AgentState) { s.Peers[0].AllowedIPs = []string{"10.0.0.0/16"} }, "outside"},
		{"own routes", func(s *api.AgentState) { s.Peers[0].AllowedIPs = append(s.Peers[0].AllowedIPs, "172.20.1.0/25") }, "own routed"},
		{"own key", func(s *api.AgentState) { s.Peers[0].PublicKey = own.String() }, "not another host"},
		{"address outside", func(s *api.AgentState) { s.Addresses = []string{"10.9.0.2/24"} }, "outside the network"},
		{"unapproved own route", func(s *api.AgentState) { s.Routes = []string{"172.21.0.0/16"} }, "approved"},
		{"MTU", func(s *api.AgentState) { s.MTU = 100 }, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.change(s)
			_, err := agent.Intent(s, "/k", own)
			if !errors.Is(err, agent.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Intent = %v, want refused (%s)", err, tc.want)
			}
		})
	}
	if err := agent.CheckOwnRoutes([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}); !errors.Is(err, agent.ErrRefused) {
		t.Errorf("asking for a default route: %v", err)
	}
	if err := agent.CheckOwnRoutes([]netip.Prefix{netip.MustParsePrefix("172.20.1.0/24")}); err != nil {
		t.Error(err)
	}
}
