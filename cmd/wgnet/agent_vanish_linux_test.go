package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// tlsRelay stands in front of a controller as an operator's TLS-terminating
// TCP load balancer would, in the controller's namespace: it accepts the
// agents' TLS with a serving certificate issued by the controller's own CA
// (read from the controller's data directory, so the CA pin in the agents'
// join token holds), and forwards the plaintext to the controller over TLS,
// each connection opened with a PROXY protocol header (the controller runs
// with --proxy-protocol, so it sees each agent's own address). It records
// every byte the agents send, and while cut is set it cuts every answer to an
// agent half way through its body and drops the connection without a TLS
// close, as a controller killed mid-answer would. Connections from the
// controller's namespace itself (the admin commands) pass untouched.
type tlsRelay struct {
	ns      *netnstest.NS
	backend string      // the controller's address in ns
	server  *tls.Config // towards the agents
	client  *tls.Config // towards the controller
	admin   string      // the address the admin commands come from
	cut     atomic.Bool

	mu   sync.Mutex
	sent map[string]*bytes.Buffer // the plaintext each agent sent, by its address
	cuts map[string][]cutAnswer   // answers cut, by agent address

	conns map[net.Conn]bool
}

// newRelay starts a relay on listen (in l's controller namespace) to the
// controller at backend; the controller has made its CA already.
func newRelay(t *testing.T, l *agentLab, listen, backend string) *tlsRelay {
	t.Helper()
	host, _, _ := net.SplitHostPort(listen)
	id, err := controller.LoadTLS(l.data, []string{host}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(id.CA)
	bhost, _, _ := net.SplitHostPort(backend)
	r := &tlsRelay{ns: l.ctl, backend: backend, server: id.Config, admin: host,
		client: &tls.Config{RootCAs: roots, ServerName: bhost, MinVersion: tls.VersionTLS12},
		sent:   map[string]*bytes.Buffer{}, cuts: map[string][]cutAnswer{}, conns: map[net.Conn]bool{}}
	var ln net.Listener
	if err := l.ctl.Do(func() (err error) { ln, err = net.Listen("tcp", listen); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for c := range r.conns {
			c.Close()
		}
	})
	netnstest.Serve(t, ln, func(c net.Conn) { go r.relay(c) })
	return r
}

// track remembers conns (closed at the end of the test) or forgets them.
func (r *tlsRelay) track(on bool, conns ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range conns {
		if on {
			r.conns[c] = true
		} else {
			delete(r.conns, c)
		}
	}
}

func (r *tlsRelay) relay(c net.Conn) {
	defer c.Close()
	src, dst := c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)
	var b net.Conn
	err := r.ns.Do(func() (err error) { b, err = net.DialTimeout("tcp", r.backend, 2*time.Second); return err })
	if err != nil {
		return // no controller: the agent's connection ends
	}
	defer b.Close()
	r.track(true, c, b)
	defer r.track(false, c, b)
	if _, err := fmt.Fprintf(b, "PROXY TCP4 %s %s %d %d\r\n", src.IP, dst.IP, src.Port, dst.Port); err != nil {
		return
	}
	ac, bc := tls.Server(c, r.server), tls.Client(b, r.client)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ac.HandshakeContext(ctx) != nil || bc.HandshakeContext(ctx) != nil {
		return
	}
	from := src.IP.String()
	agent := from != r.admin
	var asked atomic.Value // the request line the agent sent last
	asked.Store("")
	go func() {
		defer c.Close() // the agent hung up: so does the controller's side
		defer b.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := ac.Read(buf)
			if n > 0 && agent {
				r.record(from, buf[:n])
				if line := requestLine(buf[:n]); line != "" {
					asked.Store(line)
				}
			}
			if n > 0 {
				if _, err := bc.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := bc.Read(buf)
		if n > 0 && agent && r.cut.Load() {
			r.cutShort(from, asked.Load().(string), ac, bc, buf[:n])
			return // the deferred closes end both connections, with no TLS close
		}
		if n > 0 {
			if _, err := ac.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cutAnswer is an answer the relay cut: the request it answered, the whole
// answer and how much of it the agent got.
type cutAnswer struct {
	asked string
	whole []byte
	given int
}

func (c cutAnswer) String() string {
	return fmt.Sprintf("%s (%d of %d bytes)", c.asked, c.given, len(c.whole))
}

// cutShort reads the rest of an answer that began with first (until the
// controller is quiet for 300 ms) and passes the agent its head and half of
// its body.
func (r *tlsRelay) cutShort(from, asked string, ac, bc *tls.Conn, first []byte) {
	answer := append([]byte(nil), first...)
	buf := make([]byte, 64<<10)
	for {
		bc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := bc.Read(buf)
		answer = append(answer, buf[:n]...)
		if err != nil {
			break
		}
	}
	cut := len(answer) / 2
	if i := bytes.Index(answer, []byte("\r\n\r\n")); i >= 0 {
		cut = i + 4 + (len(answer)-i-4)/2
	}
	ac.Write(answer[:cut])
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cuts[from] = append(r.cuts[from], cutAnswer{asked: asked, whole: answer, given: cut})
}

func (r *tlsRelay) record(from string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent[from] == nil {
		r.sent[from] = &bytes.Buffer{}
	}
	r.sent[from].Write(b)
}

// requestLine is the method and path of an HTTP/1.1 request that b starts
// ("" when b does not start one).
func requestLine(b []byte) string {
	line, _, ok := bytes.Cut(b, []byte("\r\n"))
	f := strings.Fields(string(line))
	if !ok || len(f) != 3 || !strings.HasPrefix(f[2], "HTTP/") || strings.ToUpper(f[0]) != f[0] {
		return ""
	}
	path, _, _ := strings.Cut(f[1], "?")
	return f[0] + " " + path
}

// cutsFor returns what was cut on the way to the agent at address from.
func (r *tlsRelay) cutsFor(from string) []cutAnswer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cuts[from])
}

// ifaceState is what an agent has applied on its host: wg0's peers (key,
// endpoint, allowed IPs, keepalive; not handshakes or counters), addresses
// and routes, and the last good state it cached (base and journal).
func ifaceState(t *testing.T, a *agentHost) string {
	t.Helper()
	var lines []string
	for _, r := range wgShow(t, a, "dump")[1:] { // the first line is the interface, with its private key
		lines = append(lines, strings.Join([]string{r[0], r[2], r[3], r[7]}, " "))
	}
	slices.Sort(lines)
	lines = append(lines, a.h.must(t, nil, "ip", "-o", "addr", "show", "dev", "wg0"), a.h.must(t, nil, "ip", "route", "show", "dev", "wg0"))
	cache, err := os.ReadFile(filepath.Join(a.dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	journal, err := os.ReadFile(filepath.Join(a.dir, "state.journal")) // the changes after state.json
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n") + "\nstate.json " + string(cache) + "\nstate.journal " + string(journal)
}

// TestAgentVanishNetns is issue 15's "an agent whose controller vanishes
// mid-change keeps its last good state", with real processes: a controller
// in one namespace behind a TLS-terminating relay (tlsRelay), three agents
// in others (userspace WireGuard). A change is committed (a2 routes one more
// subnet: every agent's state changes); every answer to the agents is cut half
// way through its body, then the controller is killed (SIGKILL). No agent
// applies any part of the change: wg0's peers, addresses and routes and the
// cached state are what they were, and pings between the hosts go on without
// a loss. The controller returns: every agent applies the change and traffic
// reaches the new subnet. Every request the agents sent, join included, was
// recorded in plaintext at the relay: none holds a private key.
func TestAgentVanishNetns(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "util-linux", "unshare", "nsenter")
	netnstest.NeedsTool(t, "iputils-ping", "ping")
	netnstest.NeedsTool(t, "wireguard-tools", "wg")
	if testing.Short() {
		t.Skip("about a minute of real processes")
	}
	l := newAgentLab(t)
	l.listen, l.ctlFlags = "127.0.0.1:7444", []string{"--proxy-protocol"}
	l.startController()
	relay := newRelay(t, l, "198.18.0.1:7443", "127.0.0.1:7444")
	token := l.demoToken(3)
	var agents []*agentHost
	for i := 1; i <= 3; i++ {
		agents = append(agents, l.join(fmt.Sprintf("a%d", i), i, token))
	}
	l.converge("three joined through the relay", agents)
	a2 := agents[1]
	for _, argv := range [][]string{{"ip", "link", "add", "ctr1", "type", "bridge"},
		{"ip", "addr", "add", "172.31.12.1/24", "dev", "ctr1"}, {"ip", "link", "set", "ctr1", "up"}} {
		a2.h.must(t, nil, argv...)
	}
	before := map[string]string{}
	for _, a := range agents {
		before[a.name] = ifaceState(t, a)
	}

	// Pings between every pair of neighbours for the whole outage.
	pinged := pingRing(agents, 60)

	// The change is committed; every answer it brings is cut; the controller dies.
	relay.cut.Store(true)
	l.admin("set", "a2", "--network", "demo", "--route", "172.31.12.0/24")
	deadline := time.Now().Add(15 * time.Second)
	for _, a := range agents {
		for len(relay.cutsFor(a.underlay)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no answer to %s was cut in 15 s", a.name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(time.Second) // the agents retry, and are cut again
	if err := l.ctlCmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	l.ctlCmd.Wait()
	relay.cut.Store(false)
	for _, a := range agents {
		cuts, carried, given := relay.cutsFor(a.underlay), 0, 0
		var said []string
		for _, c := range cuts {
			said = append(said, c.String())
			if bytes.Contains(c.whole, []byte("172.31.12.0/24")) {
				carried++
				if bytes.Contains(c.whole[:c.given], []byte("172.31.12.0/24")) {
					given++
				}
			}
		}
		if carried == 0 {
			t.Errorf("%s: no answer cut on its way carried the change: %s", a.name, strings.Join(said, ", "))
		}
		t.Logf("%s: %d answers cut half way (%d carried the change, %d of them cut after the new prefix), then the controller killed: %s",
			a.name, len(cuts), carried, given, strings.Join(said, ", "))
	}
	time.Sleep(3 * time.Second) // the agents find no controller
	for _, a := range agents {
		if a.cmd.ProcessState != nil {
			t.Fatalf("%s's agent exited: %s\n%s", a.name, a.cmd.ProcessState, a.logText())
		}
		if !strings.Contains(a.logText(), "unexpected EOF") {
			t.Errorf("%s's log does not show an answer cut short:\n%s", a.name, a.logText())
		}
		if now := ifaceState(t, a); now != before[a.name] {
			t.Errorf("%s applied something of the cut change:\nbefore:\n%s\nnow:\n%s\n%s", a.name, before[a.name], now, a.logText())
		}
	}
	for _, m := range pinged() {
		t.Errorf("pings lost with the controller gone mid-change: %s", m)
	}
	t.Logf("controller gone mid-change: every agent kept wg0 and its cached state as they were; 3 x 60 pings over 12 s, none lost")

	// The controller returns: everyone applies the change.
	back := time.Now()
	l.startController()
	l.converge("controller back", agents)
	t.Logf("controller back: every agent applied the change and every pair pings %.1f s after the restart", time.Since(back).Seconds())
	for _, a := range []*agentHost{agents[0], agents[2]} {
		if !pingWithin(a.h, "172.31.12.1", 20*time.Second) {
			t.Errorf("%s can't reach a2's new subnet after the controller returned", a.name)
		}
	}

	// Every request the agents sent, in plaintext: no private key.
	keys := privateKeys(t, agents)
	for i, a := range agents {
		relay.mu.Lock()
		sent := slices.Clone(relay.sent[a.underlay].Bytes())
		relay.mu.Unlock()
		pub := keys[i].Public().String()
		for _, want := range []string{"POST /v1/enroll ", "GET /v1/agent/changes?", "POST /v1/agent/status ", pub} {
			if !bytes.Contains(sent, []byte(want)) {
				t.Errorf("%s: the relay did not record %q: the scan would not see everything", a.name, want)
			}
		}
		if wgkey.Leaked(sent, keys...) {
			t.Errorf("%s sent a private key to the controller", a.name)
		}
		t.Logf("%s: %d requests (%d bytes) recorded in plaintext, its public key among them, no private key in 7 encodings",
			a.name, bytes.Count(sent, []byte(" HTTP/1.1\r\n")), len(sent))
	}
}
