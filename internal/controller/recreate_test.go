package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
	"github.com/wgnet/wgnet/internal/store/storetest"
)

// swapStore is a store whose database can be swapped under a running
// controller: a store restored without restarting it.
type swapStore struct{ store.Store }

// buildMesh creates network n (mesh, subnet) in st with the hosts named,
// each with an agent credential; it returns the credentials and the revision.
func buildMesh(t *testing.T, st store.Store, subnet, join string, hosts ...string) (map[string]string, uint64) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.CreateNetwork(ctx, store.Network{Name: "n", Topology: "mesh", Subnets: mustPrefixes(t, subnet)}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(ctx, store.Token{Hash: store.HashToken(join), Kind: store.EnrollToken, Network: "n", Uses: 100}); err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{}
	for i, h := range hosts {
		cred := fmt.Sprintf("%s%s-%s", api.AgentCredentialPrefix, join, h)
		if _, _, _, err := st.Enroll(ctx, store.HashToken(join), time.Now(), store.Host{Name: h, PublicKey: storetest.Key(100 + i)}, nil, store.HashToken(cred)); err != nil {
			t.Fatalf("enroll %s: %v", h, err)
		}
		creds[h] = cred
	}
	n, err := st.Network(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	return creds, n.Revision
}

// stateOf is the whole state the controller sends the agent with cred, by
// GET /v1/agent/state and by a v2 long poll's answer from since (which must
// be a whole state, or a delta onto held).
func stateOf(t *testing.T, srv *controller.Server, cred string, since uint64) (api.AgentState, api.AgentChanges) {
	t.Helper()
	code, b := call(t, srv, "GET", "/v1/agent/state", cred, "", nil)
	if code != 200 {
		t.Fatalf("state: %d %s", code, b)
	}
	var st api.AgentState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	code, b = call(t, srv, "GET", fmt.Sprintf("/v1/agent/changes?since=%d&state=1", since), cred, "v2,v1", nil)
	if code != 200 {
		t.Fatalf("changes: %d %s", code, b)
	}
	var ch api.AgentChanges
	if err := json.Unmarshal(b, &ch); err != nil {
		t.Fatal(err)
	}
	return st, ch
}

func peerNames(st *api.AgentState) string {
	var out []string
	for _, p := range st.Peers {
		out = append(out, p.Name)
	}
	return strings.Join(out, ",")
}

// TestCompiledNetworkRecreated: a network deleted and created again under
// the same name (by another controller: this one is not told), and a store
// swapped for another (restored) under a running controller, each reaching
// the very revision the controller compiled before with other contents: the
// agents get the new network's state, never the compiled one of the old,
// and no delta from the old network's steps.
func TestCompiledNetworkRecreated(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := sqlitestore.Open(ctx, filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	st := &swapStore{a}
	srv := controller.New(st, controller.Config{URLs: []string{"https://ctl.test:7443"}})
	check := func(what string, creds map[string]string, rev uint64, subnet, peers string) {
		t.Helper()
		got, ch := stateOf(t, srv, creds["h0"], rev-1)
		if got.Revision != rev || len(got.Subnets) != 1 || got.Subnets[0] != subnet || peerNames(&got) != peers {
			t.Errorf("%s: state at revision %d, subnets %v, peers %s; want revision %d, %s, peers %s", what, got.Revision, got.Subnets, peerNames(&got), rev, subnet, peers)
		}
		if ch.Delta != nil || ch.State == nil {
			t.Errorf("%s: a long poll from %d got a delta %+v; want the whole state (no step of this network was compiled)", what, rev-1, ch.Delta)
		} else if ch.State.Revision != rev || peerNames(ch.State) != peers || ch.State.Subnets[0] != subnet {
			t.Errorf("%s: long poll's state at revision %d, peers %s, subnets %v; want %d, %s, %s", what, ch.State.Revision, peerNames(ch.State), ch.State.Subnets, rev, peers, subnet)
		}
	}
	// The first network, compiled at two revisions (a step between them).
	creds, _ := buildMesh(t, st, "10.70.0.0/16", "join1", "h0", "h1")
	if code, b := call(t, srv, "GET", "/v1/agent/state", creds["h0"], "", nil); code != 200 {
		t.Fatalf("state: %d %s", code, b)
	}
	if _, _, _, err := st.Enroll(ctx, store.HashToken("join1"), time.Now(), store.Host{Name: "h2", PublicKey: storetest.Key(200)}, nil, store.HashToken("x")); err != nil {
		t.Fatal(err)
	}
	n, _ := st.Network(ctx, "n")
	old, _ := stateOf(t, srv, creds["h0"], n.Revision-1)
	if peerNames(&old) != "h1,h2" {
		t.Fatalf("first network: peers %s, want h1,h2", peerNames(&old))
	}
	// Deleted and created again at the same revision, with another subnet
	// and other hosts, behind the controller's back.
	if err := st.DeleteNetwork(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	creds2, rev2 := buildMesh(t, st, "10.71.0.0/16", "join2", "h0", "h3", "h4")
	if rev2 != n.Revision {
		t.Fatalf("recreated at revision %d, want %d (the compiled one) for the test to mean something", rev2, n.Revision)
	}
	check("deleted and created again", creds2, rev2, "10.71.0.0/16", "h3,h4")
	// A store restored under the running controller: another database with
	// the network at the same revision.
	b, err := sqlitestore.Open(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	creds3, rev3 := buildMesh(t, b, "10.72.0.0/16", "join3", "h0", "h5", "h6")
	if rev3 != rev2 {
		t.Fatalf("restored store at revision %d, want %d", rev3, rev2)
	}
	st.Store = b
	check("store restored", creds3, rev3, "10.72.0.0/16", "h5,h6")
}

func mustPrefixes(t *testing.T, ps ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, p := range ps {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}
