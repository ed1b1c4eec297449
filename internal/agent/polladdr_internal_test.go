package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
)

// TestPollAddrGone: when the host loses the address its long poll went out
// from, the agent stops that poll and sends the next one at once, not when
// the poll (a minute here) times out. The host's addresses are injected
// (Options.LocalAddrs); the real kernel's: cmd/wgnet TestAgentReresolveNetns.
func TestPollAddrGone(t *testing.T) {
	polls := make(chan *http.Request, 8)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.VersionHeader, "v1")
		switch r.URL.Path {
		case "/v1/agent/state":
			json.NewEncoder(w).Encode(testState(t, 1, "b"))
		case "/v1/agent/changes":
			polls <- r
			<-r.Context().Done() // nothing changes: the poll waits until it is dropped
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer srv.Close()
	var mu sync.Mutex
	host := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("198.18.0.12")}
	a := testAgent(t, &gatePlane{gate: closed(), entered: make(chan struct{}, 64)}, func(o *Options) {
		o.Wait = time.Minute
		o.LocalAddrs = func() ([]netip.Addr, error) {
			mu.Lock()
			defer mu.Unlock()
			return host, nil
		}
	})
	a.urls, a.cfg.CAHash, a.cfg.Credential = []string{srv.URL}, api.CAHash(srv.Certificate()), api.AgentCredentialPrefix+"test"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var first *http.Request
	select {
	case first = <-polls:
	case <-time.After(20 * time.Second):
		t.Fatal("the agent sent no long poll in 20 s")
	}
	select {
	case <-polls:
		t.Fatal("a second poll while the host still has the first one's address")
	case <-time.After(2500 * time.Millisecond): // two and more checks of the addresses
	}
	mu.Lock()
	host = host[1:] // the host loses 127.0.0.1, the poll's local address
	mu.Unlock()
	lost := time.Now()
	select {
	case <-polls:
		t.Logf("polled again %.1f s after the address was lost", time.Since(lost).Seconds())
	case <-time.After(10 * time.Second):
		t.Fatalf("no new poll 10 s after the first poll's local address was lost (the poll waits %s)", time.Minute)
	}
	if first.Context().Err() == nil {
		t.Error("the poll from the lost address is still open")
	}
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
