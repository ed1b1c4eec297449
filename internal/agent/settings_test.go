package agent_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/agent"
	"github.com/wgnet/wgnet/internal/api"
)

// TestGuardSettings: of a host's own settings (issue 10) an agent takes
// what shapes only its interface (an MTU, automatic too; a port wg picks;
// an address with its own prefix length, or none when another assigns it)
// and refuses a resolver, a routing table and a firewall mark, as it
// refuses a full tunnel's default route: the controller is not root on the
// host.
func TestGuardSettings(t *testing.T) {
	own, other := key(t), key(t)
	base := func() *api.AgentState {
		return &api.AgentState{Network: "n", Host: "s1", Revision: 3, Subnets: []string{"10.0.0.0/24"}, Addresses: []string{"10.0.0.2/24"},
			ListenPort: 51820, MTU: 1420, Peers: []api.Peer{{Name: "hub", PublicKey: other.String(), Endpoint: "192.0.2.1:51820", AllowedIPs: []string{"10.0.0.0/24"}}}}
	}
	s := base()
	s.MTU, s.ListenPort, s.Addresses = 0, 0, []string{"10.0.0.2/32"}
	h, err := agent.Intent(s, "/k", own)
	if err != nil || h.MTU != 0 || h.ListenPort != nil || len(h.Addresses) != 1 || h.Addresses[0] != netip.MustParsePrefix("10.0.0.2/32") {
		t.Fatalf("automatic MTU, random port, a /32 address: %+v, %v", h, err)
	}
	s.Addresses = nil
	if h, err := agent.Intent(s, "/k", own); err != nil || len(h.Addresses) != 0 {
		t.Errorf("no address (assigned elsewhere): %+v, %v", h, err)
	}
	for _, tc := range []struct {
		name   string
		change func(*api.AgentState)
		want   string
	}{
		{"DNS", func(s *api.AgentState) { s.DNS = []string{"10.0.0.1"} }, "no resolver"},
		{"table", func(s *api.AgentState) { s.Table = "off" }, "routing table"},
		{"fwmark", func(s *api.AgentState) { s.FwMark = 0x4000 }, "firewall mark"},
		{"full tunnel", func(s *api.AgentState) { s.Peers[0].AllowedIPs = append(s.Peers[0].AllowedIPs, "0.0.0.0/0") }, "default route"},
	} {
		s := base()
		tc.change(s)
		if h, err := agent.Intent(s, "/k", own); !errors.Is(err, agent.ErrRefused) || !strings.Contains(err.Error(), tc.want) || h != nil {
			t.Errorf("%s: %v, want refused (%s)", tc.name, err, tc.want)
		}
	}
}
