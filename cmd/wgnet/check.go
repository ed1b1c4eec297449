package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/check"
	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func init() { register(newCheckCmd) }

func newCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check [FILE...] [-o text|json]",
		Short: "Lint a WireGuard network: every host's wg-quick config together, or the spec",
		Long: "check reads the wg-quick configs of a network, one per host, and lints them as a\n" +
			"whole: keys that match no host, AllowedIPs that collide or don't route, endpoints,\n" +
			"ports, forwarding, keepalives, MTU, file modes. A host is named after its file\n" +
			"(s2.conf) or, for one IFACE.conf per directory, the directory (out/s2/wg0.conf).\n" +
			"Without files it lints the spec (-f) and the configs it compiles to.\n" +
			"Each finding is FILE:LINE: SEVERITY: CODE: MESSAGE (docs/checks.md lists the codes);\n" +
			"-o json prints them as an array. Exit 0: no errors (warnings allowed); 1: errors;\n" +
			"2: could not run.",
		RunE: func(c *cobra.Command, args []string) error {
			format, err := outputFormat("text", "json")
			if err != nil {
				return err
			}
			return runCheck(c.Context(), args, format, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
}

// runCheck prints the findings on stdout and a summary on stderr.
func runCheck(ctx context.Context, files []string, format string, stdout, stderr io.Writer) error {
	var findings []check.Finding
	var err error
	if len(files) == 0 {
		findings, err = checkSpec(ctx, stderr)
	} else {
		findings, err = check.Files(ctx, files)
	}
	if err != nil {
		return err
	}
	if format == "json" {
		if findings == nil {
			findings = []check.Finding{}
		}
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		if err := e.Encode(findings); err != nil {
			return err
		}
	} else {
		for _, f := range findings {
			if _, err := fmt.Fprintln(stdout, f); err != nil {
				return err
			}
		}
	}
	errs, warns := check.Count(findings)
	fmt.Fprintf(stderr, "%s, %s\n", plural(errs, "error"), plural(warns, "warning"))
	if errs > 0 {
		return errProblems("") // the findings and the summary are out already
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// checkSpec lints the spec named by -f: its own problems (spec.Check, with
// lines in the spec), then, if it is valid, the configs it compiles to, as one
// network. Findings about compiled configs name the host (they have no file).
//
// checkSpec lints the spec: its own validation, its secrets, then the configs it
// compiles to, checked as one network. Findings about a compiled config point at
// the host's entry in the spec, since that is where the fix belongs.
func checkSpec(ctx context.Context, stderr io.Writer) ([]check.Finding, error) {
	file := global.specFile
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
	out := problemFindings(append(errs, warns...))
	if len(errs) > 0 || s == nil {
		return out, nil // the configs of an invalid spec would only echo its errors
	}
	sec, secWarns, err := spec.LoadSecrets(spec.SecretsDir(file))
	for _, w := range secWarns {
		out = append(out, check.Finding{File: spec.SecretsDir(file), Severity: check.Warning, Code: "secrets-mode", Message: w})
	}
	if err != nil {
		return nil, err
	}
	serrs, swarns := s.CheckSecrets(sec)
	out = append(out, problemFindings(append(serrs, swarns...))...)
	if len(serrs) > 0 {
		return out, nil // compiling would fail on the same missing keys
	}
	hcs, err := compile.Compile(s, sec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	in := check.Input{Topology: s.Topology, Hub: s.Hub, PublicKeys: map[string]wgkey.Key{}}
	for _, hc := range hcs {
		c := *hc.Config()
		c.Name = hc.Name
		in.Configs = append(in.Configs, &c)
		if h, ok := s.HostByName(hc.Name); ok && !h.PublicKey.IsZero() {
			in.PublicKeys[hc.Name] = h.PublicKey
		}
	}
	said := map[string]bool{} // spec codes already reported
	for _, f := range out {
		said[f.Code] = true
	}
	for _, f := range check.Configs(in) {
		if h, ok := s.HostByName(f.File); ok {
			if spc, ok := sameAsSpec[f.Code]; ok && (spc == "" || said[spc]) {
				continue // the spec's own finding says it, and says it better
			}
			f.Message = "compiled config of " + h.Name + ": " + f.Message
			f.File, f.Line = file, h.Line
		}
		out = append(out, f)
	}
	return out, nil
}

// problemFindings turns spec problems into findings.
func problemFindings(ps []spec.Problem) []check.Finding {
	var out []check.Finding
	for _, p := range ps {
		out = append(out, check.Finding{
			File: p.File, Line: p.Line, Severity: check.Severity(p.Severity.String()),
			Code: p.Code, Message: p.Msg,
		})
	}
	return out
}

// sameAsSpec maps a config check's code to the spec check that reports the same
// problem, so that `check` on a spec says each problem once.
var sameAsSpec = map[string]string{
	"keepalive-nat":  "spec-keepalive-missing",
	"docker-overlap": "spec-docker-overlap",
	"route-overlap":  "spec-route-overlap",
	"no-endpoint":    "spec-unreachable",
	"endpoint-port":  "spec-endpoint-listen-port",
	"endpoint-loop":  "spec-route-endpoint",
	// The spec knows each host's underlay MTU; the configs don't.
	"mtu": "",
}
