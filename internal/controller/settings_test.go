package controller_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/pgtest"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/store/pgstore"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
	"github.com/wgnet/wgnet/internal/store/storetest"
)

// settingsNet is a hub network "n" on st, served by a controller without TLS.
type settingsNet struct {
	t     *testing.T
	st    store.Store
	srv   http.Handler
	admin string
}

func newSettingsNet(t *testing.T, st store.Store, create bool) *settingsNet {
	t.Helper()
	tok, err := controller.EnsureAdminToken(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if tok == "" { // the store had one: make another to call with
		tok = "wgnet-admin-settings-test"
		if err := st.CreateToken(context.Background(), store.Token{Hash: store.HashToken(tok), Kind: store.AdminToken}); err != nil {
			t.Fatal(err)
		}
	}
	n := &settingsNet{t: t, st: st, srv: controller.New(st, controller.Config{URLs: []string{"https://ctl.test:7443"}}), admin: tok}
	if create {
		n.must("POST", "/v1/networks", api.CreateNetwork{Name: "n", Topology: "hub", Subnets: []string{"10.60.0.0/24", "fd60::/64"}}, 201)
	}
	return n
}

// newSQLiteSettingsNet is newSettingsNet with its fleet on a new SQLite store.
func newSQLiteSettingsNet(t *testing.T) (store.Store, *settingsNet) {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "wgnet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n := newSettingsNet(t, st, true)
	n.fleet()
	return st, n
}

// must calls the API and wants status code; it returns the body.
func (n *settingsNet) must(method, path string, in any, code int) []byte {
	n.t.Helper()
	got, b := call(n.t, n.srv, method, path, n.admin, "", in)
	if got != code {
		n.t.Fatalf("%s %s: %d %s, want %d", method, path, got, b, code)
	}
	return b
}

// configs renders every host's wg-quick config through the API.
func (n *settingsNet) configs() map[string]string {
	n.t.Helper()
	var hs api.Hosts
	if err := json.Unmarshal(n.must("GET", "/v1/networks/n/hosts", nil, 200), &hs); err != nil {
		n.t.Fatal(err)
	}
	out := map[string]string{}
	for _, h := range hs.Hosts {
		if h.External {
			continue
		}
		var c api.Config
		if err := json.Unmarshal(n.must("GET", "/v1/networks/n/hosts/"+h.Name+"/config", nil, 200), &c); err != nil {
			n.t.Fatal(err)
		}
		out[h.Name] = c.WgQuick
	}
	return out
}

// fleet adds hosts without settings: a hub with a routed subnet, spokes
// with and without endpoints and keepalives, one with tags.
func (n *settingsNet) fleet() {
	n.t.Helper()
	n.must("POST", "/v1/networks/n/hosts", api.Host{Name: "hub", PublicKey: storetest.Key(1).String(), Endpoint: "198.18.60.1:51820", Routes: []string{"172.31.60.0/24"}}, 201)
	n.must("POST", "/v1/networks/n/hosts", api.Host{Name: "s1", PublicKey: storetest.Key(2).String(), Endpoint: "198.18.60.2:51820"}, 201)
	n.must("POST", "/v1/networks/n/hosts", api.Host{Name: "s2", PublicKey: storetest.Key(3).String(), Keepalive: 25, Tags: []string{"db"}}, 201)
}

// TestHostSettings: a host's own settings go through the API and the store
// into the spec the controller compiles: the rendered config has them as
// the same spec would (MTU, DNS, Table, FwMark, an address's own prefix
// length, no Address, no ListenPort, the hub's /0 for a full tunnel), list
// shows them, set changes and removes them, bad values are refused with the
// spec's words (spec validation of the network as it would be), and a
// joining host can't set them.
func TestHostSettings(t *testing.T) {
	st, n := newSQLiteSettingsNet(t)
	n.must("PATCH", "/v1/networks/n/hosts/s2", api.SetHost{Addresses: []string{"10.60.0.9/32"}, MTU: ptr("1380"), DNS: &[]string{"10.60.0.1", "corp.example"},
		Table: ptr("off"), FwMark: ptr(uint32(1<<32 - 1)), FullTunnel: &[]string{"0.0.0.0/0"}, RandomPort: ptr(true)}, 200)
	n.must("POST", "/v1/networks/n/hosts", api.Host{Name: "vpn", PublicKey: storetest.Key(4).String(), Endpoint: "198.18.60.4:51820",
		Settings: api.Settings{External: true}}, 201)
	n.must("POST", "/v1/networks/n/hosts", api.Host{Name: "s3", PublicKey: storetest.Key(5).String(), Settings: api.Settings{MTU: "auto", NoAddress: true}}, 201)
	cs := n.configs()
	if _, ok := cs["vpn"]; ok {
		t.Error("an external host got a config")
	}
	for host, want := range map[string][]string{
		"s2":  {"Address = 10.60.0.9/32, fd60::3/64", "MTU = 1380", "DNS = 10.60.0.1, corp.example", "Table = off", "FwMark = 0xffffffff", "AllowedIPs = 0.0.0.0/0"},
		"s3":  {"[Interface]"},
		"hub": {"# vpn", "AllowedIPs = 10.60.0.4/32"},
	} {
		for _, w := range want {
			if !strings.Contains(cs[host], w) {
				t.Errorf("%s's config lacks %q:\n%s", host, w, cs[host])
			}
		}
	}
	for host, not := range map[string][]string{"s2": {"ListenPort"}, "s3": {"Address", "MTU"}} {
		for _, w := range not {
			if strings.Contains(cs[host], w+" =") {
				t.Errorf("%s's config has %s:\n%s", host, w, cs[host])
			}
		}
	}
	var hs api.Hosts
	json.Unmarshal(n.must("GET", "/v1/networks/n/hosts", nil, 200), &hs)
	got := map[string]api.Host{}
	for _, h := range hs.Hosts {
		got[h.Name] = h
	}
	wantS2 := api.Settings{MTU: "1380", DNS: []string{"10.60.0.1", "corp.example"}, Table: "off", FwMark: 1<<32 - 1, FullTunnel: []string{"0.0.0.0/0"}, RandomPort: true}
	if !reflect.DeepEqual(got["s2"].Settings, wantS2) || got["s2"].Addresses[0] != "10.60.0.9/32" || !got["vpn"].External || got["s3"].MTU != "auto" || !got["s3"].NoAddress {
		t.Errorf("listed: s2 %+v, vpn %+v, s3 %+v", got["s2"], got["vpn"], got["s3"])
	}

	// Removed again: s2 compiles as it did before it had any.
	n.must("PATCH", "/v1/networks/n/hosts/s2", api.SetHost{Addresses: []string{"10.60.0.9"}, MTU: ptr(""), DNS: &[]string{}, Table: ptr(""), FwMark: ptr(uint32(0)),
		FullTunnel: &[]string{}, RandomPort: ptr(false)}, 200)
	after := n.configs()["s2"]
	for _, w := range []string{"MTU = 1380", "DNS", "Table", "FwMark"} {
		if strings.Contains(after, w) {
			t.Errorf("s2 after its settings were removed has %s:\n%s", w, after)
		}
	}
	if !strings.Contains(after, "Address = 10.60.0.9/24") || strings.Contains(after, "0.0.0.0/0") {
		t.Errorf("s2 after its settings were removed:\n%s", after)
	}

	// Refused with the spec's words, nothing stored.
	for _, c := range []struct {
		body any
		want string
	}{
		{api.SetHost{MTU: ptr("abc")}, `mtu "abc": must be a number (576-9216) or auto`},
		{api.SetHost{MTU: ptr("100")}, "mtu 100: must be 576-9216, or auto"},
		{api.SetHost{Table: ptr("bad table")}, `table "bad table": must be off, auto, main, a table number or a name from rt_tables`},
		{api.SetHost{DNS: &[]string{"a b"}}, `dns[0] "a b": must be an IP address (a resolver) or a domain name (a search domain)`},
		{api.SetHost{FullTunnel: &[]string{"10.0.0.0/8"}}, `full_tunnel[0] "10.0.0.0/8": must be a default route`},
		{api.SetHost{Endpoint: ptr("198.18.60.3:51820"), RandomPort: ptr(true)}, `listen_port "random": the others dial s2 at its endpoint 198.18.60.3:51820, so it needs a fixed port`},
	} {
		code, b := call(t, n.srv, "PATCH", "/v1/networks/n/hosts/s2", n.admin, "", c.body)
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if code != 400 || !strings.Contains(e.Error, c.want) {
			t.Errorf("PATCH %+v: %d %s; want 400 saying %q", c.body, code, b, c.want)
		}
	}
	if code, b := call(t, n.srv, "PATCH", "/v1/networks/n/hosts/hub", n.admin, "", api.SetHost{FullTunnel: &[]string{"0.0.0.0/0"}}); code != 400 ||
		!strings.Contains(string(b), "only a spoke of a hub network sends all its traffic through the hub") {
		t.Errorf("full tunnel on the hub: %d %s", code, b)
	}

	// A joining host sets none of them.
	if err := st.CreateToken(context.Background(), store.Token{Hash: store.HashToken("join"), Kind: store.EnrollToken, Network: "n", Uses: 1}); err != nil {
		t.Fatal(err)
	}
	if code, b := call(t, n.srv, "POST", "/v1/enroll", "join", "", api.Host{Name: "s9", PublicKey: storetest.Key(9).String(), Settings: api.Settings{DNS: []string{"10.60.0.1"}}}); code != 400 ||
		!strings.Contains(string(b), "an admin does") {
		t.Errorf("enroll with DNS: %d %s", code, b)
	}
}

// TestAgentStateSettings: the agent of a host with DNS, a table or a
// firewall mark gets them in its state (so that it can refuse them; a
// full tunnel is the hub's /0 among its peers), an MTU of its own as
// before, and no address when another assigns it.
func TestAgentStateSettings(t *testing.T) {
	st, n := newSQLiteSettingsNet(t)
	cred := api.AgentCredentialPrefix + "settings-s3"
	if err := st.CreateToken(context.Background(), store.Token{Hash: store.HashToken("join"), Kind: store.EnrollToken, Network: "n", Uses: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := st.Enroll(context.Background(), store.HashToken("join"), time.Now(), store.Host{Name: "s3", PublicKey: storetest.Key(7)}, nil, store.HashToken(cred)); err != nil {
		t.Fatal(err)
	}
	state := func() api.AgentState {
		t.Helper()
		code, b := call(t, n.srv, "GET", "/v1/agent/state", cred, "", nil)
		var s api.AgentState
		if code != 200 || json.Unmarshal(b, &s) != nil {
			t.Fatalf("state: %d %s", code, b)
		}
		return s
	}
	if s := state(); s.DNS != nil || s.Table != "" || s.FwMark != 0 || s.MTU != 1420 || len(s.Addresses) != 2 {
		t.Errorf("state without settings: %+v", s)
	}
	n.must("PATCH", "/v1/networks/n/hosts/s3", api.SetHost{MTU: ptr("1300"), DNS: &[]string{"10.60.0.1"}, Table: ptr("1234"), FwMark: ptr(uint32(0x51)),
		FullTunnel: &[]string{"0.0.0.0/0"}, NoAddress: ptr(true)}, 200)
	s := state()
	hubAllowed := ""
	for _, p := range s.Peers {
		if p.Name == "hub" {
			hubAllowed = strings.Join(p.AllowedIPs, ",")
		}
	}
	if !reflect.DeepEqual(s.DNS, []string{"10.60.0.1"}) || s.Table != "1234" || s.FwMark != 0x51 || s.MTU != 1300 || len(s.Addresses) != 0 ||
		!strings.Contains(hubAllowed, "0.0.0.0/0") {
		t.Errorf("state with settings: %+v (hub peer %s)", s, hubAllowed)
	}
}

// TestMigratedCompilesAsBefore: a database of the schema before a host's
// settings were kept (SQLite 5, PostgreSQL 4), holding a network, is
// migrated when opened, and every host's config compiles byte for byte as
// it did before the migration.
func TestMigratedCompilesAsBefore(t *testing.T) {
	settingsCols := strings.Split(store.SettingsColumns, ", ")
	t.Run("sqlite", func(t *testing.T) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "wgnet.db")
		st, err := sqlitestore.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		n := newSettingsNet(t, st, true)
		n.fleet()
		before := n.configs()
		st.Close()
		// Back to schema 5: without the columns of 6.
		db, err := sqlOpen(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range settingsCols {
			if _, err := db.ExecContext(ctx, `ALTER TABLE hosts DROP COLUMN `+c); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, `UPDATE schema_version SET version = 5`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		st, err = sqlitestore.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if h, err := st.Health(ctx); err != nil || h.Schema != 6 || !h.Current {
			t.Fatalf("after migration: %+v, %v", h, err)
		}
		sameConfigs(t, before, newSettingsNet(t, st, false).configs())
	})
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		srv := pgtest.Start(t)
		url := srv.URL(srv.NewDatabase(t))
		st, err := pgstore.Open(ctx, url, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n := newSettingsNet(t, st, true)
		n.fleet()
		before := n.configs()
		st.Close()
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		q := `DELETE FROM schema_version WHERE version = 4`
		for _, c := range settingsCols {
			q += `; ALTER TABLE hosts DROP COLUMN ` + c
		}
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
		pool.Close()
		st, err = pgstore.Open(ctx, url, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if st.Migrated != 1 {
			t.Errorf("%d migrations applied, want 1 (version 4)", st.Migrated)
		}
		sameConfigs(t, before, newSettingsNet(t, st, false).configs())
	})
}

func sameConfigs(t *testing.T, before, after map[string]string) {
	t.Helper()
	if len(before) != 3 || !reflect.DeepEqual(before, after) {
		for h := range before {
			if before[h] != after[h] {
				t.Errorf("%s before the migration:\n%s\nafter:\n%s", h, before[h], after[h])
			}
		}
		t.Fatalf("configs of %d hosts before, %d after", len(before), len(after))
	}
	t.Logf("%d configs, %d bytes, the same after the migration", len(before), len(fmt.Sprint(before)))
}

func ptr[T any](v T) *T { return &v }

func sqlOpen(path string) (*sql.DB, error) { return sql.Open("sqlite", path) }
