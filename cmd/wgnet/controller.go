package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/store/pgstore"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
)

func init() { register(newControllerCmd) }

// DatabaseFile is the SQLite database in the controller's data directory.
const databaseFile = "wgnet.db"

// Environment variables for the secrets of a controller on PostgreSQL (or
// give them as files).
const (
	envStorePassword = "WGNET_STORE_PASSWORD"
	envCASecret      = "WGNET_CA_SECRET"
)

// storeFlags say which store a controller uses and how it reaches it.
type storeFlags struct {
	store        string // "" (SQLite in --data), sqlite:DIR, postgres://...
	passwordFile string
	caSecretFile string
}

func (f *storeFlags) add(c *cobra.Command, storeFlag string) {
	if storeFlag != "" {
		c.Flags().StringVar(&f.store, storeFlag, "", "the store: postgres://USER@HOST/DB?sslmode=verify-full&sslrootcert=FILE (several controllers on one database; "+
			"no password here: --store-password-file or $"+envStorePassword+"), or sqlite:DIR")
	}
	c.Flags().StringVar(&f.passwordFile, "store-password-file", "", "file holding the PostgreSQL password (else $"+envStorePassword+", else PGPASSWORD or ~/.pgpass)")
	c.Flags().StringVar(&f.caSecretFile, "ca-secret-file", "", "file holding the secret the CA key is sealed with in PostgreSQL, the same for every controller (else $"+envCASecret+")")
}

// isPostgres reports a PostgreSQL store URL.
func isPostgres(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// secret reads a secret from file, else from the environment variable env.
func secret(file, env, what string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return bytes.TrimRight(b, "\r\n"), nil
	}
	return []byte(os.Getenv(env)), nil
}

// urlHasPassword reports a postgres:// URL with a password: in its user
// part (user:password@, before the first /) or as a password parameter. It
// reads the text itself: a multi-host URL (host1:5432,host2:5432) is not one
// net/url parses.
func urlHasPassword(dsn string) bool {
	rest := dsn[strings.Index(dsn, "://")+3:]
	auth, _, _ := strings.Cut(rest, "/")
	if user, _, ok := strings.Cut(auth, "@"); ok && strings.Contains(user, ":") {
		return true
	}
	_, query, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(query)
	return err != nil || q.Has("password")
}

// openPostgres opens a PostgreSQL store: the password never on the command
// line (it would show in ps), TLS as the URL's ssl* parameters say.
func (f *storeFlags) openPostgres(ctx context.Context, dsn string) (*pgstore.Store, error) {
	if urlHasPassword(dsn) {
		return nil, usageError{fmt.Errorf("--store: the URL holds a password, which any user sees in ps: give it with --store-password-file or $%s", envStorePassword)}
	}
	pw, err := secret(f.passwordFile, envStorePassword, "--store-password-file")
	if err != nil {
		return nil, err
	}
	return pgstore.Open(ctx, dsn, pgstore.Options{Password: string(pw)})
}

// open opens the store the flags name, SQLite in dataDir by default.
func (f *storeFlags) open(ctx context.Context, spec, dataDir string) (store.Store, error) {
	switch {
	case isPostgres(spec):
		return f.openPostgres(ctx, spec)
	case strings.HasPrefix(spec, "sqlite:"):
		dataDir = strings.TrimPrefix(spec, "sqlite:")
	case spec != "":
		return nil, usageError{fmt.Errorf("store %q: want postgres://... or sqlite:DIR", spec)}
	}
	if dataDir == "" {
		return nil, usageError{errors.New("controller: give --data DIR (SQLite) or --store postgres://...")}
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	return sqlitestore.Open(ctx, filepath.Join(dataDir, databaseFile))
}

func newControllerCmd() *cobra.Command {
	var o controller.Options
	var sf storeFlags
	c := &cobra.Command{
		Use:   "controller --listen ADDR (--data DIR | --store postgres://... --ca-secret-file FILE) [--advertise-url URL]...",
		Short: "Run a controller: networks on a server, edited with the same verbs (--controller)",
		Long: "controller serves an HTTPS JSON API (docs/controller.md) with its state in\n" +
			"DIR/wgnet.db (SQLite). On first start it makes its CA (DIR/ca.crt) and an admin\n" +
			"token, which it prints once and stores only as a hash. It prints the CA's pin\n" +
			"(sha256:...) for --ca-hash and the address it listens on.\n\n" +
			"With --store postgres://... any number of controllers share one PostgreSQL\n" +
			"database (docs/ha.md): the CA is kept there, its key sealed with the secret of\n" +
			"--ca-secret-file (or $" + envCASecret + "), which every controller is given.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runController(c.Context(), o, sf)
		},
	}
	c.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:7443", "address to listen on")
	c.Flags().StringVar(&o.DataDir, "data", "", "directory for the database and the CA (with --store postgres://..., optional: a copy of the CA certificate)")
	c.Flags().StringArrayVar(&o.Advertise, "advertise-url", nil, "https URL clients reach the controller at (its host goes into the certificate), repeatable")
	c.Flags().StringVar(&o.TLSCert, "tls-cert", "", "serve with this certificate (PEM chain, leaf first) instead of one from the controller's CA; with --tls-key")
	c.Flags().StringVar(&o.TLSKey, "tls-key", "", "the private key of --tls-cert")
	c.Flags().BoolVar(&o.ProxyProtocol, "proxy-protocol", false, "every connection starts with a PROXY protocol header (v1 or v2) from a TCP load balancer: the client's address is taken from it")
	sf.add(c, "store")
	c.AddCommand(newControllerBackupCmd(), newControllerRestoreCmd(), newControllerAuditCmd(), newControllerMigrateCmd())
	return c
}

func runController(ctx context.Context, o controller.Options, sf storeFlags) error {
	if isPostgres(sf.store) && o.TLSCert == "" {
		sec, err := secret(sf.caSecretFile, envCASecret, "--ca-secret-file")
		if err != nil {
			return err
		}
		if len(sec) == 0 {
			return usageError{fmt.Errorf("controller --store postgres://...: give --ca-secret-file FILE or $%s: the CA is kept in the database, sealed with it, for every controller", envCASecret)}
		}
		if err := controller.CheckCASecret(sec); err != nil {
			return usageError{err}
		}
		o.CASecret = sec
	}
	st, err := sf.open(ctx, sf.store, o.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	return controller.Run(ctx, st, o)
}
