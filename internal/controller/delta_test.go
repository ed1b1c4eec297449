package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
	"github.com/wgnet/wgnet/internal/store/storetest"
)

// call sends one request to h (no TLS) as a client speaking versions ("":
// none said) and returns the status and body.
func call(t *testing.T, h http.Handler, method, path, bearer, versions string, in any) (int, []byte) {
	t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	if versions != "" {
		req.Header.Set(api.VersionHeader, versions)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// deltaNet is a mesh network on one store with agents' credentials.
type deltaNet struct {
	t      *testing.T
	st     store.Store
	srv    http.Handler
	admin  string
	creds  map[string]string // host -> credential
	next   int
	routes int // routed subnets handed out
}

func newDeltaNet(t *testing.T, path string) *deltaNet {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tok, err := controller.EnsureAdminToken(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	d := &deltaNet{t: t, st: st, admin: tok, creds: map[string]string{}}
	d.srv = controller.New(st, controller.Config{URLs: []string{"https://ctl.test:7443"}})
	if code, b := call(t, d.srv, "POST", "/v1/networks", tok, "", api.CreateNetwork{Name: "n", Topology: "mesh", Subnets: []string{"10.70.0.0/16", "fd70::/64"}}); code != 201 {
		t.Fatalf("create network: %d %s", code, b)
	}
	if err := st.CreateToken(ctx, store.Token{Hash: store.HashToken("join"), Kind: store.EnrollToken, Network: "n", Uses: 1000}); err != nil {
		t.Fatal(err)
	}
	return d
}

// enroll adds a host with an agent credential.
func (d *deltaNet) enroll(h store.Host) string {
	d.t.Helper()
	d.next++
	cred := fmt.Sprintf("%sdelta-%04d", api.AgentCredentialPrefix, d.next)
	h.PublicKey = storetest.Key(d.next)
	if _, _, _, err := d.st.Enroll(context.Background(), store.HashToken("join"), time.Now(), h, nil, store.HashToken(cred)); err != nil {
		d.t.Fatalf("enroll %s: %v", h.Name, err)
	}
	d.creds[h.Name] = cred
	return cred
}

// snapshot is the whole state the controller sends host.
func (d *deltaNet) snapshot(host string) []byte {
	d.t.Helper()
	code, b := call(d.t, d.srv, "GET", "/v1/agent/state", d.creds[host], "", nil)
	if code != 200 {
		d.t.Fatalf("state of %s: %d %s", host, code, b)
	}
	return bytes.TrimSpace(b)
}

// TestDeltasMatchSnapshots checks the deltas against the slow obvious
// version: on a mesh changed at random (hosts added, removed, routes,
// endpoints, keepalives, tags and the policy changed), agents that poll
// now and then (so that some skip revisions and get several steps folded
// into one delta) each apply what they get; after every poll the state
// is, byte for byte, the whole state the controller sends. A v1 client gets
// whole states only; an agent further behind than the steps kept, or ahead
// of the store, gets a whole state.
func TestDeltasMatchSnapshots(t *testing.T) {
	d := newDeltaNet(t, filepath.Join(t.TempDir(), "wgnet.db"))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 8 {
		h := store.Host{Name: fmt.Sprintf("h%02d", i)}
		if i%2 == 0 {
			h.Endpoint = fmt.Sprintf("192.0.2.%d:51820", i+1)
		}
		d.enroll(h)
	}
	held := map[string]*api.AgentState{} // what each agent holds
	deltas, wholes := 0, 0
	poll := func(host, versions string) {
		t.Helper()
		since := uint64(0)
		if st := held[host]; st != nil {
			since = st.Revision
		}
		code, b := call(t, d.srv, "GET", fmt.Sprintf("/v1/agent/changes?since=%d&state=1", since), d.creds[host], versions, nil)
		if code != 200 {
			t.Fatalf("poll of %s: %d %s", host, code, b)
		}
		var ch api.AgentChanges
		if err := json.Unmarshal(b, &ch); err != nil {
			t.Fatal(err)
		}
		switch {
		case ch.Delta != nil && versions != api.V2+","+api.Version:
			t.Fatalf("%s speaking %q got a delta", host, versions)
		case ch.Delta != nil:
			st, err := api.ApplyDelta(held[host], ch.Delta)
			if err != nil {
				t.Fatalf("%s: %v", host, err)
			}
			// The digest the controller keeps up to date step by step is
			// the whole state's, worked out from scratch.
			if want := api.StateDigest(st).String(); ch.Delta.Digest != want {
				t.Fatalf("%s: delta %d->%d has digest %s; the state's is %s", host, ch.Delta.From, ch.Delta.Revision, ch.Delta.Digest, want)
			}
			held[host] = st
			deltas++
		case ch.State != nil:
			held[host] = ch.State
			wholes++
		default:
			return
		}
		got, _ := json.Marshal(held[host])
		if want := d.snapshot(host); !bytes.Equal(got, want) {
			t.Fatalf("%s after a poll from %d (delta %v): state\n %s\nwant\n %s", host, since, ch.Delta != nil, got, want)
		}
	}
	v2 := api.V2 + "," + api.Version
	for host := range d.creds {
		poll(host, v2)
	}
	digestsBefore := controller.WholeDigests.Load()
	for step := range 120 {
		d.change(rng, step)
		for host := range d.creds {
			switch {
			case host == "h01":
				poll(host, api.Version) // one release older: whole states
			case rng.IntN(3) > 0:
				poll(host, v2)
			}
		}
	}
	if deltas == 0 || wholes == 0 {
		t.Errorf("%d deltas, %d whole states; want some of each", deltas, wholes)
	}
	whole := controller.WholeDigests.Load() - digestsBefore
	t.Logf("%d deltas and %d whole states, each equal to the snapshot; %d host digests worked out whole (the others carried by the steps)",
		deltas, wholes, whole)
	if whole*4 > int64(deltas) {
		t.Errorf("%d of the digests of %d deltas worked out whole: the steps do not carry them", whole, deltas)
	}

	// Further behind than the steps kept, or ahead of the store: whole.
	host := "h00"
	old := *held[host]
	for range controller.MaxSteps + 1 {
		d.change(rng, 1)  // a route: every host's approved routes change
		d.snapshot("h01") // each revision compiled: a step each
	}
	for _, since := range []uint64{old.Revision, old.Revision + 10_000} {
		code, b := call(t, d.srv, "GET", fmt.Sprintf("/v1/agent/changes?since=%d&state=1", since), d.creds[host], v2, nil)
		var ch api.AgentChanges
		if code != 200 || json.Unmarshal(b, &ch) != nil || ch.State == nil || ch.Delta != nil {
			t.Errorf("poll from %d: %d %s; want a whole state", since, code, b)
		}
	}
}

// change makes one random change to the network.
func (d *deltaNet) change(rng *rand.Rand, step int) {
	t := d.t
	t.Helper()
	hosts := []string{}
	for h := range d.creds {
		if h != "h00" && h != "h01" {
			hosts = append(hosts, h)
		}
	}
	victim := hosts[rng.IntN(len(hosts))]
	var code int
	var b []byte
	switch k := step % 6; {
	case k == 0:
		d.enroll(store.Host{Name: fmt.Sprintf("n%03d", step), Endpoint: fmt.Sprintf("198.51.100.%d:51820", step%250+1)})
		return
	case k == 1:
		d.routes++
		r := fmt.Sprintf("172.%d.%d.0/24", 16+d.routes/250, d.routes%250)
		code, b = call(t, d.srv, "PATCH", "/v1/networks/n/hosts/"+victim, d.admin, "", api.SetHost{Routes: []string{r}, ReplaceRoutes: true})
	case k == 2:
		ep := fmt.Sprintf("203.0.113.%d:51820", step%250+1)
		if rng.IntN(3) == 0 {
			ep = ""
		}
		code, b = call(t, d.srv, "PATCH", "/v1/networks/n/hosts/"+victim, d.admin, "", api.SetHost{Endpoint: &ep})
	case k == 3:
		ka := rng.IntN(60)
		code, b = call(t, d.srv, "PATCH", "/v1/networks/n/hosts/"+victim, d.admin, "", api.SetHost{Keepalive: &ka, AddTags: []string{"t"}})
	case k == 4:
		p := api.Policy{Default: "allow"}
		if rng.IntN(2) == 0 {
			p = api.Policy{Default: "deny", Rules: []string{"allow any -> any tcp 22", "allow tag:t -> any"}}
		}
		code, b = call(t, d.srv, "PUT", "/v1/networks/n/policy", d.admin, "", p)
	case k == 5 && len(hosts) > 4:
		code, b = call(t, d.srv, "DELETE", "/v1/networks/n/hosts/"+victim, d.admin, "", nil)
		delete(d.creds, victim)
	default:
		return
	}
	if code/100 != 2 {
		t.Fatalf("change %d: %d %s", step, code, b)
	}
}

// TestRemovedHostCredential: two controllers on one database (two handles
// of one SQLite file, as two processes would have). One removes a host
// whose credential the other has cached: at the other, the host's next
// long poll, report and state request are refused (401), not served from
// the credential cache.
func TestRemovedHostCredential(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wgnet.db")
	a := newDeltaNet(t, path)
	stB, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer stB.Close()
	b := controller.New(stB, controller.Config{})
	a.enroll(store.Host{Name: "stays", Endpoint: "192.0.2.1:51820"})
	cred := a.enroll(store.Host{Name: "goes", Endpoint: "192.0.2.2:51820"})
	code, body := call(t, b, "GET", "/v1/agent/state", cred, "", nil)
	var st api.AgentState
	if code != 200 || json.Unmarshal(body, &st) != nil {
		t.Fatalf("state at b: %d %s", code, body)
	}
	if code, body := call(t, b, "POST", "/v1/agent/status", cred, "", api.AgentReport{Revision: st.Revision}); code != 202 {
		t.Fatalf("report at b: %d %s", code, body)
	}
	if code, body := call(t, a.srv, "DELETE", "/v1/networks/n/hosts/goes", a.admin, "", nil); code != 200 {
		t.Fatalf("remove at a: %d %s", code, body)
	}
	// The removal reaches b through the store's wake-up, not its cache's 30 s.
	if controller.CredentialCache < 10*time.Second {
		t.Fatalf("CredentialCache = %s: the test needs the cache to outlive it", controller.CredentialCache)
	}
	code, body = call(t, b, "GET", fmt.Sprintf("/v1/agent/changes?since=%d&wait=5s&state=1", st.Revision), cred, "", nil)
	if code != http.StatusUnauthorized {
		t.Errorf("long poll at b after the removal at a: %d %s, want 401", code, body)
	}
	if code, body := call(t, b, "POST", "/v1/agent/status", cred, "", api.AgentReport{Revision: st.Revision}); code != http.StatusUnauthorized {
		t.Errorf("report at b after the removal: %d %s, want 401", code, body)
	}
	if code, body := call(t, b, "GET", "/v1/agent/state", cred, "", nil); code != http.StatusUnauthorized {
		t.Errorf("state at b after the removal: %d %s, want 401", code, body)
	}
	// The host that stays is still served by b.
	if code, body := call(t, b, "GET", "/v1/agent/state", a.creds["stays"], "", nil); code != 200 {
		t.Errorf("state of the host that stays: %d %s", code, body)
	}
}
