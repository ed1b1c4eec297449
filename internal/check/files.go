package check

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/wgnet/wgnet/internal/wgconf"
)

// Files reads and parses the config files of a network, one per host, and lints
// them together. Syntax errors become findings with code "syntax" (and the
// parser's warnings "parse-warning"), each at its line; a bad line makes only
// its own value unknown, so the other checks still run on everything that
// parsed, across files too (see Configs). Host names come from the file names
// (HostNames). The error is only for files that could not be read.
func Files(paths []string) ([]Finding, error) {
	var uniq []string
	for _, p := range paths {
		if !slices.Contains(uniq, filepath.Clean(p)) {
			uniq = append(uniq, filepath.Clean(p))
		}
	}
	hostNames := HostNames(uniq)
	var (
		cfgs  []*wgconf.Config
		out   []Finding
		errs  []error
		modes = map[string]os.FileMode{}
	)
	for i, path := range uniq {
		src, mode, err := readFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		modes[path] = mode
		cfg, warns, err := wgconf.ParseWithWarnings(path, src)
		if err != nil {
			perr := wgconf.Errors(err)
			if len(perr) == 0 { // not expected from wgconf, but never lose an error
				perr = []*wgconf.Error{{File: path, Msg: err.Error()}}
			}
			for _, e := range perr {
				out = append(out, parseFinding(path, CodeSyntax, e))
			}
		}
		for _, w := range warns {
			out = append(out, parseFinding(path, CodeParseWarning, w))
		}
		if cfg != nil {
			cfg.Name = hostNames[i]
			cfgs = append(cfgs, cfg)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	found := Configs(Input{Configs: cfgs, Modes: modes})
	// A PublicKey given twice is both a parser warning and dup-peer; keep the
	// finding that says what it means for the network.
	out = slices.DeleteFunc(out, func(f Finding) bool {
		return f.Code == CodeParseWarning && slices.ContainsFunc(found, func(g Finding) bool {
			return g.Code == CodeDupPeer && g.File == f.File && g.Line == f.Line
		})
	})
	return sortFindings(append(out, found...)), nil
}

func parseFinding(path, code string, e *wgconf.Error) Finding {
	file := e.File
	if file == "" {
		file = path
	}
	return Finding{File: file, Line: e.Line, Severity: severityOf[code], Code: code, Message: e.Msg}
}

// readFile reads path and returns its permission bits as well.
func readFile(path string) ([]byte, os.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err // *PathError names the file
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if fi.IsDir() {
		return nil, 0, fmt.Errorf("read %s: is a directory, want a config file", path)
	}
	src, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return src, fi.Mode(), nil
}
