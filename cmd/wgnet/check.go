package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/check"
	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/policy"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func init() { register(newCheckCmd) }

func newCheckCmd() *cobra.Command {
	var liveFlag bool
	c := &cobra.Command{
		Use:   "check [FILE...] [-o text|json] | check --live [NAME...]",
		Short: "Lint a WireGuard network: every host's wg-quick config together, or the spec",
		Long: "check reads the wg-quick configs of a network, one per host, and lints them as a\n" +
			"whole: keys that match no host, AllowedIPs that collide or don't route, endpoints,\n" +
			"ports, forwarding, keepalives, MTU, file modes. A host is named after its file\n" +
			"(s2.conf) or, for one IFACE.conf per directory, the directory (out/s2/wg0.conf).\n" +
			"Without files it lints the spec (-f) and the configs it compiles to.\n" +
			"Each finding is FILE:LINE: SEVERITY: CODE: MESSAGE (docs/checks.md lists the codes);\n" +
			"-o json prints them as an array. Exit 0: no errors (warnings allowed); 1: errors;\n" +
			"2: could not run.\n" +
			"--live diagnoses running interfaces instead (every one wgnet brought up here, or\n" +
			"NAME...): forwarding, rp_filter, the firewall, routes, path MTU, handshakes, endpoint\n" +
			"names; one line per problem with the command that fixes it; exit 1 on any finding.",
		RunE: func(c *cobra.Command, args []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			if liveFlag {
				return runCheckLive(c.Context(), args, format, c.OutOrStdout(), c.ErrOrStderr())
			}
			return runCheck(c.Context(), args, global.specFile, format, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().BoolVar(&liveFlag, "live", false, "diagnose running interfaces (NAME...) instead of files")
	return c
}

// runCheck prints the findings on stdout and a summary on stderr: of files, or
// without files of the spec named by -f.
func runCheck(ctx context.Context, files []string, specFile, format string, stdout, stderr io.Writer) error {
	if os.Getenv("GOGC") == "" {
		// What check builds lives to its end (a 1,000-host mesh: a million
		// peers, about 700 MB), and it makes little garbage besides; at the
		// default the collector runs each time the heap doubles and scans it
		// all again for nothing: 15% of check's CPU on that mesh. At 400, 3 to
		// 4 fewer cycles for about 7% more memory at the peak.
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	var findings diag.List
	var err error
	if len(files) == 0 {
		findings, err = checkSpec(ctx, specFile)
	} else {
		findings, err = check.Files(ctx, files)
	}
	if err != nil {
		return err
	}
	if err := writeFindings(findings, format, stdout, stderr); err != nil {
		return err
	}
	if errs, _ := findings.Count(); errs > 0 {
		return errProblems("") // the findings and the summary are out already
	}
	return nil
}

// writeFindings prints findings on stdout, one a line or as a JSON array, and
// the count of errors and warnings on stderr.
func writeFindings(findings diag.List, format string, stdout, stderr io.Writer) error {
	if format == "json" {
		if findings == nil {
			findings = diag.List{}
		}
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		if err := e.Encode(findings); err != nil {
			return err
		}
	} else {
		for _, f := range findings {
			if _, err := fmt.Fprintln(stdout, f.String()); err != nil {
				return err
			}
		}
	}
	errs, warns := findings.Count()
	fmt.Fprintf(stderr, "%s, %s\n", plural(errs, "error"), plural(warns, "warning"))
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// checkSpec lints the spec in file: its own validation, its secrets, then the
// configs it compiles to, checked as one network (check.MergeSpec puts their
// findings at the host's entry in the spec, since that is where the fix belongs).
func checkSpec(ctx context.Context, file string) (diag.List, error) {
	l, err := lockToRead(file)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	defer l.Unlock()
	src, _, err := check.ReadFile(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("check: %w (give config files, or a spec with -f)", err)
	}
	s, errs, warns := spec.Check(file, src)
	out := append(errs, warns...)
	if len(errs) > 0 || s == nil {
		return out, nil // the configs of an invalid spec would only echo its errors
	}
	sec, secWarns, err := spec.LoadSecrets(spec.SecretsDir(file))
	out = append(out, secWarns...)
	if err != nil {
		return nil, err
	}
	out = append(out, policy.Check(s)...)
	serrs, swarns := s.CheckSecrets(sec)
	out = append(append(out, serrs...), swarns...)
	if len(serrs) > 0 {
		return out, nil // compiling would fail on the same missing keys
	}
	hcs, err := compile.Compile(s, sec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	in := check.Input{Topology: s.Topology, Hub: s.Hub, PublicKeys: map[string]wgkey.Key{}}
	if s.Policy.Present && s.Topology == spec.TopologyMesh {
		pn := policy.Resolve(s)
		in.Apart = func(a, b string) bool { return !pn.CanTalk(pn.Hosts[a], pn.Hosts[b]) }
	}
	for _, hc := range hcs {
		c := hc.View() // check reads the peers, never changes them: no copy of a million
		c.Name = hc.Name
		in.Configs = append(in.Configs, c)
	}
	for _, h := range s.Hosts {
		if !h.PublicKey.IsZero() {
			in.PublicKeys[h.Name] = h.PublicKey
		}
	}
	hosts := make([]check.SpecHost, len(s.Hosts))
	for i, h := range s.Hosts {
		hosts[i] = check.SpecHost{Name: h.Name, Line: h.Line}
	}
	return check.MergeSpec(out, file, hosts, check.Configs(in)), nil
}
