package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/compile"
)

func init() { register(newRenderCmd) }

// renderedFile is one file render wrote, as -o json reports it.
type renderedFile struct {
	Host    string `json:"host"`
	Path    string `json:"path"`
	Changed bool   `json:"changed"`
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
			var files []renderedFile
			for _, hc := range n.hosts {
				data := hc.Config.WgQuick()
				if format == "wg" {
					data = hc.Config.Stripped()
				}
				path := filepath.Join(outDir, hc.Host, n.spec.InterfaceName()+".conf")
				old, _ := os.ReadFile(path)
				changed := !bytes.Equal(old, data)
				if changed {
					if err := atomicfile.Write(path, data, 0o600, 0o700); err != nil {
						return err
					}
				}
				files = append(files, renderedFile{Host: hc.Host, Path: path, Changed: changed})
			}
			if format == "json" {
				e := json.NewEncoder(c.OutOrStdout())
				e.SetIndent("", "  ")
				return e.Encode(files)
			}
			for _, f := range files {
				state := "unchanged"
				if f.Changed {
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
