package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/agent"
	"github.com/wgnet/wgnet/internal/api"
)

// TestGuardSettings: of a host's own settings (issue 10) an agent takes
// what shapes only its interface (an MTU, automatic too; a port wg picks;
// an address with its own prefix length, or none when another assigns it)
// and, unless its operator allowed them at join, refuses a resolver, a
// routing table, a firewall mark and a full tunnel's default route: the
// controller is not root on the host.
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
		{"DNS", func(s *api.AgentState) { s.DNS = []string{"10.0.0.1"} }, "--allow dns"},
		{"table", func(s *api.AgentState) { s.Table = "off" }, "--allow table"},
		{"fwmark", func(s *api.AgentState) { s.FwMark = 0x4000 }, "--allow fwmark"},
		{"full tunnel", func(s *api.AgentState) { s.Peers[0].AllowedIPs = append(s.Peers[0].AllowedIPs, "0.0.0.0/0") }, "default route"},
	} {
		s := base()
		tc.change(s)
		if h, err := agent.Intent(s, "/k", own); !errors.Is(err, agent.ErrRefused) || !strings.Contains(err.Error(), tc.want) || h != nil {
			t.Errorf("%s: %v, want refused (%s)", tc.name, err, tc.want)
		}
	}
}

// TestGuardAllowed: what the host's operator allowed at join is taken into
// the intent instead of refused (DNS, table, fwmark, a peer's default
// route), still only when well formed; the rest stays refused.
func TestGuardAllowed(t *testing.T) {
	own, other := key(t), key(t)
	st := &api.AgentState{Network: "n", Host: "s1", Revision: 3, Subnets: []string{"10.0.0.0/24"}, Addresses: []string{"10.0.0.2/24"},
		ListenPort: 51820, DNS: []string{"10.0.0.1", "corp.example"}, Table: "off", FwMark: 0x51,
		Peers: []api.Peer{{Name: "hub", PublicKey: other.String(), Endpoint: "192.0.2.1:51820", AllowedIPs: []string{"0.0.0.0/0", "10.0.0.0/24"}}}}
	all, err := agent.ParseAllowed([]string{"dns", "full-tunnel", "table", "fwmark"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := all.Intent(st, "/k", own)
	if err != nil || strings.Join(h.DNS, ",") != "10.0.0.1,corp.example" || h.Table != "off" || h.FwMark != 0x51 ||
		len(h.Peers) != 1 || h.Peers[0].AllowedIPs[0] != netip.MustParsePrefix("0.0.0.0/0") {
		t.Fatalf("all allowed: %+v, %v", h, err)
	}
	for _, tc := range []struct {
		allow  agent.Allowed
		change func(*api.AgentState)
		want   string
	}{
		{agent.Allowed{FullTunnel: true, Table: true, FwMark: true}, nil, "--allow dns"},
		{agent.Allowed{DNS: true, Table: true, FwMark: true}, nil, "--allow full-tunnel"},
		{agent.Allowed{DNS: true, FullTunnel: true, FwMark: true}, nil, "--allow table"},
		{agent.Allowed{DNS: true, FullTunnel: true, Table: true}, nil, "--allow fwmark"},
		{all, func(s *api.AgentState) { s.DNS = []string{"10.0.0.1\noptions rotate"} }, "not an address nor a domain"},
		{all, func(s *api.AgentState) { s.Table = "1; reboot" }, "not off, auto, main"},
		{all, func(s *api.AgentState) { s.Routes, s.ApprovedRoutes = []string{"0.0.0.0/0"}, []string{"0.0.0.0/0"} }, "default route"},
	} {
		s := *st
		s.Peers = slices.Clone(st.Peers)
		if tc.change != nil {
			tc.change(&s)
		}
		if _, err := tc.allow.Intent(&s, "/k", own); !errors.Is(err, agent.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("allowed %+v: %v, want refused (%s)", tc.allow, err, tc.want)
		}
	}
	if _, err := agent.ParseAllowed([]string{"hooks"}); err == nil {
		t.Error("--allow hooks accepted")
	}
}

// TestAllowedAtJoin: an agent whose operator allowed DNS, a firewall mark
// and a full tunnel at join applies them when an admin sets them on its
// host (its intent has them, the hub's peer routes 0.0.0.0/0); another
// agent, allowed nothing, refuses the state that sets them on its host and
// stays at its last good revision, while the others follow.
func TestAllowedAtJoin(t *testing.T) {
	f := hubOfThree(t, "10.65.0.0/24", map[string]agent.Allowed{"s1": {DNS: true, FwMark: true, FullTunnel: true}})
	ctx := context.Background()
	admin := f.c.admin
	var cfg struct{ Allow agent.Allowed }
	if b, err := os.ReadFile(filepath.Join(f.dirs["s1"], agent.ConfigFile)); err != nil || json.Unmarshal(b, &cfg) != nil || !cfg.Allow.DNS || cfg.Allow.Table {
		t.Fatalf("s1's agent.json: %s, %v", b, err)
	}
	dns, mark := []string{"10.65.0.1"}, uint32(0x51)
	if _, err := admin.SetHost(ctx, "n", "s1", api.SetHost{DNS: &dns, FwMark: &mark, FullTunnel: &[]string{"0.0.0.0/0"}}); err != nil {
		t.Fatal(err)
	}
	f.converge("s1 with DNS, a mark and a full tunnel")
	f.net.mu.Lock()
	h := f.net.hosts["s1"]
	s1 := h.Clone()
	f.net.mu.Unlock()
	if strings.Join(s1.DNS, ",") != "10.65.0.1" || s1.FwMark != 0x51 || len(s1.Peers) != 1 || !slices.Contains(s1.Peers[0].AllowedIPs, netip.MustParsePrefix("0.0.0.0/0")) {
		t.Errorf("s1's intent: DNS %v, fwmark %#x, peers %+v", s1.DNS, s1.FwMark, s1.Peers)
	}

	held := f.agents["s2"].a.Applied()
	if _, err := admin.SetHost(ctx, "n", "s2", api.SetHost{DNS: &dns}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for refused(t, f.agents["s2"].a) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("s2 did not refuse a state with DNS")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := f.agents["s2"].a.Applied(); got != held {
		t.Errorf("s2 at revision %d after refusing, want %d", got, held)
	}
	f.net.mu.Lock()
	s2DNS := f.net.hosts["s2"].DNS
	f.net.mu.Unlock()
	if len(s2DNS) != 0 {
		t.Errorf("s2's intent has DNS %v", s2DNS)
	}
}

// refused is an agent's wgnet_agent_refused_total.
func refused(t *testing.T, a *agent.Agent) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "wgnet_agent_refused_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestPublicRoutesAtJoin: a route in public address space (the hub's
// 8.8.8.0/24) reaches the agent whose operator allowed public routes at
// join; another, allowed nothing, applies the same revision without it (its
// hub peer's allowed IPs and routes lack it), refusing nothing, so that it
// still follows every other change.
func TestPublicRoutesAtJoin(t *testing.T) {
	f := hubOfThree(t, "10.66.0.0/24", map[string]agent.Allowed{"s1": {PublicRoutes: true}})
	ctx := context.Background()
	admin := f.c.admin
	res, err := admin.SetHost(ctx, "n", "hub", api.SetHost{Routes: []string{"8.8.8.0/24", "172.22.0.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	// Not converge: the lab probes 8.8.8.1 from s2 too, which s2 does not route.
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range []string{"hub", "s1", "s2"} {
		for f.agents[name].a.Applied() != res.Revision {
			if time.Now().After(deadline) {
				t.Fatalf("%s at revision %d, want %d", name, f.agents[name].a.Applied(), res.Revision)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	route := netip.MustParsePrefix("8.8.8.0/24")
	f.net.mu.Lock()
	h1, h2 := f.net.hosts["s1"], f.net.hosts["s2"]
	s1, s2 := h1.Clone(), h2.Clone()
	f.net.mu.Unlock()
	if len(s1.Peers) != 1 || !slices.Contains(s1.Peers[0].AllowedIPs, route) {
		t.Errorf("s1's hub peer: %+v, want 8.8.8.0/24 among its allowed IPs", s1.Peers)
	}
	if len(s2.Peers) != 1 || slices.Contains(s2.Peers[0].AllowedIPs, route) || !slices.Contains(s2.Peers[0].AllowedIPs, netip.MustParsePrefix("172.22.0.0/24")) {
		t.Errorf("s2's hub peer: %+v, want 172.22.0.0/24 and no 8.8.8.0/24", s2.Peers)
	}
	if got := f.agents["s2"].a.Applied(); got != res.Revision || refused(t, f.agents["s2"].a) != 0 {
		t.Errorf("s2 at revision %d (want %d), refused %v", got, res.Revision, refused(t, f.agents["s2"].a))
	}
}

// hubOfThree is a fleet of a hub and two spokes (s1, s2) joined to network
// n of subnet, each agent allowed what allow says, converged.
func hubOfThree(t *testing.T, subnet string, allow map[string]agent.Allowed) *fleet {
	t.Helper()
	f := newFleet(t)
	f.allow = allow
	ctx := context.Background()
	if _, err := f.c.admin.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{subnet}}); err != nil {
		t.Fatal(err)
	}
	tok, err := f.c.admin.CreateToken(ctx, "n", api.CreateToken{Uses: 3})
	if err != nil {
		t.Fatal(err)
	}
	f.join(tok.Token, "hub", "192.0.2.1:51820")
	f.join(tok.Token, "s1", "192.0.2.11:51820")
	f.join(tok.Token, "s2", "192.0.2.12:51820")
	f.converge("joined")
	return f
}
