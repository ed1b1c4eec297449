package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/wgnet/wgnet/internal/agent"
	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/lab"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// ctl is a controller serving on 127.0.0.1:0 in this process.
type ctl struct {
	url, caHash string
	admin       *client.Client
	st          *sqlitestore.Store
	srv         *controller.Server
	hs          *http.Server
	tls         *controller.TLS
	addr        string
	extra       []string // more URLs the controller advertises
}

// serve starts serving on addr (127.0.0.1:0 the first time) with a new
// Server over the same store, as a restarted controller process would.
func (c *ctl) serve(t testing.TB, addr string) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ { // the port of a stopped server may take a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	c.url = "https://" + c.addr
	c.srv = controller.New(c.st, controller.Config{URLs: append([]string{c.url}, c.extra...), CAHash: c.caHash})
	// A clone per server: ServeTLS adds HTTP/2 to its TLSConfig's NextProtos
	// (a write), and two servers on one config race (go test -race).
	c.hs = &http.Server{Handler: c.srv, TLSConfig: c.tls.Config.Clone()}
	go c.hs.ServeTLS(ln, "", "")
}

// stop stops the server (the store stays).
func (c *ctl) stop() {
	c.hs.Close()
	c.srv.Close()
}

func startController(t testing.TB) *ctl {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlitestore.Open(ctx, filepath.Join(dir, "wgnet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := controller.LoadTLS(dir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := controller.EnsureAdminToken(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	c := &ctl{caHash: api.CAHash(id.CA), st: st, tls: id}
	c.serve(t, "127.0.0.1:0")
	t.Cleanup(func() { c.stop() })
	if c.admin, err = client.New(client.Options{URL: c.url, Token: tok, CAPEM: id.CAPEM}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.admin.Close)
	return c
}

// recorder keeps every request the agents send: method, URL, headers, body.
// With cut set, every answer to an agent route loses the second half of its
// body: a controller that dies while it answers.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
	n   int
	cut atomic.Bool
	// cuts counts the answers cut.
	cuts atomic.Int64
}

type recordingTransport struct {
	rec  *recorder
	next http.RoundTripper
}

func (r recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.rec.mu.Lock()
	fmt.Fprintf(&r.rec.buf, "%s %s\n", req.Method, req.URL)
	req.Header.Write(&r.rec.buf)
	r.rec.buf.Write(body)
	r.rec.buf.WriteString("\n\n")
	r.rec.n++
	r.rec.mu.Unlock()
	resp, err := r.next.RoundTrip(req)
	if err != nil || !r.rec.cut.Load() || !strings.Contains(req.URL.Path, "/agent/") {
		return resp, err
	}
	r.rec.cuts.Add(1)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b[:len(b)/2]), iotest.ErrReader(io.ErrUnexpectedEOF)))
	return resp, nil
}

func (r *recorder) transport(caHash string) (http.RoundTripper, error) {
	tr, err := client.Transport(caHash)
	if err != nil {
		return nil, err
	}
	return recordingTransport{rec: r, next: tr}, nil
}

// scan fails the test when the recorded requests hold any of the private
// keys, in any encoding: raw bytes, base64 (with and without padding, and
// URL-safe), hex in either case.
func (r *recorder) scan(t *testing.T, keys []wgkey.Private) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buf.Bytes()
	if r.n == 0 || len(b) == 0 {
		t.Fatal("no request recorded")
	}
	if wgkey.Leaked(b, keys...) {
		t.Errorf("a request holds a private key")
	}
	t.Logf("scanned %d requests (%d bytes) for %d private keys in 7 encodings: none", r.n, len(b), len(keys))
}

// labNet runs every agent's interface in one lab: the in-process data plane.
type labNet struct {
	mu    sync.Mutex
	lab   *lab.Lab
	hosts map[string]intent.Host
}

// labPlane is one agent's DataPlane in the lab: its intent, with the key the
// agent's key file holds (the lab runs in this process; a real host reads
// the file).
type labPlane struct {
	net  *labNet
	host string
	key  wgkey.Private
}

func (p *labPlane) Apply(ctx context.Context, name string, h *intent.Host) error {
	hc := *h.Clone()
	hc.KeyFile, hc.PrivateKey = "", p.key
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	p.net.hosts[p.host] = hc
	return p.net.applyLocked(ctx)
}

func (p *labPlane) Peers(ctx context.Context, name string) ([]device.PeerState, error) {
	n, ok := p.net.lab.Node(p.host)
	if !ok {
		return nil, nil
	}
	st, err := n.State()
	if err != nil {
		return nil, err
	}
	return st.Peers, nil
}

func (p *labPlane) Remove(ctx context.Context, name string) error {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	delete(p.net.hosts, p.host)
	return p.net.applyLocked(ctx)
}

func (n *labNet) applyLocked(ctx context.Context) error {
	var all []intent.Host
	for _, h := range n.hosts {
		all = append(all, h)
	}
	slices.SortFunc(all, func(a, b intent.Host) int { return cmpString(a.Name, b.Name) })
	_, err := n.lab.Apply(ctx, all)
	return err
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fleet is a controller, a lab and the agents that joined.
type fleet struct {
	t      *testing.T
	c      *ctl
	net    *labNet
	rec    *recorder
	keys   []wgkey.Private
	agents map[string]*running
	dirs   map[string]string
	// versions are the API versions an agent speaks, by host (none: this
	// release's).
	versions map[string][]string
	// snapshotEvery is an agent's Options.SnapshotEvery, by host (none: the default).
	snapshotEvery map[string]time.Duration
	// adjust, when set, changes each agent's options last.
	adjust func(host string, o *agent.Options)
	// allow is what a host's operator allows at join, by host (none: nothing).
	allow map[string]agent.Allowed
}

type running struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan struct{}
}

// newFleet starts the controller and an empty lab; opts adjust the lab's
// options (a policy the probes are held to, ports to probe).
func newFleet(t *testing.T, opts ...func(*lab.Options)) *fleet {
	c := startController(t)
	lo := lab.Options{ProbeTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&lo)
	}
	l, err := lab.Start(context.Background(), nil, lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f := &fleet{t: t, c: c, net: &labNet{lab: l, hosts: map[string]intent.Host{}}, rec: &recorder{}, agents: map[string]*running{}, dirs: map[string]string{}}
	t.Cleanup(f.stopAll)
	return f
}

// join makes a key file, joins host name with token and runs its agent.
func (f *fleet) join(token, name, endpoint string, routes ...string) {
	f.t.Helper()
	a := f.joinOnly(token, name, endpoint, routes...)
	f.run(name, a)
}

// run runs a as host name's agent.
func (f *fleet) run(name string, a *agent.Agent) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); a.Run(ctx) }()
	f.agents[name] = r
}

// options are the agent options of host name in the fleet.
func (f *fleet) options(name, dir string, k wgkey.Private) agent.Options {
	o := agent.Options{Dir: dir, Plane: &labPlane{net: f.net, host: name, key: k}, Transport: f.rec.transport,
		Wait: 5 * time.Second, ReportEvery: 500 * time.Millisecond, BackoffMin: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
		Log:         slog.New(slog.NewTextHandler(testWriter{f.t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		APIVersions: f.versions[name], SnapshotEvery: f.snapshotEvery[name]}
	if f.adjust != nil {
		f.adjust(name, &o)
	}
	return o
}

// joinOnly joins host name and returns its agent, not running.
func (f *fleet) joinOnly(token, name, endpoint string, routes ...string) *agent.Agent {
	t := f.t
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agent")
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	f.keys = append(f.keys, k)
	opts := f.options(name, dir, k)
	keyFile := filepath.Join(t.TempDir(), "host.key")
	if err := writeKey(keyFile, k); err != nil {
		t.Fatal(err)
	}
	req := agent.JoinRequest{Token: token, Name: name, Endpoint: endpoint, KeyFile: keyFile, Allow: f.allow[name]}
	for _, r := range routes {
		req.Routes = append(req.Routes, netip.MustParsePrefix(r))
	}
	a, err := agent.Join(context.Background(), req, opts)
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	f.dirs[name] = dir
	return a
}

// leave has host name's agent leave the network, and stops it.
func (f *fleet) leave(name string) {
	f.t.Helper()
	r := f.agents[name]
	if err := r.a.Leave(context.Background(), false); err != nil {
		f.t.Fatalf("%s leaves: %v", name, err)
	}
	r.cancel()
	<-r.done
	delete(f.agents, name)
}

func (f *fleet) stopAll() {
	for _, r := range f.agents {
		r.cancel()
		<-r.done
	}
}

// converge waits (bounded) until every agent has applied the network's
// current revision, then probes every pair in the lab.
func (f *fleet) converge(what string) {
	t := f.t
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := f.c.admin.Hosts(ctx, "n")
		if err != nil {
			t.Fatal(err)
		}
		behind := []string{}
		for name, r := range f.agents {
			if r.a.Applied() != n.Network.Revision {
				behind = append(behind, fmt.Sprintf("%s at %d", name, r.a.Applied()))
			}
		}
		if len(behind) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: agents not at revision %d after 30 s: %v", what, n.Network.Revision, behind)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m, err := f.net.lab.Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Problems(); len(p) > 0 || len(m.Probes) == 0 {
		t.Fatalf("%s: %d probes, problems: %+v", what, len(m.Probes), p)
	}
	t.Logf("%s: %d agents converged, %d probes all as intended", what, len(f.agents), len(m.Probes))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// TestInProcess: a controller and agents on the lab's in-process data plane.
// Three hosts join with one token, a fourth joins, one leaves, an admin
// changes a route: after each step every agent has applied the network's
// revision and every pair (and routed subnet) is reachable. No request any
// agent sent holds a private key.
func TestInProcess(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	if _, err := f.c.admin.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.60.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := f.c.admin.CreateToken(ctx, "n", api.CreateToken{Uses: 4, Routes: []string{"172.30.0.0/16"}})
	if err != nil {
		t.Fatal(err)
	}
	f.join(tok.Token, "hub", "192.0.2.1:51820")
	f.join(tok.Token, "s1", "192.0.2.11:51820", "172.30.1.0/24")
	f.join(tok.Token, "s2", "192.0.2.12:51820")
	f.converge("three joined")

	f.join(tok.Token, "s3", "192.0.2.13:51820")
	f.converge("a fourth joined")

	f.leave("s2")
	f.converge("s2 left")

	if _, err := f.c.admin.SetHost(ctx, "n", "s3", api.SetHost{Routes: []string{"172.30.3.0/24"}}); err != nil {
		t.Fatal(err)
	}
	f.converge("s3 routes 172.30.3.0/24")
	checkMetrics(t, f.agents["hub"].a)
	if st, err := f.c.admin.Status(ctx, "n"); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("status: %+v", st.Hosts)
	}
	f.rec.scan(t, f.keys)
}

// TestOutage: with the controller gone the agents change nothing and the
// network keeps working; an agent restarted meanwhile comes up from its
// cache; when the controller returns (a new server on the same store) a host
// added during the outage reaches everyone.
func TestOutage(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	tok := f.mesh("10.61.0.0/24", 3)
	f.join(tok.Token, "a", "192.0.2.1:51820")
	f.join(tok.Token, "b", "192.0.2.2:51820")
	f.converge("two joined")
	before := f.agents["a"].a.Applied()

	f.c.stop()
	// b restarts while no controller answers: up from its cache.
	r := f.agents["b"]
	r.cancel()
	<-r.done
	f.net.mu.Lock()
	delete(f.net.hosts, "b")
	f.net.applyLocked(ctx)
	f.net.mu.Unlock()
	a, err := agent.New(f.options("b", f.dirs["b"], f.keys[1]))
	if err != nil {
		t.Fatal(err)
	}
	f.run("b", a)
	time.Sleep(1500 * time.Millisecond) // several failed polls, with backoff
	for name, r := range f.agents {
		if r.a.Applied() != before {
			t.Errorf("%s applied %d during the outage, want %d", name, r.a.Applied(), before)
		}
	}
	m, err := f.net.lab.Probe(ctx)
	if err != nil || len(m.Problems()) > 0 || len(m.Probes) == 0 {
		t.Fatalf("during the outage: %v, problems %+v", err, m.Problems())
	}
	// A host is added to the store while the API is down; the controller returns.
	k, _ := wgkey.GeneratePrivate()
	if _, _, err := f.c.st.AddHost(ctx, "n", storeHost("c", k.Public(), "192.0.2.3:51820"), nil); err != nil {
		t.Fatal(err)
	}
	f.c.serve(t, f.c.addr)
	f.join(tok.Token, "d", "192.0.2.4:51820")
	deadline := time.Now().Add(30 * time.Second)
	for f.agents["a"].a.Applied() <= before+1 || f.agents["b"].a.Applied() <= before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("after the controller returned: a at %d, b at %d", f.agents["a"].a.Applied(), f.agents["b"].a.Applied())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// c has no agent in this test: the others list it; probes to it fail, so
	// converge checks the revision only for a, b and d, and the lab without c.
	f.converge("controller back, d joined")
}

// checkMetrics reads an agent's registry: the revision applied, its peers by
// state (all up after the probes), and per-peer handshake age and bytes.
func checkMetrics(t *testing.T, a *agent.Agent) {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	perPeer := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" {
					name += "{" + l.GetValue() + "}"
				}
				if l.GetName() == "peer" {
					perPeer[mf.GetName()]++
				}
			}
			got[name] = v
		}
	}
	if got["wgnet_agent_revision_applied"] != float64(a.Applied()) || got["wgnet_agent_peers{up}"] != 2 || got["wgnet_agent_peers{never}"] != 0 ||
		perPeer["wgnet_agent_peer_handshake_age_seconds"] != 2 || perPeer["wgnet_agent_peer_receive_bytes_total"] != 2 || got["wgnet_agent_controller_reachable"] != 1 {
		t.Errorf("metrics of the hub: %v, per peer %v", got, perPeer)
	}
}

// TestLearnURLs: agents learn a second controller URL from their desired
// state and fail over to it when the first controller goes away for good.
func TestLearnURLs(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	tok := f.mesh("10.62.0.0/24", 2)
	f.join(tok.Token, "a", "192.0.2.1:51820")
	f.join(tok.Token, "b", "192.0.2.2:51820")
	f.converge("two joined")
	// A second controller on the same store; the first starts advertising it.
	second := &ctl{st: f.c.st, tls: f.c.tls, caHash: f.c.caHash}
	second.serve(t, "127.0.0.1:0")
	t.Cleanup(second.stop)
	f.c.stop()
	f.c.extra = []string{second.url}
	f.c.serve(t, f.c.addr)
	k1, _ := wgkey.GeneratePrivate()
	if _, _, err := f.c.st.AddHost(ctx, "n", storeHost("c", k1.Public(), "192.0.2.3:51820"), nil); err != nil {
		t.Fatal(err)
	}
	f.waitApplied("the second URL advertised")
	// The first controller goes for good: the agents follow through the second.
	f.c.stop()
	k2, _ := wgkey.GeneratePrivate()
	if _, _, err := f.c.st.AddHost(ctx, "n", storeHost("d", k2.Public(), "192.0.2.4:51820"), nil); err != nil {
		t.Fatal(err)
	}
	f.waitApplied("the first controller gone")
}

// mesh creates network n, a mesh on subnet, and returns a join token for
// uses hosts.
func (f *fleet) mesh(subnet string, uses int) api.Token {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.c.admin.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "mesh", Subnets: []string{subnet}}); err != nil {
		f.t.Fatal(err)
	}
	tok, err := f.c.admin.CreateToken(ctx, "n", api.CreateToken{Uses: uses})
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// waitApplied waits (bounded) until every agent has applied the store's
// revision of network n.
func (f *fleet) waitApplied(what string) {
	f.t.Helper()
	n, err := f.c.st.Network(context.Background(), "n")
	if err != nil {
		f.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for name, r := range f.agents {
		for r.a.Applied() != n.Revision {
			if time.Now().After(deadline) {
				f.t.Fatalf("%s: %s at revision %d, want %d", what, name, r.a.Applied(), n.Revision)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	f.t.Logf("%s: every agent at revision %d", what, n.Revision)
}

// TestStoreBehind: a controller comes back on a store restored from an older
// backup (its revision below the agents'): the agents take its state (the
// host added after the backup goes), and follow its changes from there.
func TestStoreBehind(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	tok := f.mesh("10.63.0.0/24", 2)
	f.join(tok.Token, "a", "192.0.2.1:51820")
	f.join(tok.Token, "b", "192.0.2.2:51820")
	f.converge("two joined")
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := f.c.st.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	k, _ := wgkey.GeneratePrivate()
	if _, _, err := f.c.st.AddHost(ctx, "n", storeHost("c", k.Public(), "192.0.2.3:51820"), nil); err != nil {
		t.Fatal(err)
	}
	f.waitApplied("c added after the backup")
	ahead := f.agents["a"].a.Applied()

	f.c.stop()
	restored, err := sqlitestore.Open(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restored.Close() })
	f.c.st = restored
	f.c.serve(t, f.c.addr)
	f.waitApplied("the controller back on the older store")
	if got := f.agents["a"].a.Applied(); got >= ahead {
		t.Fatalf("a at revision %d after the restore, want the store's (below %d)", got, ahead)
	}
	k2, _ := wgkey.GeneratePrivate()
	if _, _, err := restored.AddHost(ctx, "n", storeHost("d", k2.Public(), "192.0.2.4:51820"), nil); err != nil {
		t.Fatal(err)
	}
	f.converge("d added on the restored store")
}

// unresolvingPlane is a data plane that says the peers in its list have an
// endpoint host name that never resolved (as UpPlane does).
type unresolvingPlane struct {
	agent.DataPlane
	mu    sync.Mutex
	peers []agent.UnresolvedPeer
}

func (p *unresolvingPlane) Unresolved() []agent.UnresolvedPeer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.peers)
}

// TestUnresolvedStatus: a peer that an agent configured without an endpoint
// (its host name never resolved) reaches the controller in the agent's
// status report (API v3) and `wgnet status` (the controller's status view)
// names it, the name and since when; once the name resolves, the next
// report clears it. An agent that speaks only v2 keeps reporting, without.
func TestUnresolvedStatus(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	b := agent.UnresolvedPeer{Peer: "b", Host: "b.example.invalid", Error: "lookup b.example.invalid: no such host"}
	planes := map[string]*unresolvingPlane{}
	f.adjust = func(host string, o *agent.Options) {
		p := &unresolvingPlane{DataPlane: o.Plane}
		if host != "b" {
			p.peers = []agent.UnresolvedPeer{b}
		}
		planes[host], o.Plane, o.ResolveEvery = p, p, time.Second
	}
	f.versions = map[string][]string{"c": {api.V2, api.Version}}
	tok := f.mesh("10.63.0.0/24", 3)
	f.join(tok.Token, "a", "192.0.2.1:51820")
	f.join(tok.Token, "b", "192.0.2.2:51820")
	f.join(tok.Token, "c", "192.0.2.3:51820")
	f.converge("three joined, a and c without b's endpoint")

	// peerB is a host's peer b in the controller's status view.
	peerB := func(st api.Status, host string) (api.PeerStatus, bool) {
		for _, h := range st.Hosts {
			for _, p := range h.Peers {
				if h.Name == host && p.Host == "b" {
					return p, true
				}
			}
		}
		return api.PeerStatus{}, false
	}
	waitStatus := func(what string, ok func(api.Status) bool) api.Status {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			st, err := f.c.admin.Status(ctx, "n")
			if err != nil {
				t.Fatal(err)
			}
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not in the controller's status after 15 s: %+v", what, st.Hosts)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// c reports too (v2), without the field: its report is taken.
	st := waitStatus("a's b unresolved, c reporting", func(st api.Status) bool {
		pa, oka := peerB(st, "a")
		_, okc := peerB(st, "c")
		return oka && pa.Unresolved != nil && okc
	})
	pa, _ := peerB(st, "a")
	since, err := time.Parse(time.RFC3339, pa.Unresolved.Since)
	if want := f.agents["a"].a.Unresolved(); pa.Unresolved.Host != b.Host || pa.Unresolved.Error != b.Error || err != nil || len(want) != 1 ||
		!since.Equal(want[0].Since.Truncate(time.Second)) {
		t.Errorf("a's peer b in the status: %+v; want %s, %q, since %v", pa.Unresolved, b.Host, b.Error, want)
	}
	if pc, _ := peerB(st, "c"); pc.Unresolved != nil {
		t.Errorf("c, a v2 agent, reported b unresolved: %+v", pc.Unresolved)
	}
	t.Logf("a's peer b in the controller's status: %+v", *pa.Unresolved)

	// b's name resolves now: a's next periodic reconcile finds it so, and
	// its next report clears it.
	planes["a"].mu.Lock()
	planes["a"].peers = nil
	planes["a"].mu.Unlock()
	waitStatus("a's b resolved", func(st api.Status) bool {
		pa, ok := peerB(st, "a")
		return ok && pa.Unresolved == nil
	})
}
