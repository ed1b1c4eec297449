package agent

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/up"
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
