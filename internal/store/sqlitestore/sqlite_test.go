package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
	"github.com/wgnet/wgnet/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "wgnet.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestReopen checks that what was committed is there after the file is opened again.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wgnet.db")
	s, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNetwork(ctx, store.Network{Name: "n", Topology: "mesh", Subnets: nil}); err == nil {
		t.Fatal("a network without subnets was accepted")
	}
	n := store.Network{Name: "n", Topology: "mesh"}
	n.Subnets = append(n.Subnets, mustPrefix("10.0.0.0/24"))
	if _, err := s.CreateNetwork(ctx, n); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "a", PublicKey: storetest.Key(1)}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, hs, err := s.Hosts(ctx, "n")
	if err != nil || got.Revision != 2 || len(hs) != 1 || hs[0].PublicKey != storetest.Key(1) {
		t.Errorf("after reopen: %+v %+v, %v", got, hs, err)
	}
}

// schemaV1 is the schema of the first controller slice, for TestMigrateV1.
const schemaV1 = `
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS networks (
	name     TEXT PRIMARY KEY,
	subnets  TEXT NOT NULL,
	topology TEXT NOT NULL,
	hub      TEXT NOT NULL DEFAULT '',
	revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hosts (
	network    TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	public_key TEXT NOT NULL,
	endpoint   TEXT NOT NULL,
	routes     TEXT NOT NULL,
	keepalive  INTEGER NOT NULL,
	PRIMARY KEY (network, name),
	UNIQUE (network, public_key)
);
CREATE TABLE IF NOT EXISTS addresses (
	network TEXT NOT NULL,
	addr    TEXT NOT NULL,
	host    TEXT NOT NULL,
	PRIMARY KEY (network, addr),
	FOREIGN KEY (network, host) REFERENCES hosts(network, name) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS changes (
	network  TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
	revision INTEGER NOT NULL,
	kind     TEXT NOT NULL,
	host     TEXT NOT NULL,
	time     INTEGER NOT NULL,
	PRIMARY KEY (network, revision)
);
CREATE TABLE IF NOT EXISTS tokens (
	hash    BLOB PRIMARY KEY,
	kind    TEXT NOT NULL,
	network TEXT NOT NULL,
	host    TEXT NOT NULL,
	uses    INTEGER NOT NULL,
	expires INTEGER NOT NULL
);
`

// TestMigrateV1 opens a database of schema version 1: the migration adds the
// token routes and host counts (counted from the hosts there) and the audit
// and status tables, and the store works on it.
func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wgnet.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{schemaV1, `INSERT INTO schema_version VALUES (1)`,
		`INSERT INTO networks VALUES ('n', '10.0.0.0/24', 'mesh', '', 2)`,
		`INSERT INTO hosts VALUES ('n', 'a', '` + storetest.Key(1).String() + `', '', '', 0)`,
		`INSERT INTO addresses VALUES ('n', '10.0.0.1', 'a')`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Network(ctx, "n"); err != nil || n.Hosts != 1 || n.Revision != 2 {
		t.Errorf("migrated network = %+v, %v", n, err)
	}
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "A", PublicKey: storetest.Key(2)}, nil); !errors.Is(err, store.ErrExists) {
		t.Errorf("AddHost A next to a = %v, want ErrExists", err)
	}
	h, rev, err := s.AddHost(ctx, "n", store.Host{Name: "b", PublicKey: storetest.Key(2)}, nil)
	if err != nil || rev != 3 || h.Addresses[0] != netip.MustParseAddr("10.0.0.2") {
		t.Errorf("AddHost after migration = %+v, %d, %v", h, rev, err)
	}
	if es, err := s.Audit(ctx, 0, 0); err != nil || len(es) != 1 {
		t.Errorf("audit after migration = %+v, %v", es, err)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestConformanceTwoHandles runs the suite on two handles of one file, each
// call going to the next: two processes on one database, whose writers meet
// at SQLite's lock (BEGIN IMMEDIATE, busy timeout) rather than in one pool.
func TestConformanceTwoHandles(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "wgnet.db")
		var ss []store.Store
		for range 2 {
			s, err := sqlitestore.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			ss = append(ss, s)
		}
		return storetest.Spread(ss...)
	})
}
