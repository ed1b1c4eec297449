package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wgnet/wgnet/internal/pgtest"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/store/pgstore"
	"github.com/wgnet/wgnet/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens a store on a new database of the shared test server.
func open(t *testing.T) (*pgstore.Store, string) {
	t.Helper()
	srv := pgtest.Shared(t)
	url := srv.URL(srv.NewDatabase(t))
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, url
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := open(t)
		return s
	})
}

// TestConformanceThreeControllers runs the suite with each call going to the
// next of three stores (pools) on one database: three controllers.
func TestConformanceThreeControllers(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		a, url := open(t)
		ss := []store.Store{a}
		for range 2 {
			s, err := pgstore.Open(context.Background(), url, pgstore.Options{MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			ss = append(ss, s)
		}
		return storetest.Spread(ss...)
	})
}

// TestMigrateConcurrently starts eight controllers on a new database at once:
// each migration is applied exactly once (under the advisory lock), and every
// one of them opens.
func TestMigrateConcurrently(t *testing.T) {
	srv := pgtest.Shared(t)
	url := srv.URL(srv.NewDatabase(t))
	const n = 8
	var wg sync.WaitGroup
	stores := make([]*pgstore.Store, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = pgstore.Open(context.Background(), url, pgstore.Options{MaxConns: 2})
		}()
	}
	wg.Wait()
	applied := 0
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("controller %d: %v", i, errs[i])
		}
		applied += s.Migrated
		defer s.Close()
	}
	if applied != pgstore.SchemaVersion {
		t.Errorf("%d migrations applied by %d controllers, want %d (each once)", applied, n, pgstore.SchemaVersion)
	}
	var rows, distinct, max int
	err := stores[0].Pool().QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version), max(version) FROM schema_version`).Scan(&rows, &distinct, &max)
	if err != nil || rows != pgstore.SchemaVersion || distinct != rows || max != pgstore.SchemaVersion {
		t.Errorf("schema_version: %d rows, %d versions, newest %d, %v; want %d of each", rows, distinct, max, err, pgstore.SchemaVersion)
	}
	h, err := stores[n-1].Health(context.Background())
	if err != nil || !h.Current || h.Backend != "postgres" {
		t.Errorf("Health = %+v, %v", h, err)
	}
}

// TestNewerSchema: a database migrated by a newer wgnet is refused with what
// to do, unless the newer migrations kept this version compatible.
func TestNewerSchema(t *testing.T) {
	s, url := open(t)
	defer s.Close()
	ctx := context.Background()
	v := pgstore.SchemaVersion
	if _, err := s.Pool().Exec(ctx, `INSERT INTO schema_version (version, compatible_from) VALUES ($1, $2)`, v+1, v); err != nil {
		t.Fatal(err)
	}
	s2, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatalf("an expand-only newer schema refused: %v", err)
	}
	// Still current for this build: the old release keeps serving during a
	// rolling upgrade.
	if h, _ := s2.Health(ctx); !h.Current || h.Schema != v+1 || h.Code != v {
		t.Errorf("Health with a newer expand-only migration applied = %+v, want current", h)
	}
	s2.Close()
	if _, err := s.Pool().Exec(ctx, `INSERT INTO schema_version (version, compatible_from) VALUES ($1, $2)`, v+2, v+2); err != nil {
		t.Fatal(err)
	}
	if s3, err := pgstore.Open(ctx, url, pgstore.Options{}); err == nil {
		s3.Close()
		t.Fatal("a contracted newer schema was accepted")
	} else {
		t.Log(err)
	}
}

// TestRetry: a transaction that fails with a serialization failure, a
// deadlock or a unique violation is run again, a bounded number of times, and
// then answers store.ErrConflict; other errors are not retried.
func TestRetry(t *testing.T) {
	s, _ := open(t)
	defer s.Close()
	ctx := context.Background()
	for _, code := range []string{"40001", "40P01", "23505"} {
		calls := 0
		err := s.Write(ctx, func(tx pgx.Tx) error {
			calls++
			if calls < 3 {
				return &pgconn.PgError{Code: code}
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Errorf("%s twice then success: %v after %d calls", code, err, calls)
		}
		calls = 0
		err = s.Write(ctx, func(tx pgx.Tx) error { calls++; return &pgconn.PgError{Code: code} })
		if !errors.Is(err, store.ErrConflict) || calls != pgstore.MaxAttempts {
			t.Errorf("%s always: %v after %d calls, want ErrConflict after %d", code, err, calls, pgstore.MaxAttempts)
		}
	}
	calls := 0
	err := s.Write(ctx, func(tx pgx.Tx) error { calls++; return &pgconn.PgError{Code: "42601"} })
	if calls != 1 || err == nil {
		t.Errorf("syntax error: %v after %d calls, want 1 call", err, calls)
	}
	// A real deadlock between two transactions: one of them is retried and
	// both succeed.
	if _, err := s.Pool().Exec(ctx, `CREATE TABLE dl (id int PRIMARY KEY, v int); INSERT INTO dl VALUES (1, 0), (2, 0)`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	attempts := 0
	ready := make(chan struct{}, 2)
	for i, order := range [][2]int{{1, 2}, {2, 1}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Write(ctx, func(tx pgx.Tx) error {
				mu.Lock()
				attempts++
				mu.Unlock()
				if _, err := tx.Exec(ctx, `UPDATE dl SET v = v + 1 WHERE id = $1`, order[0]); err != nil {
					return err
				}
				select {
				case ready <- struct{}{}:
				default:
				}
				if _, err := tx.Exec(ctx, `SELECT pg_sleep(0.2)`); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `UPDATE dl SET v = v + 1 WHERE id = $1`, order[1])
				return err
			})
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	var sum int
	s.Pool().QueryRow(ctx, `SELECT sum(v) FROM dl`).Scan(&sum)
	if sum != 4 || attempts < 3 {
		t.Errorf("after a deadlock: sum %d (want 4), %d attempts (want a retry)", sum, attempts)
	}
	t.Log(fmt.Sprintf("deadlock resolved in %d attempts", attempts))
}

// TestConfigTLS: TLS to the database is the URL's: sslmode=verify-full with
// sslrootcert verifies the server against that CA for the host's name, and a
// password given apart replaces none in the URL.
func TestConfigTLS(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "db-ca.pem")
	if err := os.WriteFile(ca, []byte(testCA), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgstore.Config("postgres://wgnet@db.example.net:5433/wgnet?sslmode=verify-full&sslrootcert="+ca, pgstore.Options{Password: "from-file"})
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.ConnConfig
	if c.TLSConfig == nil || c.TLSConfig.RootCAs == nil || c.TLSConfig.ServerName != "db.example.net" || c.TLSConfig.InsecureSkipVerify && c.TLSConfig.VerifyPeerCertificate == nil {
		t.Errorf("verify-full: TLS config %+v", c.TLSConfig)
	}
	if c.Password != "from-file" || c.Port != 5433 || c.User != "wgnet" {
		t.Errorf("config: user %q port %d password given apart %v", c.User, c.Port, c.Password == "from-file")
	}
	if _, err := pgstore.Config("postgres://wgnet@db/wgnet?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", pgstore.Options{}); err == nil {
		t.Error("a missing sslrootcert was accepted")
	}
}

// testCA is a self-signed CA certificate (ECDSA P-256), for TestConfigTLS.
const testCA = `-----BEGIN CERTIFICATE-----
MIIBjDCCATGgAwIBAgIUdUvB3VrHcCOiZ1QdaUcx03jp9hQwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQd2duZXQgdGVzdCBkYiBDQTAeFw0yNjExMzAxMjI3MTRaFw0z
NjExMjcxMjI3MTRaMBsxGTAXBgNVBAMMEHdnbmV0IHRlc3QgZGIgQ0EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAQz2cwT+sWVIR1sR8JZysbc4FGtQrUwtU8ivAlg
gemfkHVXPcBpGJ2bh2m3HShaZKTrcfLJQbSlE/NIcsb7MsLYo1MwUTAdBgNVHQ4E
FgQUx/8U4Vxw5qAi0GI6EJQsl7FUITcwHwYDVR0jBBgwFoAUx/8U4Vxw5qAi0GI6
EJQsl7FUITcwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAtnsp
0otx327CO8TGET0BeuFvOozBKatoUV58lFg4e5ACIQCFK17BhRwjok6Trdb0LyFR
oSIrS30Kqc89kKpfmb9w/Q==
-----END CERTIFICATE-----
`
