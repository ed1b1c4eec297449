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
	"strings"

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

// renderStep is one change render plans: a config to write, or a stale one to
// remove.
type renderStep struct {
	renderedFile
	data  []byte
	write bool // write data (changed, or the same but readable by others)
}

// planRender decides every file render writes or removes, checking every host
// first: that its out/HOST directory can be trusted (a private key goes there)
// and is a directory, and that the file there is ours to replace. It touches
// nothing, so that a problem with one host leaves every file as it was; it
// reports the problems of all hosts at once.
func planRender(outDir string, n *network, stripped bool) ([]renderStep, error) {
	files := make([]hostFile, len(n.hosts))
	for i, hc := range n.hosts {
		data := hc.WgQuick()
		if stripped {
			data = hc.Stripped()
		}
		files[i] = hostFile{host: hc.Name, name: n.spec.InterfaceName() + ".conf", data: data}
	}
	return planFiles(outDir, files, n.spec.Network, func(host string) bool {
		_, ok := n.spec.HostByName(host)
		return ok
	})
}

// hostFile is one host's config to write: DIR/host/name.
type hostFile struct {
	host, name string
	data       []byte
}

// planFiles plans writing files into outDir (see planRender) and removing the
// configs rendered for network of hosts that has no longer knows.
func planFiles(outDir string, files []hostFile, network string, has func(host string) bool) ([]renderStep, error) {
	var steps []renderStep
	var errs []error
	for _, f := range files {
		path := filepath.Join(outDir, f.host, f.name)
		if err := checkOutPath(path); err != nil {
			errs = append(errs, err)
			continue
		}
		old, err := readOwnFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		changed := !bytes.Equal(old, f.data)
		// Rewrite also a file that is the same but readable by others.
		fi, err := os.Lstat(path)
		write := changed || err != nil || fi.Mode().Perm() != 0o600
		steps = append(steps, renderStep{renderedFile{Host: f.host, Path: path, Changed: changed}, f.data, write})
	}
	names := map[string]bool{}
	for _, f := range files {
		names[f.name] = true
	}
	for name := range names {
		stale, err := findStale(outDir, name, network, has)
		steps = append(steps, stale...)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return steps, nil
}

// checkOutPath checks, before render writes anything, that it can write the
// config at DIR/HOST/IFACE.conf: that DIR/HOST is a trusted directory, not a
// link to elsewhere nor one that somebody else could swap (trust.Path), and the
// config, if there, a regular file.
func checkOutPath(path string) error {
	if fi, err := os.Lstat(filepath.Dir(path)); err == nil && !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("%s: not a directory (render writes %s there)", filepath.Dir(path), filepath.Base(path))
	}
	if err := trust.Path(path); err != nil {
		return err
	}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	return nil
}

// findStale finds DIR/HOST/NAME of hosts that left the network, when the file
// is one wgnet rendered for this network (it may hold the host's private key,
// and a linter run over DIR would count the host as still there). Other files
// are left alone.
func findStale(outDir, name, network string, has func(host string) bool) ([]renderStep, error) {
	paths, _ := filepath.Glob(filepath.Join(outDir, "*", name))
	var out []renderStep
	var errs []error
	for _, p := range paths {
		host := filepath.Base(filepath.Dir(p))
		if has(host) {
			continue
		}
		data, err := readOwnFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !bytes.Contains(data, []byte(compile.Header(host, network))) {
			continue
		}
		out = append(out, renderStep{renderedFile: renderedFile{Host: host, Path: p, Changed: true, Removed: true}})
	}
	return out, errors.Join(errs...)
}

// applyRender carries out the steps in order. When one fails it stops and
// says which files it wrote or removed and which it did not.
func applyRender(steps []renderStep) ([]renderedFile, error) {
	var done []renderedFile
	for i, st := range steps {
		var err error
		switch {
		case st.Removed:
			if err = os.Remove(st.Path); err == nil {
				os.Remove(filepath.Dir(st.Path)) // only if empty
			}
		case st.write:
			err = atomicfile.Write(st.Path, st.data, 0o600, 0o700)
		}
		if err != nil {
			did, not := changedPaths(steps[:i]), changedPaths(steps[i:])
			return done, fmt.Errorf("%w\nrender changed %d file(s) before this: %s\nand did not change %d: %s",
				err, len(did), listOrNone(did), len(not), listOrNone(not))
		}
		done = append(done, st.renderedFile)
	}
	return done, nil
}

// changedPaths returns the paths of steps that change a file.
func changedPaths(steps []renderStep) []string {
	var out []string
	for _, st := range steps {
		if st.write || st.Removed {
			out = append(out, st.Path)
		}
	}
	return out
}

func listOrNone(paths []string) string {
	if len(paths) == 0 {
		return "none"
	}
	return strings.Join(paths, ", ")
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
			format, err := outputFormat(global.output, "text", "wg-quick", "wg", "json")
			if err != nil {
				return err
			}
			n, err := loadSpecNetwork(global.specFile, c.ErrOrStderr())
			if err != nil {
				return err
			}
			if explain {
				_, err := fmt.Fprint(c.OutOrStdout(), compile.Explain(n.hosts))
				return err
			}
			steps, err := planRender(outDir, n, format == "wg")
			if err != nil {
				return fmt.Errorf("render: nothing written: %w", err)
			}
			order := syncOrder(n, steps) // reads the files before they change
			files, err := applyRender(steps)
			if err != nil {
				return fmt.Errorf("render: %w", err)
			}
			if err := printRendered(c.OutOrStdout(), format, files); err != nil || format == "json" {
				return err
			}
			return writeSyncOrder(c.OutOrStdout(), n, order)
		},
	}
	c.Flags().StringVar(&outDir, "out", "out", "directory to write HOST/IFACE.conf into")
	c.Flags().BoolVar(&explain, "explain", false, "print the peering graph (Mermaid) instead of writing files")
	return c
}

// printRendered says what render did to each file: as JSON, or a line each.
func printRendered(w io.Writer, format string, files []renderedFile) error {
	if format == "json" {
		e := json.NewEncoder(w)
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
		fmt.Fprintf(w, "%-9s %s\n", state, f.Path)
	}
	return nil
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
