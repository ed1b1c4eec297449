package agent

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/netnstest"
)

// TestPollAddrNetns: the real kernel and the netlink subscription. A fake
// controller in one namespace (198.18.9.1), the agent's sockets in another
// joined to it by a veth (198.18.9.2, and 198.18.9.3 beside it); the agent's
// process stays in the root namespace, but its dials, its view of the host's
// addresses and its netlink subscription are made inside the agent's
// namespace. The address its long poll went out from is deleted: the
// subscription hears of it and the agent polls again from the other address
// at once, though the fallback check of every AddrPollEvery is an hour away
// and the poll would wait a minute.
func TestPollAddrNetns(t *testing.T) {
	netnstest.RequireRoot(t)
	ctlNS, agentNS := netnstest.New(t, "ctl"), netnstest.New(t, "agent")
	netnstest.Veth(t, ctlNS, "eth0", agentNS, "eth0")
	ctlNS.Run(t, "ip", "addr", "add", "198.18.9.1/24", "dev", "eth0")
	// The address left takes over the subnet's route when the first goes.
	agentNS.Sysctl(t, "net.ipv4.conf.eth0.promote_secondaries", "1")
	agentNS.Run(t, "ip", "addr", "add", "198.18.9.2/24", "dev", "eth0")
	agentNS.Run(t, "ip", "addr", "add", "198.18.9.3/24", "dev", "eth0")

	srv, polls := pollServer(t)
	var ln net.Listener
	if err := ctlNS.Do(func() (err error) { ln, err = net.Listen("tcp", "198.18.9.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()

	inAgentNS := func(fn func() error) error { return agentNS.Do(fn) }
	a := testAgent(t, &gatePlane{gate: closed(), entered: make(chan struct{}, 64)}, func(o *Options) {
		o.Wait = time.Minute
		o.AddrPollEvery = time.Hour // only the subscription can notice in time
		o.LocalAddrs = func() (addrs []netip.Addr, err error) {
			err = inAgentNS(func() error { addrs, err = hostAddrs(); return err })
			return addrs, err
		}
		o.AddrChanges = func(ctx context.Context) (ch <-chan struct{}, err error) {
			err = inAgentNS(func() error { ch, err = hostAddrChanges(ctx); return err })
			return ch, err
		}
		o.Transport = func(caHash string) (http.RoundTripper, error) {
			tr, err := client.Transport(caHash)
			if err != nil {
				return nil, err
			}
			tr.DialContext = func(ctx context.Context, network, addr string) (c net.Conn, err error) {
				var d net.Dialer
				err = inAgentNS(func() error { c, err = d.DialContext(ctx, network, addr); return err })
				return c, err
			}
			return tr, nil
		}
	})
	first := runPolling(t, a, srv, polls)
	from, _, _ := net.SplitHostPort(first.RemoteAddr)
	if from != "198.18.9.2" {
		t.Fatalf("the first poll came from %s; want 198.18.9.2 (the agent namespace's first address)", first.RemoteAddr)
	}
	agentNS.Run(t, "ip", "addr", "del", "198.18.9.2/24", "dev", "eth0")
	lost := time.Now()
	select {
	case r := <-polls:
		t.Logf("polled again from %s %.2f s after its address was deleted", r.RemoteAddr, time.Since(lost).Seconds())
		if from, _, _ := net.SplitHostPort(r.RemoteAddr); from != "198.18.9.3" {
			t.Errorf("the new poll came from %s; want 198.18.9.3", r.RemoteAddr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no new poll 20 s after the first poll's local address was deleted (the poll waits a minute, the fallback check an hour)")
	}

	// A subscription says when an address goes, and ends with its context
	// (its goroutine and socket too): the channel closes.
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	var ch <-chan struct{}
	if err := inAgentNS(func() (err error) { ch, err = hostAddrChanges(sctx); return err }); err != nil {
		t.Fatal(err)
	}
	agentNS.Run(t, "ip", "addr", "add", "198.18.9.4/24", "dev", "eth0")
	agentNS.Run(t, "ip", "addr", "del", "198.18.9.4/24", "dev", "eth0")
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Error("no word from the subscription 10 s after an address was deleted")
	}
	scancel()
	deadline := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatal("the subscription's channel still open 10 s after its context ended")
		}
	}
}
