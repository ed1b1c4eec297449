package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/pgtest"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// syncWriter is a buffer several goroutines write to.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// haDB is a PostgreSQL database of the test's own cluster and the files that
// hold its password and the CA secret, as a controller is given them.
type haDB struct {
	url, pwFile, secretFile string
}

func newHADB(t *testing.T) haDB {
	t.Helper()
	srv := pgtest.Start(t)
	dir := t.TempDir()
	d := haDB{url: srv.URLWithoutPassword(srv.NewDatabase(t)), pwFile: filepath.Join(dir, "pgpass"), secretFile: filepath.Join(dir, "ca-secret")}
	if err := os.WriteFile(d.pwFile, []byte(pgtest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.secretFile, []byte("test-ca-secret-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// start runs a controller on the database, listening on listen.
func (d haDB) start(t *testing.T, listen string) *controllerProc {
	t.Helper()
	return startControllerProc(t, "--listen", listen, "--store", d.url, "--store-password-file", d.pwFile, "--ca-secret-file", d.secretFile)
}

// startThree starts three controllers at once on the database: one CA, and
// exactly one of them makes and prints the admin token.
func (d haDB) startThree(t *testing.T) ([]*controllerProc, []*client.Client) {
	t.Helper()
	ps := make([]*controllerProc, 3)
	var wg sync.WaitGroup
	for i := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); ps[i] = d.start(t, "127.0.0.1:0") }()
	}
	wg.Wait()
	var tokens []string
	for i, p := range ps {
		if p == nil {
			t.FailNow() // start said why
		}
		if p.hash != ps[0].hash {
			t.Fatalf("controller %d serves CA %s, controller 0 %s: not one identity", i, p.hash, ps[0].hash)
		}
		if p.token != "" {
			tokens = append(tokens, p.token)
		}
	}
	if len(tokens) != 1 {
		t.Fatalf("three controllers started at once printed %d admin tokens, want 1", len(tokens))
	}
	var cs []*client.Client
	for _, p := range ps {
		p.token = tokens[0]
		c, err := client.New(client.Options{URL: p.url, Token: tokens[0], CAHash: p.hash})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		cs = append(cs, c)
	}
	return ps, cs
}

func newKey(t *testing.T) string {
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().String()
}

// healthz asks a controller's /healthz.
func healthz(t *testing.T, p *controllerProc) (int, api.Health) {
	t.Helper()
	tr, err := client.Transport(p.hash)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(p.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h api.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, h
}

// TestHAThreeControllers: three controller processes on one PostgreSQL
// database serve one CA; /healthz says database reachable and migrations
// current; a host added through A is listed by B and C, and agents long
// polling B and C wake for it (LISTEN/NOTIFY across processes); 100
// concurrent uses of one single-use join token spread over the three: exactly
// one enrolls, the others get 409 "token already used", none a 5xx.
func TestHAThreeControllers(t *testing.T) {
	began := time.Now()
	d := newHADB(t)
	ps, cs := d.startThree(t)
	t.Logf("PostgreSQL and three controllers up in %v", time.Since(began).Round(time.Millisecond))
	ctx := context.Background()
	for i, p := range ps {
		code, h := healthz(t, p)
		// The change follower connects in the background: give it a moment.
		for deadline := time.Now().Add(15 * time.Second); h.Following != nil && !*h.Following && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			code, h = healthz(t, p)
		}
		if code != 200 || h.Status != "ok" || h.Database != "reachable" || h.Migrations != "current" || h.Store != "postgres" || h.Following == nil || !*h.Following {
			t.Errorf("controller %d /healthz: %d %+v", i, code, h)
		}
	}
	if _, err := cs[0].CreateNetwork(ctx, api.CreateNetwork{Name: "ha", Subnets: []string{"10.70.0.0/16"}, Topology: "mesh"}); err != nil {
		t.Fatal(err)
	}
	// Two agents, enrolled through B and C, long poll their controller.
	tok, err := cs[0].CreateToken(ctx, "ha", api.CreateToken{Uses: 2})
	if err != nil {
		t.Fatal(err)
	}
	agents := make([]*client.Client, 3)
	var rev uint64
	for i := 1; i <= 2; i++ {
		e, err := client.Enroll(ctx, tokenFor(t, tok.Token, ps[i].url), api.Host{Name: fmt.Sprintf("agent%d", i), PublicKey: newKey(t), Endpoint: fmt.Sprintf("198.18.0.%d:51820", i)})
		if err != nil {
			t.Fatal(err)
		}
		agents[i], err = client.New(client.Options{URL: ps[i].url, Token: e.Credential, CAHash: ps[i].hash})
		if err != nil {
			t.Fatal(err)
		}
		defer agents[i].Close()
		rev = max(rev, e.Revision)
	}
	type woke struct {
		i   int
		ch  api.AgentChanges
		err error
		at  time.Time
	}
	wakes := make(chan woke, 2)
	for i := 1; i <= 2; i++ {
		go func() {
			ch, err := agents[i].AgentChanges(ctx, rev, 20*time.Second, false)
			wakes <- woke{i, ch, err, time.Now()}
		}()
	}
	time.Sleep(300 * time.Millisecond) // both polls are waiting
	added := time.Now()
	res, err := cs[0].AddHost(ctx, "ha", api.Host{Name: "via-a", PublicKey: newKey(t), Endpoint: "198.18.0.10:51820"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		w := <-wakes
		if w.err != nil || w.ch.Revision != res.Revision || len(w.ch.Changes) == 0 || w.ch.Changes[len(w.ch.Changes)-1].Host != "via-a" {
			t.Errorf("agent on controller %d: %+v, %v; want revision %d adding via-a", w.i, w.ch, w.err, res.Revision)
			continue
		}
		t.Logf("agent on controller %d woke %v after the add through A", w.i, w.at.Sub(added).Round(time.Millisecond))
	}
	for i, c := range cs {
		hs, err := c.Hosts(ctx, "ha")
		if err != nil || !hostListed(hs, "via-a") {
			t.Errorf("controller %d lists %+v, %v; want via-a", i, hs, err)
		}
	}
	// The admin CLI with several URLs: one that can't be reached, then B.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	tf := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tf, []byte(ps[0].token), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustCLI(t, t.TempDir(), "list", "--controller", "https://"+dead.Addr().String()+","+ps[1].url, "--ca-hash", ps[0].hash,
		"--token-file", tf, "--network", "ha"); !strings.Contains(out, "via-a") {
		t.Errorf("list through a dead URL, then B: %s", out)
	}

	// 100 concurrent uses of one single-use token, spread over the three.
	one, err := cs[1].CreateToken(ctx, "ha", api.CreateToken{Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	var ok, used atomic.Int32
	var wg sync.WaitGroup
	raced := time.Now()
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := client.Enroll(ctx, tokenFor(t, one.Token, ps[i%3].url), api.Host{Name: fmt.Sprintf("race%03d", i), PublicKey: newKey(t)})
			var ae *client.Error
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &ae) && ae.Status == http.StatusConflict && strings.Contains(ae.Message, "already used"):
				used.Add(1)
			default:
				t.Errorf("enroll %d via controller %d: %v", i, i%3, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("100 concurrent enrollments over 3 controllers answered in %v", time.Since(raced).Round(time.Millisecond))
	if ok.Load() != 1 || used.Load() != 99 {
		t.Errorf("100 uses of a single-use token over 3 controllers: %d enrolled, %d told it was used; want 1 and 99", ok.Load(), used.Load())
	}
}

// tokenFor returns join token tok pointing at controller url only.
func tokenFor(t *testing.T, tok, url string) string {
	jt, err := api.ParseJoinToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	jt.URLs = []string{url}
	return jt.String()
}

func hostListed(hs api.Hosts, name string) bool {
	for _, h := range hs.Hosts {
		if h.Name == name {
			return true
		}
	}
	return false
}

// TestHAKillDuringWrites: 1,000 host additions spread over three controllers
// on one database while controller C is killed (SIGKILL, the process this
// test started) and restarted on the same address: every addition that got a
// 2xx is in the store with the address it was given, no address is given
// twice, the network's revisions are dense (one change per revision, no gap),
// and no answer is a 5xx.
func TestHAKillDuringWrites(t *testing.T) {
	d := newHADB(t)
	ps, cs := d.startThree(t)
	ctx := context.Background()
	if _, err := cs[0].CreateNetwork(ctx, api.CreateNetwork{Name: "burst", Subnets: []string{"10.80.0.0/20"}, Topology: "mesh"}); err != nil {
		t.Fatal(err)
	}
	const writes, workers = 1000, 12
	var next atomic.Int32
	var mu sync.Mutex
	acked := map[string]string{} // host → address, for every 2xx
	var down, fivexx atomic.Int32
	killed := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Minute)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= writes || time.Now().After(deadline) {
					return
				}
				if i == writes/3 {
					close(killed)
				}
				name := fmt.Sprintf("h%04d", i)
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				res, err := cs[i%3].AddHost(rctx, "burst", api.Host{Name: name, PublicKey: newKey(t)})
				cancel()
				var ae *client.Error
				switch {
				case err == nil:
					mu.Lock()
					acked[name] = strings.Join(res.Host.Addresses, ",")
					mu.Unlock()
				case errors.As(err, &ae) && ae.Status >= 500:
					fivexx.Add(1)
					t.Errorf("add %s via controller %d: %v", name, i%3, err)
				case errors.As(err, &ae):
					t.Errorf("add %s via controller %d: %v", name, i%3, err)
				default:
					down.Add(1) // no answer: C was down (or died mid-request)
				}
			}
		}()
	}
	<-killed
	c := ps[2]
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
	time.Sleep(200 * time.Millisecond)
	u, _ := url.Parse(c.url)
	restarted := d.start(t, u.Host)
	if restarted.url != c.url || restarted.hash != c.hash {
		t.Errorf("restarted C: %s %s, was %s %s", restarted.url, restarted.hash, c.url, c.hash)
	}
	wg.Wait()
	if int(next.Load()) < writes {
		t.Fatalf("only %d of %d writes sent before the deadline", next.Load(), writes)
	}
	t.Logf("%d writes: %d acknowledged, %d unanswered (C killed and restarted), %d 5xx", writes, len(acked), down.Load(), fivexx.Load())
	if len(acked) < writes/2 {
		t.Errorf("only %d writes acknowledged", len(acked))
	}
	hs, err := cs[0].Hosts(ctx, "burst")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	owner := map[string]string{}
	for _, h := range hs.Hosts {
		stored[h.Name] = strings.Join(h.Addresses, ",")
		for _, a := range h.Addresses {
			if o, dup := owner[a]; dup {
				t.Errorf("address %s given to %s and %s", a, o, h.Name)
			}
			owner[a] = h.Name
		}
	}
	for name, addr := range acked {
		if got, ok := stored[name]; !ok || got != addr {
			t.Errorf("acknowledged %s (%s) is stored as %q, %v", name, addr, got, ok)
		}
	}
	var log []api.Change
	var rev uint64
	for { // the log, page by page
		ch, err := cs[1].Changes(ctx, "burst", uint64(len(log)))
		if err != nil {
			t.Fatal(err)
		}
		rev = ch.Revision
		if len(ch.Changes) == 0 {
			break
		}
		log = append(log, ch.Changes...)
	}
	for i, c := range log {
		if c.Revision != uint64(i+1) {
			t.Fatalf("change %d has revision %d: not dense", i, c.Revision)
		}
	}
	if n := len(log); uint64(n) != rev || n != 1+len(hs.Hosts) {
		t.Errorf("%d changes, revision %d, %d hosts: want revision = changes = 1 + hosts", n, rev, len(hs.Hosts))
	}
	if code, h := healthz(t, restarted); code != 200 || h.Status != "ok" {
		t.Errorf("restarted C /healthz: %d %+v", code, h)
	}
}

// TestControllerMigrateToPostgres moves a SQLite controller with networks,
// hosts (one with its own settings), a half-used join token, an enrolled agent and an audit log into
// PostgreSQL: a controller on the new database serves the same CA pin, the
// same hosts at the same revision, accepts the old admin token, the join
// token's last use and the agent's credential, and has the audit log; a
// second migrate into the same database is refused.
func TestControllerMigrateToPostgres(t *testing.T) {
	d := newHADB(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	old := startControllerProc(t, "--listen", "127.0.0.1:0", "--data", data)
	ctx := context.Background()
	oc, err := client.New(client.Options{URL: old.url, Token: old.token, CAHash: old.hash})
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	if _, err := oc.CreateNetwork(ctx, api.CreateNetwork{Name: "m", Subnets: []string{"10.90.0.0/24", "fd90::/64"}, Topology: "hub"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"hub", "s1"} {
		h := api.Host{Name: n, PublicKey: newKey(t), Endpoint: "198.18.1.1:51820"}
		if n == "s1" { // a host's own settings come along too
			h.Addresses = []string{"10.90.0.9/32"}
			h.Settings = api.Settings{MTU: "1380", DNS: []string{"10.90.0.1"}, Table: "off", FwMark: 1<<32 - 1}
		}
		if _, err := oc.AddHost(ctx, "m", h); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := oc.CreateToken(ctx, "m", api.CreateToken{Uses: 2})
	if err != nil {
		t.Fatal(err)
	}
	e, err := client.Enroll(ctx, tok.Token, api.Host{Name: "agent1", PublicKey: newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	before, err := oc.Hosts(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if s1 := before.Hosts[2]; s1.Name != "s1" || s1.FwMark != 1<<32-1 || s1.Addresses[0] != "10.90.0.9/32" {
		t.Fatalf("s1 before the migration: %+v", s1)
	}
	auditBefore, err := oc.Audit(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	old.cmd.Process.Signal(syscall.SIGTERM)
	old.cmd.Wait()

	args := []string{"controller", "migrate", "--from", "sqlite:" + data, "--to", d.url, "--store-password-file", d.pwFile, "--ca-secret-file", d.secretFile}
	out := mustCLI(t, dir, append(args, "-o", "json")...)
	var res migrateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Networks != 1 || res.Hosts != 3 || res.Changes != 4 || res.Tokens != 3 || res.CAHash != old.hash {
		t.Errorf("migrate: %+v; want 1 network, 3 hosts, 4 changes, 3 tokens (admin, join, agent), CA %s", res, old.hash)
	}
	if _, errs, code := cli(t, dir, args...); code == 0 || !strings.Contains(errs, "empty") {
		t.Errorf("second migrate: exit %d, %s; want a refusal", code, errs)
	}
	withPW := []string{"controller", "migrate", "--from", "sqlite:" + data, "--to", strings.Replace(d.url, "?", "?password=x&", 1), "--ca-secret-file", d.secretFile}
	if _, errs, code := cli(t, dir, withPW...); code != 2 || !strings.Contains(errs, "ps") {
		t.Errorf("a password in the URL: exit %d, %s; want 2 and why", code, errs)
	}

	p := d.start(t, "127.0.0.1:0")
	if p.hash != old.hash || p.token != "" {
		t.Fatalf("controller on PostgreSQL: CA %s (want %s), printed admin token %q (want none: the old one came along)", p.hash, old.hash, p.token)
	}
	nc, err := client.New(client.Options{URL: p.url, Token: old.token, CAHash: p.hash})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	after, err := nc.Hosts(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if b, a := fmt.Sprintf("%+v", before), fmt.Sprintf("%+v", after); b != a {
		t.Errorf("hosts before:\n%s\nafter:\n%s", b, a)
	}
	if _, err := client.Enroll(ctx, tokenFor(t, tok.Token, p.url), api.Host{Name: "agent2", PublicKey: newKey(t)}); err != nil {
		t.Errorf("the join token's second use on PostgreSQL: %v", err)
	}
	ac, err := client.New(client.Options{URL: p.url, Token: e.Credential, CAHash: p.hash})
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if _, err := ac.AgentState(ctx); err != nil {
		t.Errorf("agent credential on PostgreSQL: %v", err)
	}
	auditAfter, err := nc.Audit(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(auditAfter.Entries) <= len(auditBefore.Entries) || auditAfter.Entries[0] != auditBefore.Entries[0] {
		t.Errorf("audit log: %d entries before, %d after (first %+v / %+v)", len(auditBefore.Entries), len(auditAfter.Entries), auditBefore.Entries[0], auditAfter.Entries[0])
	}
}
