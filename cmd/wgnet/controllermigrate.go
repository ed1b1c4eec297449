package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store"
)

// newControllerMigrateCmd is `wgnet controller migrate --from sqlite:DIR --to postgres://...`.
func newControllerMigrateCmd() *cobra.Command {
	var from, to string
	var sf storeFlags
	c := &cobra.Command{
		Use:   "migrate --from sqlite:DIR --to postgres://... --ca-secret-file FILE",
		Short: "Move a controller's state from SQLite to PostgreSQL (revisions, CA, credentials)",
		Long: "migrate copies everything of the SQLite controller in DIR into an empty PostgreSQL\n" +
			"database: networks at their revisions with their change logs, hosts and status\n" +
			"reports, every token (admin, join and agent credentials, as hashes), the audit\n" +
			"log, and the CA, its key sealed with the secret of --ca-secret-file (or $" + envCASecret + ").\n" +
			"Agents and join tokens keep working against controllers on the new database:\n" +
			"same CA pin, same credentials, same revisions. Stop the SQLite controller first\n" +
			"(or keep it from writing); a network that changes while it is read is refused.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			dir, ok := strings.CutPrefix(from, "sqlite:")
			if !ok || dir == "" || !isPostgres(to) {
				return usageError{fmt.Errorf("controller migrate: give --from sqlite:DIR and --to postgres://...")}
			}
			sec, err := secret(sf.caSecretFile, envCASecret, "--ca-secret-file")
			if err != nil {
				return err
			}
			if err := controller.CheckCASecret(sec); err != nil {
				return usageError{fmt.Errorf("controller migrate: --ca-secret-file or $%s: %w", envCASecret, err)}
			}
			res, err := runControllerMigrate(c.Context(), sf, dir, to, sec)
			if err != nil {
				return err
			}
			return report(c.OutOrStdout(), format, res, fmt.Sprintf("migrated %d networks (%d hosts, %d changes), %d tokens, %d audit entries and the CA (%s) from %s",
				res.Networks, res.Hosts, res.Changes, res.Tokens, res.Audit, res.CAHash, dir))
		},
	}
	c.Flags().StringVar(&from, "from", "", "the SQLite controller: sqlite:DIR (its --data)")
	c.Flags().StringVar(&to, "to", "", "the PostgreSQL database: postgres://USER@HOST/DB?sslmode=... (no password here)")
	sf.add(c, "")
	return c
}

type migrateResult struct {
	Networks int    `json:"networks"`
	Hosts    int    `json:"hosts"`
	Changes  int    `json:"changes"`
	Tokens   int    `json:"tokens"`
	Audit    int    `json:"audit"`
	CAHash   string `json:"ca_hash"`
}

func runControllerMigrate(ctx context.Context, sf storeFlags, dir, to string, sec []byte) (migrateResult, error) {
	var res migrateResult
	src, err := sf.open(ctx, "sqlite:"+dir, "")
	if err != nil {
		return res, err
	}
	defer src.Close()
	dst, err := sf.openPostgres(ctx, to)
	if err != nil {
		return res, err
	}
	defer dst.Close()
	d, err := store.Export(ctx, src)
	if err != nil {
		return res, fmt.Errorf("controller migrate: read %s: %w", dir, err)
	}
	// The CA first: a second run after a failed import finds the same CA.
	if err := controller.StoreCAFrom(ctx, dst, dir, sec); err != nil {
		return res, fmt.Errorf("controller migrate: the CA: %w", err)
	}
	if err := dst.Import(ctx, d); err != nil {
		return res, fmt.Errorf("controller migrate: %w", err)
	}
	id, err := controller.LoadStoredTLS(ctx, dst, sec, []string{"localhost"}, time.Now())
	if err != nil {
		return res, fmt.Errorf("controller migrate: the CA as stored: %w", err)
	}
	res = migrateResult{Networks: len(d.Networks), Tokens: len(d.Tokens), Audit: len(d.Audit), CAHash: api.CAHash(id.CA)}
	for _, nd := range d.Networks {
		res.Hosts += len(nd.Hosts)
		res.Changes += len(nd.Changes)
	}
	return res, nil
}
