package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// TestUpPlaneResolve: an endpoint name takes each new address; when it stops
// resolving, its last address is kept and said; a name that never resolved
// fails. (The real resolver and interfaces: cmd/wgnet TestAgentReresolveNetns.)
func TestUpPlaneResolve(t *testing.T) {
	ctx := context.Background()
	answer, fail := netip.Addr{}, errors.New("no such host")
	var log bytes.Buffer
	p := &UpPlane{Options: up.SyncOptions{Options: up.Options{Log: &log,
		Resolve: func(_ context.Context, host string) (netip.Addr, error) {
			if fail != nil || host != "a.test" {
				return netip.Addr{}, fail
			}
			return answer, nil
		}}}}
	if _, err := p.resolve(ctx, "a.test"); err == nil {
		t.Fatal("a name that never resolved: no error")
	}
	for _, s := range []string{"198.18.0.1", "198.18.0.2"} {
		answer, fail = netip.MustParseAddr(s), nil
		if got, err := p.resolve(ctx, "a.test"); err != nil || got != answer {
			t.Fatalf("a.test resolving to %s: %s, %v", s, got, err)
		}
	}
	fail = errors.New("no such host")
	if got, err := p.resolve(ctx, "a.test"); err != nil || got.String() != "198.18.0.2" {
		t.Errorf("a.test not resolving after 198.18.0.2: %s, %v; want its last address", got, err)
	}
	if !strings.Contains(log.String(), "endpoint a.test: no such host; keeping its last address 198.18.0.2") {
		t.Errorf("log: %q", log.String())
	}
	if _, err := p.resolve(ctx, "b.test"); err == nil {
		t.Error("b.test, never resolved: no error")
	}
}

// TestUpPlaneNeverResolved: a peer whose endpoint host name has never
// resolved is configured without an endpoint, the others as they are (each
// name asked once), and is named by Unresolved; the intent given is not
// changed; once the name resolves, the peer has its endpoint again.
func TestUpPlaneNeverResolved(t *testing.T) {
	ctx := context.Background()
	asked := map[string]int{}
	up2 := false // never.test resolves
	p := &UpPlane{Options: up.SyncOptions{Options: up.Options{Log: io.Discard,
		Resolve: func(_ context.Context, host string) (netip.Addr, error) {
			asked[host]++
			switch {
			case host == "ok.test":
				return netip.MustParseAddr("198.18.0.7"), nil
			case host == "never.test" && up2:
				return netip.MustParseAddr("198.18.0.9"), nil
			}
			return netip.Addr{}, errors.New("no such host")
		}}}}
	ep := func(s string) *wgconf.Endpoint {
		e, err := wgconf.ParseEndpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		return &e
	}
	h := &intent.Host{Peers: []wgconf.Peer{
		{Name: "lit", Endpoint: ep("198.18.0.5:51820")},
		{Name: "ok", Endpoint: ep("ok.test:51820")},
		{Name: "never", Endpoint: ep("never.test:51820")},
		{Name: "never2", Endpoint: ep("never.test:51821")},
		{Name: "none"},
	}}
	got, resolved, unresolved := p.endpoints(ctx, h)
	for i, want := range []string{"198.18.0.5:51820", "ok.test:51820", "", "", ""} {
		e := ""
		if got.Peers[i].Endpoint != nil {
			e = got.Peers[i].Endpoint.String()
		}
		if e != want {
			t.Errorf("peer %s: endpoint %q; want %q", got.Peers[i].Name, e, want)
		}
	}
	if h.Peers[2].Endpoint == nil || h.Peers[3].Endpoint == nil {
		t.Error("the intent given was changed")
	}
	if resolved["ok.test"].String() != "198.18.0.7" || len(resolved) != 1 {
		t.Errorf("resolved: %v", resolved)
	}
	if asked["ok.test"] != 1 || asked["never.test"] != 1 {
		t.Errorf("names asked: %v; want each once", asked)
	}
	want := []UnresolvedPeer{{Peer: "never", Host: "never.test", Error: "no such host"}, {Peer: "never2", Host: "never.test", Error: "no such host"}}
	if !slices.Equal(unresolved, want) {
		t.Errorf("unresolved: %q; want %q", unresolved, want)
	}
	up2 = true
	got, _, unresolved = p.endpoints(ctx, h)
	if len(unresolved) != 0 || got != h {
		t.Errorf("never.test resolving now: unresolved %q, intent copied: %v", unresolved, got != h)
	}
}
