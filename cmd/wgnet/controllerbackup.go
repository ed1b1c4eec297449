package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
)

// newControllerBackupCmd is `wgnet controller backup --data DIR --out FILE`.
func newControllerBackupCmd() *cobra.Command {
	var dir, out string
	c := &cobra.Command{
		Use:   "backup --data DIR --out FILE",
		Short: "Write a consistent snapshot of a controller (database and CA) to FILE",
		Long: "backup archives the controller's CA (DIR/ca.crt, DIR/ca.key) and a consistent\n" +
			"snapshot of its database (SQLite VACUUM INTO: one read transaction, while the\n" +
			"controller keeps serving). FILE holds the CA's private key: it is written 0600.\n" +
			"Restore it with `wgnet controller restore`; hosts and tokens keep trusting the\n" +
			"restored controller, which has the same CA.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" || out == "" {
				return usageError{fmt.Errorf("controller backup: give --data DIR and --out FILE")}
			}
			return runControllerBackup(c.Context(), c, dir, out)
		},
	}
	c.Flags().StringVar(&dir, "data", "", "the controller's data directory")
	c.Flags().StringVar(&out, "out", "", "the backup file to write")
	return c
}

func runControllerBackup(ctx context.Context, c *cobra.Command, dir, out string) error {
	db := filepath.Join(dir, databaseFile)
	if _, err := os.Stat(db); err != nil {
		return fmt.Errorf("controller backup: no database in %s: %w", dir, err)
	}
	st, err := sqlitestore.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	names, err := controller.Backup(ctx, controller.BackupOptions{DataDir: dir, Store: databaseFile, Snapshot: st.Backup}, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.OutOrStdout(), "backed up %s to %s\n", strings.Join(names, ", "), out)
	return nil
}

// newControllerRestoreCmd is `wgnet controller restore --data DIR --from FILE`.
func newControllerRestoreCmd() *cobra.Command {
	var dir, from string
	c := &cobra.Command{
		Use:   "restore --data DIR --from FILE",
		Short: "Restore a controller backup into an empty data directory",
		Long: "restore unpacks a backup made by `wgnet controller backup` into DIR, which must\n" +
			"be empty or not exist, and checks that the database opens. Then run\n" +
			"`wgnet controller --data DIR`: same CA (its pin is unchanged), same networks,\n" +
			"hosts, revisions, tokens and audit log.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" || from == "" {
				return usageError{fmt.Errorf("controller restore: give --data DIR and --from FILE")}
			}
			names, err := controller.Restore(from, dir, databaseFile)
			if err != nil {
				return err
			}
			st, err := sqlitestore.Open(c.Context(), filepath.Join(dir, databaseFile))
			if err != nil {
				return fmt.Errorf("controller restore: the restored database: %w", err)
			}
			defer st.Close()
			ns, err := st.Networks(c.Context())
			if err != nil {
				return fmt.Errorf("controller restore: the restored database: %w", err)
			}
			fmt.Fprintf(c.OutOrStdout(), "restored %s into %s: %d networks\n", strings.Join(names, ", "), dir, len(ns))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "data", "", "the new (empty) data directory")
	c.Flags().StringVar(&from, "from", "", "the backup file")
	return c
}
