package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/trust"
)

func init() { register(newRenderCmd) }

// renderedFile is one file render wrote, as -o json reports it.
type renderedFile struct {
	Host    string `json:"host"`
	Path    string `json:"path"`
	Changed bool   `json:"changed"`
	Removed bool   `json:"removed,omitempty"`
}

// removeStale deletes DIR/HOST/IFACE.conf of hosts that left the spec, when the
// file is one wgnet rendered for this network (it holds the host's private key,
// and a linter run over DIR would count the host as still there). Other files
// are left alone.
func removeStale(outDir string, n *network) ([]renderedFile, error) {
	iface := n.spec.InterfaceName() + ".conf"
	paths, _ := filepath.Glob(filepath.Join(outDir, "*", iface))
	var out []renderedFile
	for _, p := range paths {
		host := filepath.Base(filepath.Dir(p))
		if _, ok := n.spec.HostByName(host); ok {
			continue
		}
		data, err := readOwnFile(p)
		if err != nil {
			return nil, err
		}
		if !bytes.Contains(data, []byte(compile.Header(host, n.spec.Network))) {
			continue
		}
		if err := os.Remove(p); err != nil {
			return nil, err
		}
		os.Remove(filepath.Dir(p)) // only if empty
		out = append(out, renderedFile{Host: host, Path: p, Changed: true, Removed: true})
	}
	return out, nil
}

func newRenderCmd() *cobra.Command {
	var outDir string
	var explain bool
	c := &cobra.Command{
		Use:   "render [--out DIR] [-o wg-quick|wg|json]",
		Short: "Compile the spec into every host's config: DIR/HOST/IFACE.conf",
		Long: "render writes DIR/HOST/IFACE.conf for every host, atomically and mode 0600.\n" +
			"-o wg-quick (default) writes wg-quick files; -o wg the stripped form `wg setconf`\n" +
			"reads; -o json writes wg-quick files and prints what it wrote as JSON.\n" +
			"--explain prints who peers with whom and why, as a Mermaid flowchart, and writes nothing.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			format, err := outputFormat("text", "wg-quick", "wg", "json")
			if err != nil {
				return err
			}
			n, err := loadNetwork(c.ErrOrStderr())
			if err != nil {
				return err
			}
			if explain {
				_, err := fmt.Fprint(c.OutOrStdout(), compile.Explain(n.hosts))
				return err
			}
			// Every HOST directory gets a private key: it must be ours, not a
			// link to elsewhere, and nobody else may be able to swap it.
			for _, hc := range n.hosts {
				if err := trust.Path(filepath.Join(outDir, hc.Name, n.spec.InterfaceName()+".conf")); err != nil {
					return fmt.Errorf("render: %w", err)
				}
			}
			var files []renderedFile
			for _, hc := range n.hosts {
				data := hc.Config().WgQuick()
				if format == "wg" {
					data = hc.Config().Stripped()
				}
				path := filepath.Join(outDir, hc.Name, n.spec.InterfaceName()+".conf")
				old, err := readOwnFile(path)
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("render: %w", err)
				}
				changed := !bytes.Equal(old, data)
				if fi, err := os.Lstat(path); changed || err != nil || fi.Mode().Perm() != 0o600 {
					// Rewrite also a file that is the same but readable by others.
					if err := atomicfile.Write(path, data, 0o600, 0o700); err != nil {
						return err
					}
				}
				files = append(files, renderedFile{Host: hc.Name, Path: path, Changed: changed})
			}
			stale, err := removeStale(outDir, n)
			if err != nil {
				return err
			}
			files = append(files, stale...)
			if format == "json" {
				e := json.NewEncoder(c.OutOrStdout())
				e.SetIndent("", "  ")
				return e.Encode(files)
			}
			for _, f := range files {
				state := "unchanged"
				switch {
				case f.Removed:
					state = "removed"
				case f.Changed:
					state = "written"
				}
				fmt.Fprintf(c.OutOrStdout(), "%-9s %s\n", state, f.Path)
			}
			return nil
		},
	}
	c.Flags().StringVar(&outDir, "out", "out", "directory to write HOST/IFACE.conf into")
	c.Flags().BoolVar(&explain, "explain", false, "print the peering graph (Mermaid) instead of writing files")
	return c
}

// readOwnFile reads a file render wrote, without following a link there and
// only if it is ours (trust.Open).
func readOwnFile(path string) ([]byte, error) {
	f, err := trust.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
