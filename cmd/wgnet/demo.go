package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/lab"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func init() { register(newDemoCmd) }

func newDemoCmd() *cobra.Command {
	var f labFlags
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run a built-in example network in this process and grow it live",
		Long: "demo builds the classic example in memory (three servers in three clouds, s1 the hub of\n" +
			"192.168.100.0/24, each with a container subnet), prints its configs, runs it as `wgnet lab`\n" +
			"does, shows status and the reachability matrix, then adds a fourth server live: only the\n" +
			"difference is applied, and the sessions already running are shown to survive.\n" +
			"Keys are generated in memory and never shown. No root needed.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runDemo(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), f, global)
		},
	}
	f.bindCommon(c)
	return c
}

// demoStage is the state of the demo network at one point, for -o json.
type demoStage struct {
	Hosts  []lab.HostStatus `json:"hosts"`
	Matrix *lab.Matrix      `json:"matrix"`
}

// sessionCheck compares one peering of the first network before and after the
// fourth server joined.
type sessionCheck struct {
	Host             string    `json:"host"`
	Peer             string    `json:"peer"`
	HandshakesBefore int       `json:"handshakes_before"`
	HandshakesAfter  int       `json:"handshakes_after"`
	LastBefore       time.Time `json:"last_handshake_before"`
	LastAfter        time.Time `json:"last_handshake_after"`
	Kept             bool      `json:"kept"`
}

func runDemo(ctx context.Context, stdout, stderr io.Writer, f labFlags, g globalFlags) error {
	start := time.Now()
	format, err := outputFormat(g.output, "text", "json")
	if err != nil {
		return err
	}
	d := &demo{out: stdout}
	if format != "text" {
		d.out = io.Discard
	}
	if err := d.compile(); err != nil {
		return err
	}
	opts := labOptions(f, stderr)
	if format == "text" {
		d.disp = lab.NewDisplay(stdout, isTerminal(stdout))
		opts.Progress = d.disp.Event
		fmt.Fprintln(d.out, "Bringing up s1, s2, s3 in this process (wireguard-go on gVisor stacks, UDP on 127.0.0.1)...")
	}
	l, err := lab.Start(ctx, d.hosts, opts)
	if err != nil {
		return err
	}
	defer l.Close()
	d.lab = l
	first, err := d.probe(ctx)
	if err != nil {
		return err
	}
	changes, err := d.grow(ctx)
	if err != nil {
		return err
	}
	second, err := d.probe(ctx)
	if err != nil {
		return err
	}
	checks := d.sessions(first, second)
	lab.WriteUnproven(d.out)
	l.Close()
	elapsed := time.Since(start)
	fmt.Fprintf(d.out, "\nDone in %.2fs. Try it on your own network: wgnet lab -f wgnet.yaml, or wgnet lab out/*/wg0.conf.\n", elapsed.Seconds())

	res := demoResult{Before: first, Changes: changes, After: second, Sessions: checks, Unproven: lab.Unproven, Seconds: elapsed.Seconds()}
	res.Problems = len(first.Matrix.Problems()) + len(second.Matrix.Problems())
	if format != "text" {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	}
	return res.verdict()
}

// demoResult is what `wgnet demo -o json` prints.
type demoResult struct {
	Before   demoStage         `json:"before"`
	Changes  []lab.HostChanges `json:"changes"`
	After    demoStage         `json:"after"`
	Sessions []sessionCheck    `json:"sessions"`
	Problems int               `json:"problems"`
	Unproven []string          `json:"unproven"`
	Seconds  float64           `json:"seconds"`
}

// verdict fails the demo when a probe was not as intended or a session of the
// first network was reset while s4 joined.
func (r demoResult) verdict() error {
	if r.Problems > 0 {
		return errProblems("demo: %d probes not as intended", r.Problems)
	}
	if kept := keptCount(r.Sessions); kept != len(r.Sessions) {
		return errProblems("demo: %d of %d sessions were reset while s4 joined", len(r.Sessions)-kept, len(r.Sessions))
	}
	return nil
}

func keptCount(checks []sessionCheck) int {
	kept := 0
	for _, c := range checks {
		if c.Kept {
			kept++
		}
	}
	return kept
}

// demo is one run of `wgnet demo`: the network, its lab, and where the text
// report goes.
type demo struct {
	out   io.Writer    // the text report; io.Discard under -o json
	disp  *lab.Display // live progress; nil under -o json
	s     *spec.Spec
	sec   spec.Secrets
	hosts []intent.Host // the compiled network, as it is now
	lab   *lab.Lab
}

// compile builds the demo network, compiles it and prints its introduction
// and every host's config.
func (d *demo) compile() error {
	s, sec, err := lab.Demo()
	if err != nil {
		return err
	}
	d.s, d.sec = s, sec
	if d.hosts, err = compile.Compile(s, sec); err != nil {
		return fmt.Errorf("demo: compile: %w", err)
	}
	fmt.Fprintln(d.out, "wgnet demo: three servers in three clouds, s1 the hub of 192.168.100.0/24, each with a container")
	fmt.Fprintln(d.out, "subnet. The spec is built in memory; keys are generated in memory and not shown.")
	fmt.Fprintln(d.out)
	for _, h := range d.hosts {
		printConfig(d.out, h)
	}
	return nil
}

// grow adds s4 to the spec, recompiles, applies only the difference to the
// running lab and prints what changed and s4's config.
func (d *demo) grow(ctx context.Context) ([]lab.HostChanges, error) {
	if err := lab.DemoAddHost(d.s, d.sec); err != nil {
		return nil, err
	}
	var err error
	if d.hosts, err = compile.Compile(d.s, d.sec); err != nil {
		return nil, fmt.Errorf("demo: compile: %w", err)
	}
	fmt.Fprintln(d.out, "Adding s4 (192.168.100.13, containers 10.0.9.0/24) live: recompiled; only the difference goes to the")
	fmt.Fprintln(d.out, "running devices (no peer or allowed-ip list is replaced, no private key or port touched):")
	changes, err := d.lab.Apply(ctx, d.hosts)
	if err != nil {
		return nil, err
	}
	if d.disp != nil {
		d.disp.Done()
	}
	for _, c := range changes {
		if c.Added {
			fmt.Fprintf(d.out, "  %s: new host, started with its config\n", c.Host)
			continue
		}
		for _, ch := range c.Changes {
			fmt.Fprintf(d.out, "  %s: %s\n", c.Host, ch)
		}
	}
	fmt.Fprintln(d.out)
	for _, h := range d.hosts {
		if h.Name == "s4" {
			printConfig(d.out, h)
		}
	}
	return changes, nil
}

// sessions compares the sessions of the first network before and after s4
// joined, prints the table, and returns the comparison.
func (d *demo) sessions(first, second demoStage) []sessionCheck {
	checks := keptSessions(first.Hosts, second.Hosts)
	kept := keptCount(checks)
	fmt.Fprintf(d.out, "Sessions of the first three servers while s4 joined: %d of %d kept (no new handshake).\n", kept, len(checks))
	t := newDemoTable(d.out)
	fmt.Fprintln(t, "HOST\tPEER\tHANDSHAKES BEFORE\tAFTER\tLATEST HANDSHAKE BEFORE\tAFTER\t")
	for _, c := range checks {
		state := "kept"
		if !c.Kept {
			state = "NEW SESSION"
		}
		fmt.Fprintf(t, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", c.Host, c.Peer, c.HandshakesBefore, c.HandshakesAfter,
			c.LastBefore.Format("15:04:05.000"), c.LastAfter.Format("15:04:05.000"), state)
	}
	t.Flush()
	fmt.Fprintln(d.out)
	return checks
}

// probe probes the lab and prints status and matrix.
func (d *demo) probe(ctx context.Context) (demoStage, error) {
	return demoProbe(ctx, d.lab, d.out, d.disp)
}

// demoProbe probes the lab and prints status and matrix.
func demoProbe(ctx context.Context, l *lab.Lab, out io.Writer, disp *lab.Display) (demoStage, error) {
	m, err := l.Probe(ctx)
	if err != nil {
		return demoStage{}, err
	}
	st, err := l.Status()
	if err != nil {
		return demoStage{}, err
	}
	if disp != nil {
		disp.Done()
	}
	lab.WriteReport(out, st, m, time.Now())
	return demoStage{Hosts: st, Matrix: m}, nil
}

// printConfig prints a host's wg-quick config with its private key left out: the
// demo's keys are throw-away, but wgnet does not print private keys.
func printConfig(w io.Writer, h intent.Host) {
	fmt.Fprintf(w, "── %s: %s.conf ──\n", h.Name, "wg0")
	for _, line := range strings.SplitAfter(string(h.WgQuick()), "\n") {
		if strings.HasPrefix(line, "PrivateKey") {
			line = "PrivateKey = (generated in memory, not shown)\n"
		}
		fmt.Fprint(w, line)
	}
	fmt.Fprintln(w)
}

// keptSessions compares every peering that had a session before with after: a
// session is kept when no handshake happened since.
func keptSessions(before, after []lab.HostStatus) []sessionCheck {
	var out []sessionCheck
	for _, hb := range before {
		for _, pb := range hb.Peers {
			if pb.LastHandshake.IsZero() {
				continue
			}
			c := sessionCheck{Host: hb.Host, Peer: pb.Peer, HandshakesBefore: pb.Handshakes, LastBefore: pb.LastHandshake}
			if pa, ok := findPeer(after, hb.Host, pb.PublicKey); ok {
				c.HandshakesAfter, c.LastAfter = pa.Handshakes, pa.LastHandshake
				c.Kept = pa.Handshakes == pb.Handshakes && pa.LastHandshake.Equal(pb.LastHandshake)
			}
			out = append(out, c)
		}
	}
	return out
}

func findPeer(hosts []lab.HostStatus, host string, k wgkey.Key) (lab.PeerStatus, bool) {
	for _, h := range hosts {
		if h.Host != host {
			continue
		}
		for _, p := range h.Peers {
			if p.PublicKey == k {
				return p, true
			}
		}
	}
	return lab.PeerStatus{}, false
}

func newDemoTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }
