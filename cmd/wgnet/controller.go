package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
)

func init() { register(newControllerCmd) }

// DatabaseFile is the SQLite database in the controller's data directory.
const databaseFile = "wgnet.db"

func newControllerCmd() *cobra.Command {
	var o controller.Options
	c := &cobra.Command{
		Use:   "controller --listen ADDR --data DIR [--advertise-url URL]...",
		Short: "Run a controller: networks on a server, edited with the same verbs (--controller)",
		Long: "controller serves an HTTPS JSON API (docs/controller.md) with its state in\n" +
			"DIR/wgnet.db (SQLite). On first start it makes its CA (DIR/ca.crt) and an admin\n" +
			"token, which it prints once and stores only as a hash. It prints the CA's pin\n" +
			"(sha256:...) for --ca-hash and the address it listens on.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.DataDir == "" {
				return usageError{fmt.Errorf("controller: give --data DIR")}
			}
			return runController(c.Context(), o)
		},
	}
	c.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:7443", "address to listen on")
	c.Flags().StringVar(&o.DataDir, "data", "", "directory for the database and the CA")
	c.Flags().StringArrayVar(&o.Advertise, "advertise-url", nil, "https URL clients reach the controller at (its host goes into the certificate), repeatable")
	c.Flags().StringVar(&o.TLSCert, "tls-cert", "", "serve with this certificate (PEM chain, leaf first) instead of one from the controller's CA; with --tls-key")
	c.Flags().StringVar(&o.TLSKey, "tls-key", "", "the private key of --tls-cert")
	c.AddCommand(newControllerBackupCmd(), newControllerRestoreCmd(), newControllerAuditCmd())
	return c
}

func runController(ctx context.Context, o controller.Options) error {
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return err
	}
	st, err := sqlitestore.Open(ctx, filepath.Join(o.DataDir, databaseFile))
	if err != nil {
		return err
	}
	defer st.Close()
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	return controller.Run(ctx, st, o)
}
