package check

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// Files reads and parses the config files of a network, one per host, and lints
// them together. Syntax errors become findings with code "syntax" (and the
// parser's warnings "parse-warning"), each at its line; a bad line makes only
// its own value unknown, so the other checks still run on everything that
// parsed, across files too (see Configs). Host names come from the file names
// (HostNames). The error is for files that could not be read (ReadFile says
// which), and for ctx done before the end.
func Files(ctx context.Context, paths []string) (diag.List, error) {
	return files(ctx, paths, runtime.GOMAXPROCS(0))
}

// files is Files on up to workers goroutines (one: everything in order).
func files(ctx context.Context, paths []string, workers int) (diag.List, error) {
	seen := map[string]bool{}
	var uniq []string
	for _, p := range paths {
		if p = filepath.Clean(p); !seen[p] {
			seen[p] = true
			uniq = append(uniq, p)
		}
	}
	hostNames := HostNames(uniq)
	type parsed struct {
		cfg   *wgconf.Config
		warns diag.List
		err   error // from parsing
		mode  os.FileMode
		read  error // from reading
	}
	files := make([]parsed, len(uniq))
	// Read and parse on every core: a 1,000-host mesh is 1,000 files of a
	// thousand peers each. Each worker stops when ctx is done.
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(workers, len(uniq)) {
		wg.Go(func() {
			for i := range next {
				if ctx.Err() != nil {
					continue // done: drain the rest
				}
				f := &files[i]
				var src []byte
				if src, f.mode, f.read = ReadFile(ctx, uniq[i]); f.read == nil {
					f.cfg, f.warns, f.err = wgconf.ParseOwnedWithWarnings(uniq[i], src) // src is ours alone
				}
			}
		})
	}
	for i := range uniq {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}

	var (
		cfgs  []*wgconf.Config
		out   diag.List
		errs  []error
		modes = map[string]os.FileMode{}
	)
	for i, path := range uniq {
		f := files[i]
		if f.read != nil {
			errs = append(errs, f.read)
			continue
		}
		modes[path] = f.mode
		if f.err != nil {
			perr := diag.FromError(f.err)
			if len(perr) == 0 { // not expected from wgconf, but never lose an error
				perr = diag.List{{Severity: diag.Error, Code: CodeSyntax, Message: f.err.Error()}}
			}
			out = append(out, inFile(path, perr)...)
		}
		out = append(out, inFile(path, f.warns)...)
		if f.cfg != nil {
			f.cfg.Name = hostNames[i]
			cfgs = append(cfgs, f.cfg)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	found := configs(Input{Configs: cfgs, Modes: modes}, workers)
	// A PublicKey given twice is both a parser warning and dup-peer; keep the
	// finding that says what it means for the network.
	out = slices.DeleteFunc(out, func(f diag.Diagnostic) bool {
		return f.Code == CodeParseWarning && slices.ContainsFunc(found, func(g diag.Diagnostic) bool {
			return g.Code == CodeDupPeer && g.File == f.File && g.Line == f.Line
		})
	})
	return sortFindings(append(out, found...)), nil
}

// inFile names path as the file of the parser's diagnostics that name none.
func inFile(path string, ds diag.List) diag.List {
	for i := range ds {
		if ds[i].File == "" {
			ds[i].File = path
		}
	}
	return ds
}
