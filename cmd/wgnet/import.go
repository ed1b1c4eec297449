package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/importer"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
)

func init() { register(newImportCmd) }

func newImportCmd() *cobra.Command {
	var name string
	var remote remoteFlags
	c := &cobra.Command{
		Use:   "import FILE...",
		Short: "Rebuild a spec from an existing network's wg-quick configs, one per host",
		Long: "import reads one wg-quick config per host (host name from the directory when every\n" +
			"file has the same name, as out/s1/wg0.conf, else from the file name, as s1.conf),\n" +
			"writes the spec (-f) and its secrets directory (private and preshared keys), and\n" +
			"reports every line it could not carry over. It refuses to replace an existing spec.\n\n" +
			"With --controller URL it adopts the fleet into a new network (--network) of that\n" +
			"controller instead: public data only (public keys, addresses, endpoints, routes,\n" +
			"keepalives); no private or preshared key leaves this machine. Each host then joins\n" +
			"with its own key and a token bound to it: wgnet token create NETWORK --host NAME,\n" +
			"then on the host: wgnet agent join TOKEN --key-file /etc/wireguard/wg0.key.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			if c.Flags().Changed("controller") {
				return importToController(c, &remote, name, args, format)
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
			r, err := importFiles(name, args)
			if err != nil {
				return err
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
				return report(c.OutOrStdout(), format, map[string]any{"spec": global.specFile, "secrets": dir,
					"hosts": len(r.Spec.Hosts), "topology": r.Spec.Topology, "notes": located(r.Notes)}, "")
			}
			for _, n := range r.Notes {
				fmt.Fprintln(c.ErrOrStderr(), "wgnet: import:", n.Located())
			}
			fmt.Fprintf(c.OutOrStdout(), "imported %d hosts (%s) into %s, keys in %s/\n", len(r.Spec.Hosts), r.Spec.Topology, global.specFile, dir)
			return nil
		},
	}
	c.Flags().StringVar(&name, "network", "imported", "name of the imported network (with --controller: the controller's new network)")
	remote.bind(c.Flags(), false)
	return c
}

// importFiles reads and parses the configs and rebuilds their network, which
// must validate. The parser's warnings (a second [Interface] merged, an IPv6
// endpoint without brackets) come first among the notes: what the rendered
// config writes differently.
func importFiles(name string, paths []string) (*importer.Result, error) {
	var cfgs []*wgconf.Config
	var errs []error
	var warns diag.List
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		cfg, w, err := wgconf.ParseWithWarnings(path, src)
		if err != nil {
			errs = append(errs, err)
		}
		warns = append(warns, w...)
		cfgs = append(cfgs, cfg)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("import: fix these first:\n%w", errors.Join(errs...))
	}
	r, err := importer.Import(name, wgconf.HostNames(paths), cfgs)
	if err != nil {
		return nil, err
	}
	r.Notes = append(warns, r.Notes...)
	if err := r.Spec.Validate(); err != nil {
		return nil, fmt.Errorf("import: the configs don't make a valid network:\n%w", err)
	}
	return r, nil
}

// located renders notes as FILE:LINE: MESSAGE lines.
func located(l diag.List) []string {
	out := []string{}
	for _, n := range l {
		out = append(out, n.Located())
	}
	return out
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
