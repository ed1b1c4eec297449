package controller_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/controller"
)

// agentClient is a client holding an agent credential.
func (f *fixture) agentClient(t *testing.T, cred string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{URL: f.url, Token: cred, CAPEM: f.ca, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestAgentRoutes: enrollment hands out a credential that reads the host's
// compiled state (no key, no hooks), long-polls the change log (woken by a
// change, empty after its wait), reports status (written in a batch) and
// leaves; the credential is the host's only, and goes with it.
func TestAgentRoutes(t *testing.T) {
	controller.ReportFlush = 10 * time.Millisecond
	f := start(t)
	ctx := context.Background()
	c := f.client(t)
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.0.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	_, hubKey := pub(t)
	if _, err := c.AddHost(ctx, "n", api.Host{Name: "hub", PublicKey: hubKey, Endpoint: "192.0.2.1:51820"}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateToken(ctx, "n", api.CreateToken{Uses: 2, Routes: []string{"172.20.0.0/16"}})
	if err != nil {
		t.Fatal(err)
	}
	_, k1 := pub(t)
	e, err := client.Enroll(ctx, tok.Token, api.Host{Name: "s1", PublicKey: k1, Keepalive: 25, Routes: []string{"172.20.1.0/24"}})
	if err != nil || !strings.HasPrefix(e.Credential, api.AgentCredentialPrefix) {
		t.Fatalf("enroll = %+v, %v", e, err)
	}
	a := f.agentClient(t, e.Credential)
	st, err := a.AgentState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Host != "s1" || st.Network != "n" || st.Revision != 3 || len(st.Peers) != 1 || st.Peers[0].Name != "hub" ||
		st.Peers[0].Endpoint != "192.0.2.1:51820" || st.Peers[0].Keepalive != 25 || len(st.Addresses) != 1 ||
		strings.Join(st.Routes, ",") != "172.20.1.0/24" || !st.ForwardV4 || strings.Join(st.ApprovedRoutes, ",") != "172.20.1.0/24" ||
		st.ListenPort != 51820 || st.Interface == "" || len(st.URLs) != 1 {
		t.Errorf("state of s1 = %+v", st)
	}
	// The admin token is no agent credential, nor the join token.
	for _, cred := range []string{f.token, strings.TrimPrefix(tok.Token, api.JoinTokenPrefix)} {
		if _, err := f.agentClient(t, cred).AgentState(ctx); status(err) != 401 {
			t.Errorf("agent state with another credential = %v, want 401", err)
		}
	}
	// A long poll waits for the change, and answers it.
	done := make(chan api.AgentChanges, 1)
	go func() {
		ch, err := a.AgentChanges(ctx, st.Revision, 30*time.Second, true)
		if err != nil {
			t.Error(err)
		}
		done <- ch
	}()
	time.Sleep(100 * time.Millisecond)
	_, k2 := pub(t)
	if _, err := c.AddHost(ctx, "n", api.Host{Name: "s2", PublicKey: k2}); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-done:
		// A v2 client gets what changed for s1 (its hub peer did not): nothing but the revision.
		if ch.Revision != 4 || len(ch.Changes) != 1 || ch.Changes[0].Host != "s2" || ch.Changes[0].Kind != "host-added" ||
			ch.State != nil || ch.Delta == nil || ch.Delta.From != 3 || ch.Delta.Revision != 4 || ch.Delta.Head != nil ||
			len(ch.Delta.Peers) != 0 || len(ch.Delta.Removed) != 0 {
			t.Errorf("long poll = %+v, delta %+v (a delta from 3 to 4 with nothing in it)", ch, ch.Delta)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll did not wake on the change")
	}
	start := time.Now()
	if ch, err := a.AgentChanges(ctx, 4, 300*time.Millisecond, true); err != nil || len(ch.Changes) != 0 || ch.Revision != 4 || ch.State != nil || time.Since(start) < 250*time.Millisecond {
		t.Errorf("an idle long poll = %+v, %v after %s; want empty after its wait", ch, err, time.Since(start))
	}
	// A since past the revision (the store behind the agent) answers at once with the lower revision.
	if ch, err := a.AgentChanges(ctx, 99, 0, false); err != nil || ch.Revision != 4 || ch.State != nil {
		t.Errorf("since 99 = %+v, %v", ch, err)
	}
	if _, err := a.AgentChanges(ctx, 0, time.Hour, false); err != nil {
		t.Errorf("a wait over the maximum is capped, not refused: %v", err)
	}
	// Status: written by the batch, visible to status; with a peer whose
	// endpoint host name never resolved on s1 (v3).
	since := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	unresolved := &api.UnresolvedEndpoint{Host: "hub.example.test", Error: "no such host", Since: since.Format(time.RFC3339Nano)}
	if err := a.AgentReport(ctx, api.AgentReport{Revision: 4, Peers: []api.PeerStatus{{PublicKey: hubKey, Endpoint: "[fe80::1%eth0]:51820"}}}); err != nil {
		t.Errorf("a report with a link-local endpoint and its zone: %v", err)
	}
	if err := a.AgentReport(ctx, api.AgentReport{Revision: 4, Time: time.Now().UTC().Format(time.RFC3339Nano),
		Peers: []api.PeerStatus{{PublicKey: hubKey, RxBytes: 5, TxBytes: 7, LastHandshake: time.Now().UTC().Format(time.RFC3339), Unresolved: unresolved}}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []api.UnresolvedEndpoint{{Host: "h.test", Since: "yesterday"}, {Since: since.Format(time.RFC3339)}} {
		err := a.AgentReport(ctx, api.AgentReport{Revision: 4, Peers: []api.PeerStatus{{PublicKey: hubKey, Unresolved: &bad}}})
		if status(err) != 400 || !strings.Contains(err.Error(), "unresolved") {
			t.Errorf("a report with unresolved %+v: %v; want 400 naming it", bad, err)
		}
	}
	// What wgnet status prints comes from agents: a host name with a
	// newline or an escape, or an endpoint that is not an address and port,
	// is refused (400), not stored.
	for _, bad := range []api.PeerStatus{
		{PublicKey: hubKey, Unresolved: &api.UnresolvedEndpoint{Host: "h.test\nhost s9 up", Since: since.Format(time.RFC3339)}},
		{PublicKey: hubKey, Unresolved: &api.UnresolvedEndpoint{Host: "h\x1b[2J.test", Since: since.Format(time.RFC3339)}},
		{PublicKey: hubKey, Unresolved: &api.UnresolvedEndpoint{Host: strings.Repeat("a", 254), Since: since.Format(time.RFC3339)}},
		{PublicKey: hubKey, Endpoint: "192.0.2.1:51820\x1b[2J"},
		{PublicKey: hubKey, Endpoint: "evil.example:51820"},
		{PublicKey: hubKey, Endpoint: "[fe80::1%\x1b[2J\n]:51820"},
		{PublicKey: hubKey, Endpoint: "[fe80::1%" + strings.Repeat("z", 100_000) + "]:51820"},
	} {
		err := a.AgentReport(ctx, api.AgentReport{Revision: 4, Peers: []api.PeerStatus{bad}})
		if status(err) != 400 {
			t.Errorf("a report with peer %+v: %v; want 400", bad, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := c.Status(ctx, "n")
		if err != nil {
			t.Fatal(err)
		}
		if s.Hosts[1].Name == "s1" && s.Hosts[1].Revision == 4 && len(s.Hosts[1].Peers) == 1 && s.Hosts[1].Peers[0].Host == "hub" {
			if u := s.Hosts[1].Peers[0].Unresolved; u == nil || u.Host != unresolved.Host || u.Error != unresolved.Error || u.Since != since.Format(time.RFC3339) {
				t.Errorf("s1's hub peer in the status: unresolved %+v; want %+v", u, unresolved)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after a report = %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Leave: the host goes, and its credential with it.
	if r, err := a.AgentLeave(ctx); err != nil || r.Revision != 5 {
		t.Fatalf("leave = %+v, %v", r, err)
	}
	if _, err := a.AgentState(ctx); status(err) != 401 {
		t.Errorf("state after leaving = %v, want 401", err)
	}
	if hs, _ := c.Hosts(ctx, "n"); len(hs.Hosts) != 2 {
		t.Errorf("hosts after s1 left = %+v", hs.Hosts)
	}
}

// TestAPIVersions: every answer says which versions the controller speaks,
// and a client speaking none of them hears so.
func TestAPIVersions(t *testing.T) {
	f := start(t)
	c := f.client(t)
	if _, err := c.Networks(context.Background()); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: f.transport(t)}
	for _, tc := range []struct{ speaks, want string }{{"", "200"}, {"v1", "200"}, {"v0,v1", "200"}, {"v2,v1", "200"}, {"v2", "200"}, {"v3,v2,v1", "200"}, {"v9", "400"}} {
		req, _ := http.NewRequest("GET", f.url+"/v1/networks", nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		if tc.speaks != "" {
			req.Header.Set(api.VersionHeader, tc.speaks)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get(api.VersionHeader); got != "v3,v2,v1" || resp.Status[:3] != tc.want {
			t.Errorf("client speaking %q: %s, controller says it speaks %q; want %s and v3,v2,v1", tc.speaks, resp.Status, got, tc.want)
		}
	}
}

func (f *fixture) transport(t *testing.T) http.RoundTripper {
	t.Helper()
	id, err := controller.LoadTLS(f.dir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := client.Transport(api.CAHash(id.CA))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
