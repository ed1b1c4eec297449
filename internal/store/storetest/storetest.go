// Package storetest is the conformance suite every store.Store implementation
// passes (SQLite and PostgreSQL): dense revisions under concurrent
// writers, unique addresses under concurrent adds, single use of a token under
// concurrency, the change log. It imports store and wgkey only.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Open returns a new, empty store; the suite closes it.
type Open func(t *testing.T) store.Store

// Run runs every conformance test against stores made by open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Networks", testNetworks},
		{"HostLifecycle", testHostLifecycle},
		{"DenseRevisionsConcurrent", testDenseRevisions},
		{"UniqueAddressesConcurrent", testUniqueAddresses},
		{"TokenSingleUseConcurrent", testTokenSingleUse},
		{"TokenExpiryAndUses", testTokenExpiry},
		{"ChangesSince", testChangesSince},
		{"HostsAndLog", testHostsAndLog},
		{"Settings", testSettings},
		{"EnrollConcurrent", testEnrollConcurrent},
		{"EnrollAtomic", testEnrollAtomic},
		{"Validate", testValidate},
		{"Audit", testAudit},
		{"StatusReports", testStatus},
		{"TokenRoutes", testTokenRoutes},
		{"AllocationLowestFree", testAllocationLowestFree},
		{"AgentCredential", testAgentCredential},
		{"WaitRevision", testWaitRevision},
		{"WaitRevisionMany", testWaitRevisionMany},
		{"TokensList", testTokensList},
		{"RevokeToken", testRevokeToken},
		{"PolicyAndTags", testPolicyAndTags},
		{"CAFirstWins", testCAFirstWins},
		{"Health", testHealth},
		{"FirstAdminTokenConcurrent", testFirstAdminToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			tc.fn(t, s)
		})
	}
}

// Key returns a distinct public key for i (not a real key pair: the store
// only ever sees public keys).
func Key(i int) wgkey.Key {
	var k wgkey.Key
	copy(k[:], fmt.Sprintf("host-%08d-wgnet-storetest-key", i))
	return k
}

func mustNetwork(t *testing.T, s store.Store, name, topology string, subnets ...string) store.Network {
	t.Helper()
	n := store.Network{Name: name, Topology: topology}
	for _, p := range subnets {
		n.Subnets = append(n.Subnets, netip.MustParsePrefix(p))
	}
	got, err := s.CreateNetwork(context.Background(), n)
	if err != nil {
		t.Fatalf("CreateNetwork(%s): %v", name, err)
	}
	return got
}

func testNetworks(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := mustNetwork(t, s, "b", "hub", "10.1.0.0/24", "fd01::/64")
	if n.Revision != 1 {
		t.Errorf("revision after create = %d, want 1", n.Revision)
	}
	mustNetwork(t, s, "a", "mesh", "10.2.0.0/24")
	if _, _, err := s.AddHost(ctx, "a", store.Host{Name: "x", PublicKey: Key(9), Hub: true}, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a hub in a mesh = %v, want ErrInvalid", err)
	}
	if _, err := s.CreateNetwork(ctx, store.Network{Name: "a", Topology: "mesh", Subnets: n.Subnets}); !errors.Is(err, store.ErrExists) {
		t.Errorf("second create = %v, want ErrExists", err)
	}
	if _, err := s.CreateNetwork(ctx, store.Network{Name: "c", Topology: "ring", Subnets: n.Subnets}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bad topology = %v, want ErrInvalid", err)
	}
	ns, err := s.Networks(ctx)
	if err != nil || len(ns) != 2 || ns[0].Name != "a" || ns[1].Name != "b" {
		t.Fatalf("Networks = %v, %v; want a, b", ns, err)
	}
	if len(ns[1].Subnets) != 2 || ns[1].Subnets[1] != netip.MustParsePrefix("fd01::/64") {
		t.Errorf("subnets = %v", ns[1].Subnets)
	}
	if _, _, err := s.AddHost(ctx, "a", store.Host{Name: "x", PublicKey: Key(1)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNetwork(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNetwork(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	if _, err := s.Network(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Network after delete = %v, want ErrNotFound", err)
	}
	// A new network of the same name starts afresh.
	mustNetwork(t, s, "a", "mesh", "10.2.0.0/24")
	if _, hs, err := s.Hosts(ctx, "a"); err != nil || len(hs) != 0 {
		t.Errorf("hosts of a re-created network = %v, %v", hs, err)
	}
}

func testHostLifecycle(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "hub", "10.1.0.0/24", "fd01::/64")
	h, rev, err := s.AddHost(ctx, "n", store.Host{Name: "hub1", PublicKey: Key(1), Endpoint: "192.0.2.1:51820"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd01::1")}
	if rev != 2 || fmt.Sprint(h.Addresses) != fmt.Sprint(want) {
		t.Errorf("AddHost = %v rev %d, want %v rev 2", h.Addresses, rev, want)
	}
	n, err := s.Network(ctx, "n")
	if err != nil || n.Hub != "hub1" {
		t.Errorf("first host of a hub network is the hub: hub = %q, %v", n.Hub, err)
	}
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "hub1", PublicKey: Key(2)}, nil); !errors.Is(err, store.ErrExists) {
		t.Errorf("same name = %v, want ErrExists", err)
	}
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "other", PublicKey: Key(1)}, nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("same key = %v, want ErrConflict", err)
	}
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "x", PublicKey: Key(3), Addresses: []netip.Addr{netip.MustParseAddr("10.1.0.1")}}, nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("taken address = %v, want ErrConflict", err)
	}
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "x", PublicKey: Key(3), Addresses: []netip.Addr{netip.MustParseAddr("10.1.0.0")}}, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("network address = %v, want ErrInvalid", err)
	}
	if _, _, err := s.AddHost(ctx, "m", store.Host{Name: "x", PublicKey: Key(3), Hub: true}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("add to a missing network = %v, want ErrNotFound", err)
	}
	if _, _, err := s.AddHost(ctx, "nope", store.Host{Name: "x", PublicKey: Key(3)}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no network = %v, want ErrNotFound", err)
	}
	routes := []netip.Prefix{netip.MustParsePrefix("172.20.0.0/16")}
	h2, _, err := s.AddHost(ctx, "n", store.Host{Name: "s2", PublicKey: Key(2), Routes: routes, Keepalive: 25}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h2.Addresses[0] != netip.MustParseAddr("10.1.0.2") {
		t.Errorf("second host address = %v", h2.Addresses)
	}
	ep := "198.51.100.2:51820"
	ka := 0
	r2 := netip.MustParsePrefix("172.21.0.0/16")
	got, rev, err := s.SetHost(ctx, "n", "s2", store.HostChanges{Endpoint: &ep, Keepalive: &ka,
		Addresses: []netip.Addr{netip.MustParseAddr("10.1.0.9")}, Routes: []netip.Prefix{r2, routes[0]}, RemoveRoutes: routes}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rev != 4 || got.Endpoint != ep || got.Keepalive != 0 || got.Addresses[0] != netip.MustParseAddr("10.1.0.9") ||
		got.Addresses[1] != netip.MustParseAddr("fd01::2") || len(got.Routes) != 1 || got.Routes[0] != r2 {
		t.Errorf("SetHost = %+v rev %d", got, rev)
	}
	if _, _, err := s.SetHost(ctx, "n", "s2", store.HostChanges{RemoveRoutes: routes}, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("removing a route the host lacks = %v, want ErrInvalid", err)
	}
	if h, _, err := s.SetHost(ctx, "n", "s2", store.HostChanges{Hub: true}, nil); err != nil || !h.Hub {
		t.Fatalf("SetHost hub: %+v, %v", h, err)
	}
	if _, err := s.RemoveHost(ctx, "n", "s2"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("removing the hub of a network with other hosts = %v, want ErrConflict", err)
	}
	if rev, err = s.RemoveHost(ctx, "n", "hub1"); err != nil || rev != 6 {
		t.Fatalf("RemoveHost = %d, %v; want 6", rev, err)
	}
	if _, err := s.RemoveHost(ctx, "n", "hub1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second remove = %v, want ErrNotFound", err)
	}
	// The freed address is reused, lowest first (ipam's rule).
	h3, _, err := s.AddHost(ctx, "n", store.Host{Name: "s3", PublicKey: Key(1)}, nil)
	if err != nil || h3.Addresses[0] != netip.MustParseAddr("10.1.0.1") {
		t.Errorf("reuse: %v, %v", h3.Addresses, err)
	}
	n, hs, err := s.Hosts(ctx, "n")
	if err != nil || n.Revision != 7 || len(hs) != 2 || hs[0].Name != "s2" || hs[1].Name != "s3" || hs[0].PublicKey != Key(2) ||
		!hs[0].Hub || hs[1].Hub {
		t.Errorf("Hosts = %+v %+v, %v", n, hs, err)
	}
}

func testDenseRevisions(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/16")
	mustNetwork(t, s, "m", "mesh", "10.1.0.0/16")
	const writers, each = 8, 10
	var wg sync.WaitGroup
	revs := make(chan uint64, writers*each)
	errs := make(chan error, writers*each*2)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				name := fmt.Sprintf("h%d-%d", w, i)
				_, rev, err := s.AddHost(ctx, "n", store.Host{Name: name, PublicKey: Key(w*1000 + i)}, nil)
				if err != nil {
					errs <- err
					continue
				}
				revs <- rev
				ka := i
				if _, _, err := s.SetHost(ctx, "m", "nope", store.HostChanges{Keepalive: &ka}, nil); !errors.Is(err, store.ErrNotFound) {
					errs <- fmt.Errorf("failed change on another network: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	close(revs)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[uint64]bool{}
	for r := range revs {
		if seen[r] {
			t.Errorf("revision %d given twice", r)
		}
		seen[r] = true
	}
	n, err := s.Network(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	if n.Revision != 1+writers*each {
		t.Errorf("revision = %d, want %d", n.Revision, 1+writers*each)
	}
	for r := uint64(2); r <= n.Revision; r++ {
		if !seen[r] {
			t.Errorf("revision %d missing: not dense", r)
		}
	}
	cs, err := s.Changes(ctx, "n", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if c.Revision != uint64(i+1) {
			t.Fatalf("change %d has revision %d: log not dense", i, c.Revision)
		}
	}
	if m, _ := s.Network(ctx, "m"); m.Revision != 1 {
		t.Errorf("a failed change moved the revision of m to %d", m.Revision)
	}
}

func testUniqueAddresses(t *testing.T, s store.Store) {
	ctx := context.Background()
	// A /27 holds 30 hosts: 40 concurrent adds fill it, and the rest fail cleanly.
	mustNetwork(t, s, "n", "mesh", "10.9.0.0/27", "fd09::/120")
	const adds = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for i := 0; i < adds; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.AddHost(ctx, "n", store.Host{Name: fmt.Sprintf("h%02d", i), PublicKey: Key(i)}, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrConflict):
				full++
			default:
				t.Errorf("add h%02d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if ok != 30 || full != 10 {
		t.Errorf("%d added, %d full; want 30 and 10", ok, full)
	}
	_, hs, err := s.Hosts(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]string{}
	for _, h := range hs {
		if len(h.Addresses) != 2 {
			t.Errorf("%s has addresses %v", h.Name, h.Addresses)
		}
		for _, a := range h.Addresses {
			if o, dup := seen[a]; dup {
				t.Errorf("%s given to %s and %s", a, o, h.Name)
			}
			seen[a] = h.Name
		}
	}
}

func testTokenSingleUse(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	h := store.HashToken("enroll-secret")
	if err := s.CreateToken(ctx, store.Token{Hash: h, Kind: store.EnrollToken, Network: "n", Uses: 1}); err != nil {
		t.Fatal(err)
	}
	const users = 100
	ok, used := oneWins(t, users, func(int) error {
		_, err := s.UseToken(ctx, h, time.Now())
		return err
	})
	if ok != 1 || used != users-1 {
		t.Errorf("%d uses succeeded, %d said used; want 1 and %d", ok, used, users-1)
	}
}

func testTokenExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	three := store.HashToken("three")
	old := store.HashToken("old")
	admin := store.HashToken("admin")
	for _, tk := range []store.Token{
		{Hash: three, Kind: store.EnrollToken, Network: "n", Host: "s1", Uses: 3},
		{Hash: old, Kind: store.EnrollToken, Network: "n", Uses: 1, Expires: now.Add(-time.Second)},
		{Hash: admin, Kind: store.AdminToken},
	} {
		if err := s.CreateToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateToken(ctx, store.Token{Hash: admin, Kind: store.AdminToken}); !errors.Is(err, store.ErrExists) {
		t.Errorf("same hash twice = %v, want ErrExists", err)
	}
	if err := s.CreateToken(ctx, store.Token{Hash: store.HashToken("x"), Kind: store.EnrollToken, Network: "nope", Uses: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token for a missing network = %v, want ErrNotFound", err)
	}
	for i := 0; i < 3; i++ {
		tk, err := s.UseToken(ctx, three, now)
		if err != nil || tk.Uses != 2-i || tk.Host != "s1" || tk.Network != "n" {
			t.Fatalf("use %d: %+v, %v", i, tk, err)
		}
	}
	if _, err := s.UseToken(ctx, three, now); !errors.Is(err, store.ErrTokenUsed) {
		t.Errorf("fourth use = %v, want ErrTokenUsed", err)
	}
	if _, err := s.UseToken(ctx, old, now); !errors.Is(err, store.ErrTokenExpired) {
		t.Errorf("expired = %v, want ErrTokenExpired", err)
	}
	if _, err := s.UseToken(ctx, admin, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an admin token used for enrollment = %v, want ErrNotFound", err)
	}
	if _, err := s.UseToken(ctx, store.HashToken("unknown"), now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown = %v, want ErrNotFound", err)
	}
	if tk, err := s.LookupToken(ctx, three); err != nil || tk.Uses != 0 || tk.Kind != store.EnrollToken || tk.Host != "s1" {
		t.Errorf("LookupToken(three) = %+v, %v", tk, err)
	}
	if tk, err := s.LookupToken(ctx, old); err != nil || !tk.Expires.Equal(now.Add(-time.Second)) {
		t.Errorf("LookupToken(old) = %+v, %v", tk, err)
	}
	if _, err := s.LookupToken(ctx, store.HashToken("unknown")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LookupToken(unknown) = %v, want ErrNotFound", err)
	}
	hs, err := s.AdminTokens(ctx)
	if err != nil || len(hs) != 1 || hs[0] != admin {
		t.Errorf("AdminTokens = %v, %v", hs, err)
	}
	if err := s.DeleteNetwork(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseToken(ctx, three, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token of a deleted network = %v, want ErrNotFound", err)
	}
}

func testChangesSince(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	for i := 0; i < 3; i++ {
		if _, _, err := s.AddHost(ctx, "n", store.Host{Name: fmt.Sprintf("h%d", i), PublicKey: Key(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ep := "192.0.2.7:51820"
	if _, _, err := s.SetHost(ctx, "n", "h1", store.HostChanges{Endpoint: &ep}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveHost(ctx, "n", "h0"); err != nil {
		t.Fatal(err)
	}
	type c struct {
		Rev  uint64
		Kind store.ChangeKind
		Host string
	}
	all := []c{{1, store.NetworkCreated, ""}, {2, store.HostAdded, "h0"}, {3, store.HostAdded, "h1"},
		{4, store.HostAdded, "h2"}, {5, store.HostChanged, "h1"}, {6, store.HostRemoved, "h0"}}
	for _, tc := range []struct {
		since uint64
		limit int
		want  []c
	}{{0, 0, all}, {3, 0, all[3:]}, {3, 2, all[3:5]}, {6, 0, nil}, {99, 0, nil}} {
		cs, err := s.Changes(ctx, "n", tc.since, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []c
		for _, x := range cs {
			if x.Time.IsZero() {
				t.Errorf("change %d has no time", x.Revision)
			}
			got = append(got, c{x.Revision, x.Kind, x.Host})
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Changes(since %d, limit %d) = %v, want %v", tc.since, tc.limit, got, tc.want)
		}
	}
	if _, err := s.Changes(ctx, "nope", 0, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Changes of a missing network = %v, want ErrNotFound", err)
	}
}

func testValidate(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "hub", "10.0.0.0/24")
	refuse := errors.New("refused")
	var seen []store.Host
	_, _, err := s.AddHost(ctx, "n", store.Host{Name: "a", PublicKey: Key(1)}, func(n store.Network, hs []store.Host) error {
		seen = hs
		if n.Hub != "a" {
			t.Errorf("validate sees hub %q, want a", n.Hub)
		}
		return refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("AddHost = %v, want the validator's error", err)
	}
	if len(seen) != 1 || len(seen[0].Addresses) != 1 {
		t.Errorf("validate saw %+v, want the new host with its allocated address", seen)
	}
	n, hs, err := s.Hosts(ctx, "n")
	if err != nil || n.Revision != 1 || len(hs) != 0 || n.Hub != "" {
		t.Errorf("a refused add left %+v %+v, %v", n, hs, err)
	}
}

// testEnrollConcurrent: 100 hosts enroll at once with one single-use token:
// exactly one is added, the others hear "used", and the token's use and the
// host commit together.
func testEnrollConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/16")
	h := store.HashToken("join")
	if err := s.CreateToken(ctx, store.Token{Hash: h, Kind: store.EnrollToken, Network: "n", Uses: 1}); err != nil {
		t.Fatal(err)
	}
	const users = 100
	ok, used := oneWins(t, users, func(i int) error {
		_, _, _, err := s.Enroll(ctx, h, time.Now(), store.Host{Name: fmt.Sprintf("h%03d", i), PublicKey: Key(i)}, nil, store.TokenHash{})
		return err
	})
	n, hs, err := s.Hosts(ctx, "n")
	if ok != 1 || used != users-1 || err != nil || len(hs) != 1 || n.Revision != 2 {
		t.Errorf("%d enrolled, %d told used, %d hosts at revision %d (%v); want 1, %d, 1 at 2", ok, used, len(hs), n.Revision, err, users-1)
	}
}

// testEnrollAtomic: a refused host does not use the token; a token bound to a
// host admits only that name; an admin token does not enroll.
func testEnrollAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	mustNetwork(t, s, "n", "hub", "10.0.0.0/24")
	one, bound, admin := store.HashToken("one"), store.HashToken("bound"), store.HashToken("admin")
	for _, tk := range []store.Token{
		{Hash: one, Kind: store.EnrollToken, Network: "n", Uses: 1},
		{Hash: bound, Kind: store.EnrollToken, Network: "n", Host: "s9", Uses: 5},
		{Hash: admin, Kind: store.AdminToken},
	} {
		if err := s.CreateToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	refuse := errors.New("refused")
	if _, _, _, err := s.Enroll(ctx, one, now, store.Host{Name: "a", PublicKey: Key(1)}, func(store.Network, []store.Host) error { return refuse }, store.TokenHash{}); !errors.Is(err, refuse) {
		t.Fatalf("refused enroll = %v", err)
	}
	tk, h, rev, err := s.Enroll(ctx, one, now, store.Host{Name: "a", PublicKey: Key(1), Hub: false}, nil, store.TokenHash{})
	if err != nil || tk.Network != "n" || tk.Uses != 0 || rev != 2 || !h.Hub || len(h.Addresses) != 1 {
		t.Fatalf("enroll after a refusal: %+v %+v %d, %v (the refusal must not use the token)", tk, h, rev, err)
	}
	if _, _, _, err := s.Enroll(ctx, bound, now, store.Host{Name: "b", PublicKey: Key(2)}, nil, store.TokenHash{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bound token, other name = %v, want ErrInvalid", err)
	}
	if _, h, _, err := s.Enroll(ctx, bound, now, store.Host{Name: "s9", PublicKey: Key(3), Hub: true}, nil, store.TokenHash{}); err != nil || h.Hub {
		t.Errorf("bound token, its name, asking to be hub: %+v, %v; want added, not the hub", h, err)
	}
	if _, _, _, err := s.Enroll(ctx, admin, now, store.Host{Name: "c", PublicKey: Key(4)}, nil, store.TokenHash{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("admin token = %v, want ErrNotFound", err)
	}
	tk, err = s.UseToken(ctx, bound, now)
	if err != nil || tk.Uses != 3 {
		t.Errorf("bound token after one enrollment and one refusal: %d uses left, %v; want 3", tk.Uses, err)
	}

	// Adoption: s9 is in the network now; a token bound to it admits it again
	// with its own key only, and adds nothing.
	_, before, err := s.Hosts(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Enroll(ctx, bound, now, store.Host{Name: "s9", PublicKey: Key(9)}, nil, store.TokenHash{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("adopting s9 with another key = %v, want ErrInvalid", err)
	}
	cred := store.HashToken("s9-credential")
	_, h, rev, err = s.Enroll(ctx, bound, now, store.Host{Name: "s9", PublicKey: Key(3)}, nil, cred)
	n, after, err2 := s.Hosts(ctx, "n")
	switch {
	case err != nil || err2 != nil:
		t.Fatalf("adopting s9 with its key: %v, %v", err, err2)
	case h.Name != "s9" || h.PublicKey != Key(3) || len(h.Addresses) != 1:
		t.Errorf("adopted host = %+v, want s9 as stored", h)
	case rev != n.Revision || len(after) != len(before):
		t.Errorf("adoption changed the network: revision %d (network at %d), %d hosts, had %d", rev, n.Revision, len(after), len(before))
	}
	if tk, err := s.LookupToken(ctx, cred); err != nil || tk.Kind != store.AgentToken || tk.Host != "s9" {
		t.Errorf("adopted host's credential = %+v, %v", tk, err)
	}
}

// oneWins runs use(0..n-1) at once and counts the successes and the
// ErrTokenUsed answers; any other error fails the test.
func oneWins(t *testing.T, n int, use func(i int) error) (ok, used int) {
	var wg sync.WaitGroup
	results := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- use(i)
		}()
	}
	wg.Wait()
	close(results)
	for err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrTokenUsed):
			used++
		default:
			t.Errorf("concurrent use: %v", err)
		}
	}
	return ok, used
}

// testAudit: every change writes who made it and when, with the revision, in
// its own transaction: a refused change writes nothing, and the log outlives
// the network.
func testAudit(t *testing.T, s store.Store) {
	admin := store.WithActor(context.Background(), "admin tok-aaaaaaaaaaaa")
	before := time.Now().Add(-time.Second)
	mustNetworkCtx(t, admin, s, "n", "hub")
	if _, _, err := s.AddHost(admin, "n", store.Host{Name: "a", PublicKey: Key(1)}, nil); err != nil {
		t.Fatal(err)
	}
	refuse := errors.New("refused")
	if _, _, err := s.AddHost(admin, "n", store.Host{Name: "b", PublicKey: Key(2)}, func(store.Network, []store.Host) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("refused add: %v", err)
	}
	ep := "192.0.2.1:51820"
	if _, _, err := s.SetHost(admin, "n", "a", store.HostChanges{Endpoint: &ep}, nil); err != nil {
		t.Fatal(err)
	}
	h := store.HashToken("join-audit")
	if err := s.CreateToken(admin, store.Token{Hash: h, Kind: store.EnrollToken, Network: "n", Uses: 1, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	joiner := store.WithActor(context.Background(), "enroll "+h.ID())
	if _, _, _, err := s.Enroll(joiner, h, time.Now(), store.Host{Name: "c", PublicKey: Key(3)}, nil, store.TokenHash{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveHost(admin, "n", "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNetwork(admin, "n"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Actor, Network string
		Revision       uint64
		Action         string
	}
	want := []row{
		{"admin tok-aaaaaaaaaaaa", "n", 1, "network-created"},
		{"admin tok-aaaaaaaaaaaa", "n", 2, "host-added"},
		{"admin tok-aaaaaaaaaaaa", "n", 3, "host-changed"},
		{"admin tok-aaaaaaaaaaaa", "n", 0, "token-created"},
		{"enroll " + h.ID(), "n", 4, "host-added"},
		{"enroll " + h.ID(), "n", 4, "host-enrolled"},
		{"admin tok-aaaaaaaaaaaa", "n", 5, "host-removed"},
		{"admin tok-aaaaaaaaaaaa", "n", 0, "network-deleted"},
	}
	if len(got) != len(want) {
		t.Fatalf("audit has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, e := range got {
		if r := (row{e.Actor, e.Network, e.Revision, e.Action}); r != want[i] {
			t.Errorf("audit[%d] = %+v, want %+v", i, r, want[i])
		}
		if e.Time.Before(before) || e.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("audit[%d] time %v", i, e.Time)
		}
		if i > 0 && e.Seq <= got[i-1].Seq {
			t.Errorf("audit seq not increasing: %d after %d", e.Seq, got[i-1].Seq)
		}
		if strings.Contains(e.Subject, "join-audit") || strings.Contains(e.Actor, "join-audit") {
			t.Errorf("audit[%d] holds the token's secret: %+v", i, e)
		}
	}
	if got[3].Subject != "enroll "+h.ID() {
		t.Errorf("token entry subject %q, want the token's kind and ID", got[3].Subject)
	}
	rest, err := s.Audit(context.Background(), got[5].Seq, 1)
	if err != nil || len(rest) != 1 || rest[0].Seq != got[6].Seq {
		t.Errorf("Audit(since %d, 1) = %+v, %v", got[5].Seq, rest, err)
	}
}

func mustNetworkCtx(t *testing.T, ctx context.Context, s store.Store, name, topology string) {
	t.Helper()
	if _, err := s.CreateNetwork(ctx, store.Network{Name: name, Topology: topology, Subnets: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/24")}}); err != nil {
		t.Fatal(err)
	}
}

// testStatus: agents' reports are stored in batches, for hosts that exist,
// newest wins, and they are not changes (no revision).
func testStatus(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	for i := range 3 {
		if _, _, err := s.AddHost(ctx, "n", store.Host{Name: fmt.Sprintf("h%d", i), PublicKey: Key(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.Network(ctx, "n"); n.Hosts != 3 {
		t.Errorf("network hosts = %d, want 3", n.Hosts)
	}
	if st, err := s.Status(ctx, "n"); err != nil || len(st) != 0 {
		t.Errorf("status before any report: %+v, %v", st, err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	report := func(host string, rev uint64, at time.Time) store.StatusReport {
		return store.StatusReport{Network: "n", Status: store.HostStatus{Host: host, Time: at, Revision: rev,
			Peers: []store.PeerStatus{{PublicKey: Key(9), Endpoint: "192.0.2.9:51820", LastHandshake: at.Add(-time.Minute), RxBytes: 10, TxBytes: 20}}}}
	}
	batch := []store.StatusReport{report("h0", 4, now), report("h1", 3, now), report("h2", 4, now), report("gone", 4, now)}
	// A peer whose endpoint host name never resolved on h2 (no endpoint then).
	unresolved := store.PeerStatus{PublicKey: Key(8), Unresolved: "h8.example.test", ResolveError: "no such host", UnresolvedSince: now.Add(-time.Hour)}
	batch[2].Status.Peers = append(batch[2].Status.Peers, unresolved)
	if k, err := s.ReportStatus(ctx, batch); err != nil || k != 3 {
		t.Fatalf("ReportStatus = %d, %v; want 3 stored (an unknown host skipped)", k, err)
	}
	// An older report of h0 does not replace the newer one; a newer h1 does.
	if k, err := s.ReportStatus(ctx, []store.StatusReport{report("h0", 2, now.Add(-time.Hour)), report("h1", 4, now.Add(time.Second))}); err != nil || k != 1 {
		t.Errorf("second batch = %d, %v; want 1 stored", k, err)
	}
	st, err := s.Status(ctx, "n")
	if err != nil || len(st) != 3 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if st[0].Host != "h0" || st[0].Revision != 4 || !st[0].Time.Equal(now) || st[1].Revision != 4 || len(st[2].Peers) != 2 {
		t.Fatalf("Status = %+v", st)
	}
	p := st[2].Peers[0]
	if p.PublicKey != Key(9) || p.Endpoint != "192.0.2.9:51820" || !p.LastHandshake.Equal(now.Add(-time.Minute)) || p.RxBytes != 10 || p.TxBytes != 20 || p.Unresolved != "" {
		t.Errorf("peer status = %+v", p)
	}
	if u := st[2].Peers[1]; u.PublicKey != Key(8) || u.Unresolved != unresolved.Unresolved || u.ResolveError != unresolved.ResolveError || !u.UnresolvedSince.Equal(unresolved.UnresolvedSince) {
		t.Errorf("unresolved peer status = %+v, want %+v", u, unresolved)
	}
	// Concurrent batches from several controllers all land.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ReportStatus(ctx, []store.StatusReport{report("h2", uint64(10+g), now.Add(time.Duration(g+2)*time.Second))}); err != nil {
				t.Errorf("concurrent ReportStatus: %v", err)
			}
		}()
	}
	wg.Wait()
	if st, _ := s.Status(ctx, "n"); len(st) != 3 || st[2].Revision != 17 {
		t.Errorf("after concurrent batches h2 = %+v, want the newest (revision 17)", st)
	}
	if n, _ := s.Network(ctx, "n"); n.Revision != 4 {
		t.Errorf("reports changed the revision: %d, want 4", n.Revision)
	}
	if _, err := s.RemoveHost(ctx, "n", "h1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Status(ctx, "n"); len(st) != 2 {
		t.Errorf("a removed host's status stays: %+v", st)
	}
	if n, _ := s.Network(ctx, "n"); n.Hosts != 2 {
		t.Errorf("network hosts after remove = %d, want 2", n.Hosts)
	}
	if _, err := s.Status(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Status(unknown network) = %v, want ErrNotFound", err)
	}
}

// testTokenRoutes: a token carries the routes its host may claim; Enroll
// admits routes inside them only.
func testTokenRoutes(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	h := store.HashToken("routes")
	allowed := []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16")}
	if err := s.CreateToken(ctx, store.Token{Hash: h, Kind: store.EnrollToken, Network: "n", Uses: 2, Routes: allowed}); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.LookupToken(ctx, h); err != nil || len(tok.Routes) != 1 || tok.Routes[0] != allowed[0] {
		t.Errorf("LookupToken = %+v, %v", tok, err)
	}
	def := store.Host{Name: "a", PublicKey: Key(1), Routes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}
	if _, _, _, err := s.Enroll(ctx, h, time.Now(), def, nil, store.TokenHash{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("enroll claiming a default route = %v, want ErrInvalid", err)
	}
	p := netip.MustParsePrefix
	asks := store.Host{Name: "a", PublicKey: Key(1), Routes: []netip.Prefix{p("172.18.5.0/24"), p("172.0.0.0/8"), p("10.9.0.0/24")}}
	_, got, _, err := s.Enroll(ctx, h, time.Now(), asks, nil, store.TokenHash{})
	if err != nil || fmt.Sprint(got.Routes) != "[172.18.5.0/24]" || fmt.Sprint(got.PendingRoutes) != "[172.0.0.0/8 10.9.0.0/24]" {
		t.Fatalf("enroll with one route inside the token's and two outside = %+v, %v; want one granted, two pending", got, err)
	}
	if tok, _ := s.LookupToken(ctx, h); tok.Uses != 1 {
		t.Errorf("uses left = %d, want 1 (the refused enrollment used none)", tok.Uses)
	}
	// An admin approves one pending route (adds it) and rejects the other (removes it).
	got, _, err = s.SetHost(ctx, "n", "a", store.HostChanges{Routes: []netip.Prefix{p("10.9.0.0/24")}}, nil)
	if err != nil || fmt.Sprint(got.Routes) != "[172.18.5.0/24 10.9.0.0/24]" || fmt.Sprint(got.PendingRoutes) != "[172.0.0.0/8]" {
		t.Errorf("approve 10.9.0.0/24 = %+v, %v", got, err)
	}
	got, _, err = s.SetHost(ctx, "n", "a", store.HostChanges{RemoveRoutes: []netip.Prefix{p("172.0.0.0/8")}}, nil)
	if err != nil || len(got.PendingRoutes) != 0 || len(got.Routes) != 2 {
		t.Errorf("reject 172.0.0.0/8 = %+v, %v", got, err)
	}
	if _, hs, err := s.Hosts(ctx, "n"); err != nil || len(hs) != 1 || len(hs[0].PendingRoutes) != 0 || len(hs[0].Routes) != 2 {
		t.Errorf("hosts after approval and rejection = %+v, %v", hs, err)
	}
}

// testAllocationLowestFree: an allocated address is always the lowest free one
// (ipam's rule), also after removals and address changes free lower ones.
func testAllocationLowestFree(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24", "fd00::/64")
	add := func(name string, key int, want ...string) {
		t.Helper()
		h, _, err := s.AddHost(ctx, "n", store.Host{Name: name, PublicKey: Key(key)}, nil)
		if err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
		if got := fmt.Sprint(h.Addresses); got != fmt.Sprint(addrs(want...)) {
			t.Errorf("add %s: addresses %s, want %v", name, got, want)
		}
	}
	add("a", 1, "10.0.0.1", "fd00::1")
	add("b", 2, "10.0.0.2", "fd00::2")
	add("c", 3, "10.0.0.3", "fd00::3")
	if _, err := s.RemoveHost(ctx, "n", "b"); err != nil {
		t.Fatal(err)
	}
	add("d", 4, "10.0.0.2", "fd00::2")
	if _, _, err := s.SetHost(ctx, "n", "a", store.HostChanges{Addresses: addrs("10.0.0.10")}, nil); err != nil {
		t.Fatal(err)
	}
	add("e", 5, "10.0.0.1", "fd00::4")
	add("f", 6, "10.0.0.4", "fd00::5")
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "g", PublicKey: Key(7), Addresses: addrs("10.0.0.5")}, nil); err != nil {
		t.Fatal(err)
	}
	add("h", 8, "10.0.0.6", "fd00::7")
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "i", PublicKey: Key(9), Addresses: addrs("10.0.0.6")}, nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("add with a taken address = %v, want ErrConflict", err)
	}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// testAgentCredential: Enroll stores the host's agent credential by its hash
// in the enrollment's transaction (a refused enrollment leaves none); it names
// its network and host, is not consumed, does not enroll, and goes with its
// host and with its network.
func testAgentCredential(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	join := store.HashToken("join")
	if err := s.CreateToken(ctx, store.Token{Hash: join, Kind: store.EnrollToken, Network: "n", Uses: 5}); err != nil {
		t.Fatal(err)
	}
	credA, credB, refused := store.HashToken("agent-a"), store.HashToken("agent-b"), store.HashToken("agent-refused")
	refuse := errors.New("refused")
	if _, _, _, err := s.Enroll(ctx, join, now, store.Host{Name: "x", PublicKey: Key(9)}, func(store.Network, []store.Host) error { return refuse }, refused); !errors.Is(err, refuse) {
		t.Fatalf("refused enroll = %v", err)
	}
	if _, err := s.LookupToken(ctx, refused); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused enrollment left its credential: %v", err)
	}
	if _, _, _, err := s.Enroll(ctx, join, now, store.Host{Name: "a", PublicKey: Key(1)}, nil, credA); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Enroll(ctx, join, now, store.Host{Name: "b", PublicKey: Key(2)}, nil, credB); err != nil {
		t.Fatal(err)
	}
	for range 2 { // looking it up does not consume it
		tk, err := s.LookupToken(ctx, credA)
		if err != nil || tk.Kind != store.AgentToken || tk.Network != "n" || tk.Host != "a" {
			t.Fatalf("agent credential of a = %+v, %v", tk, err)
		}
	}
	if _, _, _, err := s.Enroll(ctx, credA, now, store.Host{Name: "c", PublicKey: Key(3)}, nil, store.TokenHash{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("enroll with an agent credential = %v, want ErrNotFound", err)
	}
	if hs, err := s.AdminTokens(ctx); err != nil || slices.Contains(hs, credA) {
		t.Errorf("an agent credential is an admin token: %v, %v", hs, err)
	}
	// The same credential hash twice is refused, and the enrollment with it.
	if _, _, _, err := s.Enroll(ctx, join, now, store.Host{Name: "d", PublicKey: Key(4)}, nil, credA); err == nil {
		t.Error("a second host enrolled with the same credential hash")
	}
	if _, hs, _ := s.Hosts(ctx, "n"); len(hs) != 2 {
		t.Errorf("hosts = %d, want 2 (the refused enrollments added none)", len(hs))
	}
	if _, err := s.RemoveHost(ctx, "n", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupToken(ctx, credA); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("credential of a removed host = %v, want ErrNotFound", err)
	}
	if tk, err := s.LookupToken(ctx, credB); err != nil || tk.Host != "b" {
		t.Errorf("removing a took b's credential: %+v, %v", tk, err)
	}
	if err := s.DeleteNetwork(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupToken(ctx, credB); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("credential after the network's deletion = %v, want ErrNotFound", err)
	}
}

// waitBound bounds every wait of the WaitRevision tests: a wake-up that does
// not come within it is a failure, however slow the machine (a poll of
// another process's changes takes about a second).
const waitBound = 20 * time.Second

type waited struct {
	rev uint64
	err error
}

func waitAsync(ctx context.Context, s store.Store, network string, after uint64) <-chan waited {
	ch := make(chan waited, 1)
	go func() {
		rev, err := s.WaitRevision(ctx, network, after)
		ch <- waited{rev, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan waited, what string) waited {
	t.Helper()
	select {
	case w := <-ch:
		return w
	case <-time.After(waitBound):
		t.Fatalf("%s: WaitRevision did not return within %s", what, waitBound)
	}
	return waited{}
}

// testWaitRevision: WaitRevision answers at once when the revision is past
// after, wakes on a change, stops with its context, and says ErrNotFound for
// an unknown network and for one deleted while it waits.
func testWaitRevision(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	if rev, err := s.WaitRevision(ctx, "n", 0); err != nil || rev != 1 {
		t.Errorf("WaitRevision(after 0) = %d, %v; want 1 at once", rev, err)
	}
	if _, err := s.WaitRevision(ctx, "nope", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("WaitRevision(unknown) = %v, want ErrNotFound", err)
	}
	ch := waitAsync(ctx, s, "n", 1)
	select {
	case w := <-ch:
		t.Fatalf("WaitRevision(after 1) returned %+v before any change", w)
	case <-time.After(100 * time.Millisecond):
	}
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "a", PublicKey: Key(1)}, nil); err != nil {
		t.Fatal(err)
	}
	if w := receive(t, ch, "after an add"); w.err != nil || w.rev != 2 {
		t.Errorf("WaitRevision after an add = %+v, want revision 2", w)
	}
	// A refused change commits nothing and wakes nobody for good.
	ch = waitAsync(ctx, s, "n", 2)
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "a", PublicKey: Key(2)}, nil); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second a = %v", err)
	}
	select {
	case w := <-ch:
		t.Fatalf("WaitRevision returned %+v after a refused change", w)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := s.RemoveHost(ctx, "n", "a"); err != nil {
		t.Fatal(err)
	}
	if w := receive(t, ch, "after a removal"); w.err != nil || w.rev != 3 {
		t.Errorf("WaitRevision after a removal = %+v, want 3", w)
	}
	cctx, cancel := context.WithCancel(ctx)
	ch = waitAsync(cctx, s, "n", 3)
	cancel()
	if w := receive(t, ch, "cancelled"); !errors.Is(w.err, context.Canceled) {
		t.Errorf("cancelled WaitRevision = %+v, want context.Canceled", w)
	}
	ch = waitAsync(ctx, s, "n", 3)
	time.Sleep(50 * time.Millisecond)
	if err := s.DeleteNetwork(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if w := receive(t, ch, "network deleted"); !errors.Is(w.err, store.ErrNotFound) {
		t.Errorf("WaitRevision on a deleted network = %+v, want ErrNotFound", w)
	}
}

// testWaitRevisionMany: 200 waiters (agents' long polls) on one network, and
// one on another, all wake on the change of theirs and no other.
func testWaitRevisionMany(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	mustNetwork(t, s, "other", "mesh", "10.1.0.0/24")
	var chs []<-chan waited
	for range 200 {
		chs = append(chs, waitAsync(ctx, s, "n", 1))
	}
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	other := waitAsync(octx, s, "other", 1)
	time.Sleep(100 * time.Millisecond)
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "a", PublicKey: Key(1)}, nil); err != nil {
		t.Fatal(err)
	}
	for i, ch := range chs {
		if w := receive(t, ch, fmt.Sprintf("waiter %d", i)); w.err != nil || w.rev != 2 {
			t.Fatalf("waiter %d = %+v, want revision 2", i, w)
		}
	}
	select {
	case w := <-other:
		t.Errorf("a waiter on another network woke: %+v", w)
	case <-time.After(100 * time.Millisecond):
	}
}

// testTokensList: Tokens returns every token as stored, sorted by hash.
func testTokensList(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	exp := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	want := []store.Token{
		{Hash: store.HashToken("a"), Kind: store.AdminToken},
		{Hash: store.HashToken("b"), Kind: store.EnrollToken, Network: "n", Host: "x", Uses: 3, Expires: exp,
			Routes: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}},
		{Hash: store.HashToken("c"), Kind: store.EnrollToken, Network: "n", Uses: 1},
	}
	for _, tok := range want {
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(want, func(a, b store.Token) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
	got, err := s.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Tokens =\n%v\nwant\n%v", got, want)
	}
}

// testCAFirstWins: several controllers storing their CA at once all end up
// with the first one stored.
func testCAFirstWins(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.CA(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CA of a new store = %v, want ErrNotFound", err)
	}
	const n = 8
	got := make([]store.StoredCA, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ca, err := s.PutCA(ctx, store.StoredCA{CertPEM: []byte(fmt.Sprintf("cert %d", i)), SealedKey: []byte{byte(i), 0, 1}})
			if err != nil {
				t.Error(err)
			}
			got[i] = ca
		}()
	}
	wg.Wait()
	stored, err := s.CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(stored.CertPEM), "cert ") || len(stored.SealedKey) != 3 {
		t.Fatalf("stored CA = %q %v", stored.CertPEM, stored.SealedKey)
	}
	for i, ca := range got {
		if !bytes.Equal(ca.CertPEM, stored.CertPEM) || !bytes.Equal(ca.SealedKey, stored.SealedKey) {
			t.Errorf("PutCA %d returned %q, the store has %q", i, ca.CertPEM, stored.CertPEM)
		}
	}
}

func testHealth(t *testing.T, s store.Store) {
	h, err := s.Health(context.Background())
	if err != nil || !h.Current || h.Schema != h.Code || h.Code < 1 || h.Backend == "" {
		t.Errorf("Health = %+v, %v; want a current schema", h, err)
	}
}

// testRevokeToken: an enrollment or admin token is revoked (gone, audited),
// an agent credential or an unknown hash is ErrNotFound, and the last admin
// token is never revoked, also when two revocations race for the last two.
func testRevokeToken(t *testing.T, s store.Store) {
	ctx := store.WithActor(context.Background(), "storetest")
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	a1, a2, a3, join := store.HashToken("a1"), store.HashToken("a2"), store.HashToken("a3"), store.HashToken("join")
	for _, tk := range []store.Token{
		{Hash: a1, Kind: store.AdminToken}, {Hash: a2, Kind: store.AdminToken}, {Hash: a3, Kind: store.AdminToken},
		{Hash: join, Kind: store.EnrollToken, Network: "n", Uses: 2},
	} {
		if err := s.CreateToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	cred := store.HashToken("cred")
	if _, _, _, err := s.Enroll(ctx, join, time.Now(), store.Host{Name: "h", PublicKey: Key(1)}, nil, cred); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, join); err != nil {
		t.Fatalf("revoke a join token: %v", err)
	}
	if _, err := s.LookupToken(ctx, join); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoked join token: LookupToken = %v, want ErrNotFound", err)
	}
	for _, h := range []store.TokenHash{join, cred, store.HashToken("unknown")} {
		if err := s.RevokeToken(ctx, h); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoke %s = %v, want ErrNotFound", h.ID(), err)
		}
	}
	if err := s.RevokeToken(ctx, a1); err != nil {
		t.Fatalf("revoke one of three admin tokens: %v", err)
	}
	// a2 and a3 at once: one may go, the other is the last.
	errs := make(chan error, 2)
	for _, h := range []store.TokenHash{a2, a3} {
		go func() { errs <- s.RevokeToken(ctx, h) }()
	}
	var ok, last int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrInvalid):
			last++
		default:
			t.Errorf("racing revocations: %v", err)
		}
	}
	hs, err := s.AdminTokens(ctx)
	if ok != 1 || last != 1 || err != nil || len(hs) != 1 {
		t.Errorf("two revocations of the last two admin tokens: %d done, %d refused as the last; %d admin tokens left (%v)", ok, last, len(hs), err)
	}
	entries, err := s.Audit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, e := range entries {
		if e.Action == store.TokenRevoked && e.Actor == "storetest" {
			revoked++
		}
	}
	if revoked != 3 {
		t.Errorf("%d token-revoked audit entries, want 3", revoked)
	}
}

// testPolicyAndTags: a policy change is a change (revision, log), guarded by
// the revision its editor read (of ten racing editors exactly one wins); host
// tags are stored sorted and once, and edited in the writing transaction.
func testPolicyAndTags(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.0.0.0/24")
	if _, err := s.SetPolicy(ctx, "nope", []byte("x"), 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetPolicy of a missing network = %v", err)
	}
	rev, err := s.SetPolicy(ctx, "n", []byte(`{"default":"deny"}`), 1)
	if err != nil || rev != 2 {
		t.Fatalf("SetPolicy at revision 1 = %d, %v", rev, err)
	}
	if _, err := s.SetPolicy(ctx, "n", []byte("stale"), 1); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SetPolicy of a stale editor = %v, want ErrConflict", err)
	}
	n, err := s.Network(ctx, "n")
	if err != nil || string(n.Policy) != `{"default":"deny"}` || n.Revision != 2 {
		t.Errorf("Network after SetPolicy = %+v, %v", n, err)
	}
	cs, err := s.Changes(ctx, "n", 1, 0)
	if err != nil || len(cs) != 1 || cs[0].Kind != store.PolicyChanged {
		t.Errorf("changes after SetPolicy = %+v, %v", cs, err)
	}
	results := make(chan error, 10)
	for i := range 10 {
		go func() {
			_, err := s.SetPolicy(ctx, "n", []byte(fmt.Sprintf(`{"editor":%d}`, i)), 2)
			results <- err
		}()
	}
	won := 0
	for range 10 {
		switch err := <-results; {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("racing SetPolicy: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of 10 editors who read revision 2 wrote the policy, want 1", won)
	}
	if _, err := s.SetPolicy(ctx, "n", nil, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Network(ctx, "n"); err != nil || len(n.Policy) != 0 {
		t.Errorf("policy after clearing = %q, %v", n.Policy, err)
	}

	h, _, err := s.AddHost(ctx, "n", store.Host{Name: "a", PublicKey: Key(1), Tags: []string{"web", "b", "web"}}, nil)
	if err != nil || !slices.Equal(h.Tags, []string{"b", "web"}) {
		t.Errorf("AddHost with tags = %v, %v", h.Tags, err)
	}
	h, _, err = s.SetHost(ctx, "n", "a", store.HostChanges{AddTags: []string{"db"}, RemoveTags: []string{"b", "never"}}, nil)
	if err != nil || !slices.Equal(h.Tags, []string{"db", "web"}) {
		t.Errorf("SetHost tags = %v, %v", h.Tags, err)
	}
	_, hs, err := s.Hosts(ctx, "n")
	if err != nil || len(hs) != 1 || !slices.Equal(hs[0].Tags, []string{"db", "web"}) {
		t.Errorf("Hosts after tag edits = %+v, %v", hs, err)
	}
}

// testFirstAdminToken: of eight controllers starting at once on an empty
// store, exactly one stores the admin token.
func testFirstAdminToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 8
	var made sync.WaitGroup
	created := make(chan store.TokenHash, n)
	for i := range n {
		made.Add(1)
		go func() {
			defer made.Done()
			h := store.HashToken(fmt.Sprintf("admin-%d", i))
			ok, err := s.FirstAdminToken(ctx, h)
			if err != nil {
				t.Error(err)
			}
			if ok {
				created <- h
			}
		}()
	}
	made.Wait()
	close(created)
	var got []store.TokenHash
	for h := range created {
		got = append(got, h)
	}
	hs, err := s.AdminTokens(ctx)
	if err != nil || len(got) != 1 || len(hs) != 1 || hs[0] != got[0] {
		t.Errorf("%d controllers said they made the admin token; the store has %d (%v)", len(got), len(hs), err)
	}
	if ok, err := s.FirstAdminToken(ctx, store.HashToken("later")); ok || err != nil {
		t.Errorf("FirstAdminToken with one stored = %v, %v; want false", ok, err)
	}
}
