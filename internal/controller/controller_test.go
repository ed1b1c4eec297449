package controller_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// TestMain lets the kill test run this binary as a controller process.
func TestMain(m *testing.M) {
	if dir := os.Getenv("WGNET_TEST_CONTROLLER_DIR"); dir != "" {
		if err := runChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(dir string) error {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(dir, "wgnet.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	return controller.Run(ctx, st, controller.Options{Listen: "127.0.0.1:0", DataDir: dir})
}

// fixture is a controller serving on 127.0.0.1:0 in this process.
type fixture struct {
	url, token string
	ca         []byte
	hash       string
	srv        *controller.Server
	st         *sqlitestore.Store
	dir        string
	logs       *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T) *fixture { t.Helper(); return startWith(t, nil) }

// startWith is start with the listener wrapped by wrap (nil: as it is).
func startWith(t *testing.T, wrap func(net.Listener) net.Listener) *fixture {
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
	if err != nil || tok == "" {
		t.Fatalf("admin token: %q, %v", tok, err)
	}
	logs := &syncBuffer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := controller.New(st, controller.Config{Log: slog.New(slog.NewTextHandler(logs, nil)),
		URLs: []string{"https://" + ln.Addr().String()}, CAHash: api.CAHash(id.CA)})
	hs := &http.Server{Handler: srv, TLSConfig: id.Config}
	sl := ln
	if wrap != nil {
		sl = wrap(ln)
	}
	go hs.ServeTLS(sl, "", "")
	t.Cleanup(func() { hs.Close() })
	return &fixture{url: "https://" + ln.Addr().String(), token: tok, ca: id.CAPEM, hash: api.CAHash(id.CA), srv: srv, st: st, dir: dir, logs: logs}
}

func (f *fixture) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{URL: f.url, Token: f.token, CAPEM: f.ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func pub(t *testing.T) (wgkey.Private, string) {
	t.Helper()
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k, k.Public().String()
}

func TestConcurrentAdds(t *testing.T) {
	f := start(t)
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.7.0.0/24", "fd07::/64"}}); err != nil {
		t.Fatal(err)
	}
	const adds = 100
	var wg sync.WaitGroup
	errs := make(chan error, adds)
	for i := 0; i < adds; i++ {
		_, pk := pub(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := api.Host{Name: fmt.Sprintf("h%03d", i), PublicKey: pk, Keepalive: 25}
			if i == 0 {
				h.Endpoint = "192.0.2.1:51820"
			}
			if _, err := c.AddHost(ctx, "n", h); err != nil {
				errs <- fmt.Errorf("add %s: %w", h.Name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	hs, err := c.Hosts(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.Hosts) != adds || hs.Network.Revision != 1+adds {
		t.Fatalf("%d hosts at revision %d, want %d at %d", len(hs.Hosts), hs.Network.Revision, adds, 1+adds)
	}
	seen := map[string]string{}
	for _, h := range hs.Hosts {
		if len(h.Addresses) != 2 {
			t.Errorf("%s: addresses %v", h.Name, h.Addresses)
		}
		for _, a := range h.Addresses {
			if o, ok := seen[a]; ok {
				t.Errorf("%s given to %s and %s", a, o, h.Name)
			}
			seen[a] = h.Name
		}
	}
	// The change log has one small entry per add, dense.
	cs, err := c.Changes(ctx, "n", 0)
	if err != nil || len(cs.Changes) != 1+adds {
		t.Fatalf("changes: %d, %v", len(cs.Changes), err)
	}
	for i, ch := range cs.Changes {
		if ch.Revision != uint64(i+1) {
			t.Fatalf("change %d has revision %d", i, ch.Revision)
		}
	}
}

func TestAPI(t *testing.T) {
	f := start(t)
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "Bad Name", Topology: "mesh", Subnets: []string{"10.0.0.0/24"}}); status(err) != 400 {
		t.Errorf("bad name: %v, want 400", err)
	}
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "mesh", Subnets: []string{"10.0.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "mesh", Subnets: []string{"10.0.0.0/24"}}); status(err) != 409 {
		t.Errorf("second create: %v, want 409", err)
	}
	_, k1 := pub(t)
	_, k2 := pub(t)
	if _, err := c.AddHost(ctx, "n", api.Host{Name: "a", PublicKey: k1, Endpoint: "no-port"}); status(err) != 400 || !strings.Contains(err.Error(), "port") {
		t.Errorf("endpoint without a port: %v, want 400 saying so (spec validation)", err)
	}
	if _, err := c.AddHost(ctx, "n", api.Host{Name: "a"}); status(err) != 400 {
		t.Errorf("no public key: %v, want 400", err)
	}
	r, err := c.AddHost(ctx, "n", api.Host{Name: "a", PublicKey: k1, Endpoint: "192.0.2.1:51820", Routes: []string{"172.30.0.0/16"}})
	if err != nil || r.Host.Addresses[0] != "10.0.0.1" || r.Revision != 2 {
		t.Fatalf("add a: %+v, %v", r, err)
	}
	if _, err := c.AddHost(ctx, "n", api.Host{Name: "b", PublicKey: k2, Endpoint: "192.0.2.2:51820", Routes: []string{"172.30.1.0/24"}}); status(err) != 400 {
		t.Errorf("overlapping route: %v, want 400 (spec validation)", err)
	}
	if _, err := c.AddHost(ctx, "n", api.Host{Name: "b", PublicKey: k2, Endpoint: "192.0.2.2:51820"}); err != nil {
		t.Fatal(err)
	}
	// A route wider than /8, which every agent would refuse as a default
	// route in parts, is refused here first.
	for wide, why := range map[string]string{"0.0.0.0/1": "wider than /8", "0.0.0.0/8": "which no tunnel routes", "8.0.0.0/7": "wider than /8", "8000::/1": "wider than /8",
		"169.254.169.254/32": "which no tunnel routes", "ff02::/16": "which no tunnel routes", "::ffff:10.90.0.0/120": "IPv4-mapped"} {
		if _, err := c.SetHost(ctx, "n", "b", api.SetHost{Routes: []string{wide}}); status(err) != 400 || !strings.Contains(err.Error(), why) {
			t.Errorf("route %s: %v, want 400 (%s)", wide, err, why)
		}
	}
	ep := "192.0.2.22:51820"
	s, err := c.SetHost(ctx, "n", "b", api.SetHost{Endpoint: &ep, Routes: []string{"172.31.0.0/16"}})
	if err != nil || s.Host.Endpoint != ep || len(s.Host.Routes) != 1 || s.Revision != 4 {
		t.Fatalf("set b: %+v, %v", s, err)
	}
	cfg, err := c.Config(ctx, "n", "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Address = 10.0.0.1/24", "AllowedIPs = 10.0.0.2/32, 172.31.0.0/16", "Endpoint = 192.0.2.22:51820", "private-key /etc/wireguard/wg0.key"} {
		if !strings.Contains(cfg.WgQuick, want) {
			t.Errorf("config of a lacks %q:\n%s", want, cfg.WgQuick)
		}
	}
	if _, err := c.Config(ctx, "n", "zz"); status(err) != 404 {
		t.Errorf("config of a missing host: %v, want 404", err)
	}
	ch, err := c.Check(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ch.Findings {
		if f.Severity == "error" {
			t.Errorf("check: %+v", f)
		}
	}
	if _, err := c.RemoveHost(ctx, "n", "a"); err != nil {
		t.Fatal(err)
	}
	cs, err := c.Changes(ctx, "n", 3)
	if err != nil || len(cs.Changes) != 2 || cs.Changes[0].Kind != "host-changed" || cs.Changes[1].Kind != "host-removed" || cs.Changes[1].Host != "a" {
		t.Errorf("changes since 3: %+v, %v", cs, err)
	}
	// A route in public address space, which agents refuse unless allowed at
	// join: check says so (only of it), the private ones pass.
	publicRoutes := func() (out []string) {
		ch, err := c.Check(ctx, "n")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range ch.Findings {
			if f.Code == "agent-public-route" {
				out = append(out, f.Message)
			}
		}
		return out
	}
	if got := publicRoutes(); len(got) != 0 {
		t.Errorf("check of private routes: %q", got)
	}
	if _, err := c.SetHost(ctx, "n", "b", api.SetHost{Routes: []string{"8.8.8.0/24"}}); err != nil {
		t.Fatal(err)
	}
	if got := publicRoutes(); len(got) != 1 || !strings.Contains(got[0], "host b: route 8.8.8.0/24 is public address space") || !strings.Contains(got[0], "--allow public-routes") {
		t.Errorf("check of a public route: %q", got)
	}
	if err := c.DeleteNetwork(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if ns, err := c.Networks(ctx); err != nil || len(ns) != 0 {
		t.Errorf("networks after delete: %v, %v", ns, err)
	}
}

func status(err error) int {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// TestEveryRouteAuthenticated takes the routes from the server's router and
// checks that each one, health aside, refuses a missing, wrong or malformed
// credential, and that a pinned client refuses another CA.
func TestEveryRouteAuthenticated(t *testing.T) {
	f := start(t)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	routes := f.srv.Routes()
	if len(routes) < 10 {
		t.Fatalf("only %d routes", len(routes))
	}
	path := strings.NewReplacer("{network}", "n", "{host}", "h")
	public := 0
	for _, rt := range routes {
		if rt.Auth == controller.AuthNone {
			public++
		}
		for _, auth := range []string{"", "Bearer ", "Bearer wrong", "Bearer " + f.token + "x", "Basic " + f.token, f.token} {
			req, _ := http.NewRequest(rt.Method, f.url+path.Replace(rt.Pattern), strings.NewReader("{}"))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case rt.Auth == controller.AuthNone && resp.StatusCode != 200:
				t.Errorf("%s %s (public) = %d, want 200", rt.Method, rt.Pattern, resp.StatusCode)
			case rt.Auth != controller.AuthNone && resp.StatusCode != 401:
				t.Errorf("%s %s with Authorization %q = %d, want 401", rt.Method, rt.Pattern, auth, resp.StatusCode)
			}
		}
	}
	if public != 1 {
		t.Errorf("%d routes without a credential, want 1 (health)", public)
	}
	// The right token passes (GET /v1/networks), and a client pinned to another CA refuses the server.
	if _, err := f.client(t).Networks(context.Background()); err != nil {
		t.Errorf("with the admin token: %v", err)
	}
	other, err := controller.LoadTLS(t.TempDir(), []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Options{{CAPEM: other.CAPEM}, {CAHash: api.CAHash(other.CA)}} {
		o.URL, o.Token = f.url, f.token
		c, err := client.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Networks(context.Background()); err == nil {
			t.Errorf("a client trusting another CA (%+v) reached the controller", o.CAHash)
		}
	}
	id, _ := controller.LoadTLS(f.dir, []string{"127.0.0.1"}, time.Now()) // the same CA, loaded again
	c, _ := client.New(client.Options{URL: f.url, Token: f.token, CAHash: api.CAHash(id.CA)})
	if _, err := c.Networks(context.Background()); err != nil {
		t.Errorf("pinned by hash: %v", err)
	}
}

// keyRE matches anything that looks like a WireGuard key in base64.
var keyRE = regexp.MustCompile(`[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=`)

// TestNoPrivateKey scans every answer of every route, the database files and
// the log for a private key: only the public keys given may appear.
func TestNoPrivateKey(t *testing.T) {
	f := start(t)
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.0.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	public := map[string]bool{}
	var private []wgkey.Private
	for i := 0; i < 4; i++ {
		k, pk := pub(t)
		private = append(private, k)
		public[pk] = true
		h := api.Host{Name: fmt.Sprintf("h%d", i), PublicKey: pk, Keepalive: 25}
		if i == 0 {
			h.Endpoint = "192.0.2.1:51820"
		}
		if _, err := c.AddHost(ctx, "n", h); err != nil {
			t.Fatal(err)
		}
	}
	// One host joins as an agent does: its credential reads the agent routes.
	tok, err := c.CreateToken(ctx, "n", api.CreateToken{})
	if err != nil {
		t.Fatal(err)
	}
	k, pk := pub(t)
	private = append(private, k)
	public[pk] = true
	e, err := client.Enroll(ctx, tok.Token, api.Host{Name: "h9", PublicKey: pk, EndpointPort: 51820})
	if err != nil || e.Credential == "" || e.Host.Endpoint != "127.0.0.1:51820" {
		t.Fatalf("enroll: %+v, %v; want a credential and the observed endpoint", e, err)
	}
	var bodies bytes.Buffer
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	path := strings.NewReplacer("{network}", "n", "{host}", "h1")
	for _, rt := range f.srv.Routes() {
		if rt.Method != "GET" {
			continue
		}
		if rt.Auth == controller.AuthNone {
			continue // health: checked with the others below
		}
		req, _ := http.NewRequest("GET", f.url+path.Replace(rt.Pattern), nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		if rt.Auth == controller.AuthAgent {
			req.Header.Set("Authorization", "Bearer "+e.Credential)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d: %s", rt.Pattern, resp.StatusCode, b)
		}
		bodies.Write(b)
	}
	if regexp.MustCompile(`(?i)privatekey\s*=`).Match(bodies.Bytes()) {
		t.Error("an answer has a PrivateKey line")
	}
	scan := map[string][]byte{"answers": bodies.Bytes(), "log": []byte(f.logs.String())}
	files, _ := filepath.Glob(filepath.Join(f.dir, "wgnet.db*"))
	if len(files) == 0 {
		t.Fatal("no database file")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		scan[p] = b
	}
	for what, b := range scan {
		for _, m := range keyRE.FindAll(b, -1) {
			if !public[string(m)] {
				t.Errorf("%s holds a key that is no host's public key: %s", what, m)
			}
		}
		for _, k := range private {
			if bytes.Contains(b, k[:]) || bytes.Contains(b, []byte(k.Base64())) || bytes.Contains(b, []byte(k.Hex())) {
				t.Errorf("%s holds a private key", what)
			}
		}
	}
}

// TestKill9 kills a controller process with SIGKILL in the middle of a burst of
// writes and restarts it: every add that got a 2xx is there, with the address
// it was given, and the revisions are dense.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts controller processes")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	url, token, stop := startChild(ctx, t, dir, "")
	ca, err := os.ReadFile(filepath.Join(dir, controller.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{URL: url, Token: token, CAPEM: ca, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "mesh", Subnets: []string{"10.8.0.0/16"}}); err != nil {
		t.Fatal(err)
	}
	const writers, max, killAfter = 8, 1000, 400
	var mu sync.Mutex
	acked := map[string]string{} // host → address, for every 2xx
	var wg sync.WaitGroup
	killed := make(chan struct{})
	var once sync.Once
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < max; i += writers {
				_, pk := pub(t)
				name := fmt.Sprintf("h%04d", i)
				r, err := c.AddHost(ctx, "n", api.Host{Name: name, PublicKey: pk, Endpoint: fmt.Sprintf("192.0.2.%d:%d", i%250+1, 51820+i)})
				if err != nil {
					select {
					case <-killed:
						return // the controller is gone
					default:
						t.Errorf("add %s before the kill: %v", name, err)
						return
					}
				}
				mu.Lock()
				acked[name] = r.Host.Addresses[0]
				n := len(acked)
				mu.Unlock()
				if n == killAfter {
					once.Do(func() { close(killed); stop() })
				}
			}
		}()
	}
	wg.Wait()
	once.Do(func() { close(killed); stop() })
	c.Close()
	t.Logf("%d adds acknowledged before the kill", len(acked))

	url, _, stop = startChild(ctx, t, dir, token)
	defer stop()
	c, err = client.New(client.Options{URL: url, Token: token, CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hs, err := c.Hosts(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range hs.Hosts {
		got[h.Name] = h.Addresses[0]
	}
	for name, addr := range acked {
		if got[name] != addr {
			t.Errorf("acknowledged %s at %s; after restart: %q", name, addr, got[name])
		}
	}
	if hs.Network.Revision != uint64(1+len(hs.Hosts)) {
		t.Errorf("revision %d with %d hosts: not dense", hs.Network.Revision, len(hs.Hosts))
	}
	t.Logf("%d hosts after restart (%d acknowledged)", len(hs.Hosts), len(acked))
}

// startChild runs this test binary as a controller on dir and returns its URL,
// the admin token it printed (or token, when it printed none) and a function
// that kills it with SIGKILL and waits.
func startChild(ctx context.Context, t *testing.T, dir, token string) (string, string, func()) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WGNET_TEST_CONTROLLER_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		cmd.Process.Kill() // SIGKILL
		cmd.Wait()
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "wgnet-admin-") {
			token = line
		}
		if addr, ok := strings.CutPrefix(line, "listening https://"); ok {
			if _, err := netip.ParseAddrPort(addr); err != nil {
				stop()
				t.Fatalf("child listens on %q", addr)
			}
			go io.Copy(io.Discard, out)
			return "https://" + addr, token, stop
		}
	}
	stop()
	t.Fatalf("controller child exited before listening: %v", sc.Err())
	return "", "", nil
}

// TestEnrollSingleUse: 100 hosts join at once with one single-use token: one
// is added, the 99 others get 409 "token already used", never a 5xx; an
// expired token is 410, an unknown one 401, and a bound token admits its host only.
func TestEnrollSingleUse(t *testing.T) {
	f := start(t)
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.0.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateToken(ctx, "n", api.CreateToken{})
	if err != nil || tok.Uses != 1 {
		t.Fatalf("CreateToken: %+v, %v", tok, err)
	}
	jt, err := api.ParseJoinToken(tok.Token)
	if err != nil || jt.URLs[0] != f.url || !strings.HasPrefix(jt.CAHash, "sha256:") {
		t.Fatalf("join token %+v, %v", jt, err)
	}
	const users = 100
	var wg sync.WaitGroup
	codes := make(chan int, users)
	for i := 0; i < users; i++ {
		_, pk := pub(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := client.Enroll(ctx, tok.Token, api.Host{Name: fmt.Sprintf("h%03d", i), PublicKey: pk, Keepalive: 25})
			if err != nil && status(err) == 0 {
				t.Errorf("enroll: %v", err)
			}
			if err != nil && status(err) == 409 && !strings.Contains(err.Error(), "token already used") {
				t.Errorf("enroll: %v, want 'token already used'", err)
			}
			codes <- status(err)
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for code := range codes {
		count[code]++
	}
	if count[0] != 1 || count[409] != users-1 {
		t.Errorf("status codes %v; want one success and %d × 409", count, users-1)
	}
	hs, err := c.Hosts(ctx, "n")
	if err != nil || len(hs.Hosts) != 1 || hs.Network.Revision != 2 {
		t.Errorf("after the enrollments: %+v, %v", hs, err)
	}
	_, pk := pub(t)
	bad := jt
	bad.Secret = "nope"
	if _, err := client.Enroll(ctx, bad.String(), api.Host{Name: "x", PublicKey: pk}); status(err) != 401 {
		t.Errorf("unknown token: %v, want 401", err)
	}
	bad = jt
	bad.CAHash = "sha256:" + strings.Repeat("0", 64)
	if _, err := client.Enroll(ctx, bad.String(), api.Host{Name: "x", PublicKey: pk}); err == nil || status(err) != 0 {
		t.Errorf("wrong CA pin: %v, want a TLS failure", err)
	}
	bound, err := c.CreateToken(ctx, "n", api.CreateToken{Host: "s9", Uses: 3, TTLSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enroll(ctx, bound.Token, api.Host{Name: "x", PublicKey: pk}); status(err) != 400 {
		t.Errorf("bound token, other host: %v, want 400", err)
	}
	if _, err := client.Enroll(ctx, bound.Token, api.Host{Name: "s9", PublicKey: pk, Routes: []string{"0.0.0.0/0"}}); status(err) != 400 {
		t.Errorf("a joining host claiming routes: %v, want 400", err)
	}
	if r, err := client.Enroll(ctx, bound.Token, api.Host{Name: "s9", PublicKey: pk}); err != nil || r.Network != "n" || r.Host.Hub {
		t.Errorf("bound token, its host: %+v, %v", r, err)
	}
}
