package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
)

// TestPollAddrGone: when the host loses the address its long poll went out
// from, the agent stops that poll and sends the next one at once, not when
// the poll (a minute here) times out. The host's addresses are injected
// (Options.LocalAddrs) and its address changes can't be followed, so they are
// checked every second (the fallback to the netlink subscription); the real
// kernel's: TestPollAddrNetns, cmd/wgnet TestAgentReresolveNetns.
func TestPollAddrGone(t *testing.T) {
	srv, polls := pollServer(t)
	srv.StartTLS()
	var mu sync.Mutex
	host := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("198.18.0.12")}
	a := testAgent(t, &gatePlane{gate: closed(), entered: make(chan struct{}, 64)}, func(o *Options) {
		o.Wait = time.Minute
		o.AddrChanges = func(context.Context) (<-chan struct{}, error) { return nil, errors.ErrUnsupported }
		o.LocalAddrs = func() ([]netip.Addr, error) {
			mu.Lock()
			defer mu.Unlock()
			return host, nil
		}
	})
	first := runPolling(t, a, srv, polls)
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

// pollServer is a fake controller, not started: a state of one peer, and
// long polls that never answer (each is sent on the channel) until the test
// ends.
func pollServer(t *testing.T) (*httptest.Server, chan *http.Request) {
	polls := make(chan *http.Request, 8)
	quit := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.VersionHeader, "v1")
		switch r.URL.Path {
		case "/v1/agent/state":
			json.NewEncoder(w).Encode(testState(t, 1, "b"))
		case "/v1/agent/changes":
			polls <- r
			select { // nothing changes: the poll waits until it is dropped
			case <-r.Context().Done():
			case <-quit: // (a poll from a deleted address may never be)
			}
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(quit) })
	return srv, polls
}

// runPolling runs a against srv until the test ends, and returns its first
// long poll.
func runPolling(t *testing.T, a *Agent, srv *httptest.Server, polls chan *http.Request) *http.Request {
	t.Helper()
	a.urls, a.cfg.CAHash, a.cfg.Credential = []string{srv.URL}, api.CAHash(srv.Certificate()), api.AgentCredentialPrefix+"test"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case r := <-polls:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("the agent sent no long poll in 20 s")
		return nil
	}
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// TestPollAddrLostBeforeConn: an address lost while no poll's local address
// is known (between polls, or before the poll's connection is chosen) is
// remembered, and the next poll's connection is checked when it is known: an
// idle connection from the lost address is not waited on until it times out.
func TestPollAddrLostBeforeConn(t *testing.T) {
	host := []netip.Addr{netip.MustParseAddr("198.18.0.13")}
	a := testAgent(t, &gatePlane{gate: closed(), entered: make(chan struct{}, 4)}, func(o *Options) {
		o.LocalAddrs = func() ([]netip.Addr, error) { return host, nil }
	})
	checks := 0
	local := a.opts.LocalAddrs
	a.opts.LocalAddrs = func() ([]netip.Addr, error) { checks++; return local() }
	conn := func(ip string) httptrace.GotConnInfo {
		return httptrace.GotConnInfo{Conn: fakeConn{local: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}, Reused: true}
	}
	var cause error
	a.pollCancel = func(err error) { cause = err }
	a.gotPollConn(conn("198.18.0.13"))
	if checks != 0 {
		t.Errorf("a poll's connection checked with no address lost: %d checks", checks)
	}
	a.pollLocal = netip.Addr{} // between polls
	a.checkPollAddr(true)      // the host loses 198.18.0.12
	a.gotPollConn(conn("198.18.0.12"))
	if checks != 1 || !errors.Is(cause, errAddrGone) {
		t.Errorf("the next poll's connection, from the lost address: %d checks, stopped with %v; want 1 and %v", checks, cause, errAddrGone)
	}
	a.gotPollConn(conn("198.18.0.13"))
	if checks != 1 {
		t.Errorf("the loss was checked once, yet the poll after it checked again (%d checks)", checks)
	}
}

// fakeConn is a connection with a local address and nothing else.
type fakeConn struct {
	net.Conn
	local net.Addr
}

func (c fakeConn) LocalAddr() net.Addr { return c.local }
