package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
	"github.com/wgnet/wgnet/internal/importer"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
)

func init() { register(newImportCmd) }

func newImportCmd() *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "import FILE...",
		Short: "Rebuild a spec from an existing network's wg-quick configs, one per host",
		Long: "import reads one wg-quick config per host (host name from the directory when every\n" +
			"file has the same name, as out/s1/wg0.conf, else from the file name, as s1.conf),\n" +
			"writes the spec (-f) and its secrets directory (private and preshared keys), and\n" +
			"reports every line it could not carry over. It refuses to replace an existing spec.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			l, err := spec.LockSpec(global.specFile, true)
			if err != nil {
				return err
			}
			defer l.Unlock()
			if _, err := os.Lstat(global.specFile); err == nil {
				return fmt.Errorf("import: %s exists; import into a new file with -f", global.specFile)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			var cfgs []*wgconf.Config
			var errs []error
			for _, path := range args {
				src, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				cfg, err := wgconf.Parse(path, src)
				if err != nil {
					errs = append(errs, err)
				}
				cfgs = append(cfgs, cfg)
			}
			if len(errs) > 0 {
				return fmt.Errorf("import: fix these first:\n%w", errors.Join(errs...))
			}
			r, err := importer.Import(name, wgconf.HostNames(args), cfgs)
			if err != nil {
				return err
			}
			if err := r.Spec.Validate(); err != nil {
				return fmt.Errorf("import: the configs don't make a valid network:\n%w", err)
			}
			// Secrets first, then the spec; if anything fails, nothing stays.
			dir := spec.SecretsDir(global.specFile)
			_, statErr := os.Stat(dir)
			newDir := errors.Is(statErr, fs.ErrNotExist)
			if err := writeImported(global.specFile, dir, r); err != nil {
				if newDir {
					os.RemoveAll(dir)
				}
				return err
			}
			if format == "json" {
				notes := []string{}
				for _, n := range r.Notes {
					notes = append(notes, n.Located())
				}
				return report(c.OutOrStdout(), format, map[string]any{"spec": global.specFile, "secrets": dir,
					"hosts": len(r.Spec.Hosts), "topology": r.Spec.Topology, "notes": notes}, "")
			}
			for _, n := range r.Notes {
				fmt.Fprintln(c.ErrOrStderr(), "wgnet: import:", n.Located())
			}
			fmt.Fprintf(c.OutOrStdout(), "imported %d hosts (%s) into %s, keys in %s/\n", len(r.Spec.Hosts), r.Spec.Topology, global.specFile, dir)
			return nil
		},
	}
	c.Flags().StringVar(&name, "network", "imported", "name of the imported network")
	return c
}

// writeImported writes an imported network's keys and then its spec.
func writeImported(specPath, dir string, r *importer.Result) error {
	for host, k := range r.Secrets.PrivateKeys {
		if err := spec.WritePrivateKey(dir, host, k); err != nil {
			return err
		}
	}
	for p, k := range r.Secrets.PresharedKeys {
		if err := spec.WritePSK(dir, p, k); err != nil {
			return err
		}
	}
	return spec.FromSpec(specPath, r.Spec).Save()
}
