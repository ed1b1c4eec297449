package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/lab"
	"github.com/wgnet/wgnet/internal/policy"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
)

func init() { register(newLabCmd) }

// labFlags are the flags of lab (and, where they apply, demo).
type labFlags struct {
	bench    bool
	duration time.Duration
	timeout  time.Duration
	debug    bool
	noPolicy bool
	ports    []uint16 // probed besides lab.ProbePort (set by --no-policy)
	udpPorts []uint16
}

func (f *labFlags) bindCommon(c *cobra.Command) {
	c.Flags().DurationVar(&f.timeout, "timeout", lab.DefaultProbeTimeout, "time each probe may take")
	c.Flags().BoolVar(&f.debug, "debug", false, "log wireguard-go's messages to stderr")
}

func newLabCmd() *cobra.Command {
	var f labFlags
	c := &cobra.Command{
		Use:   "lab [CONFIG...] [--bench A B]",
		Short: "Run the whole network in this process, without root, and show who can reach whom",
		Long: "lab runs every host of the spec (-f), or every given wg-quick config (one per host,\n" +
			"named after its file: s2.conf or out/s2/wg0.conf is host s2), as a wireguard-go device\n" +
			"on an in-process network stack, speaking real WireGuard over UDP on 127.0.0.1. Each\n" +
			"routed subnet is stood in for by its first address, on its own stack behind its host.\n" +
			"Hosts forward only as their configs say. It probes every host to every address of every\n" +
			"other host (ICMP echo and TCP connect) and prints the matrix next to the intent: in a hub\n" +
			"or mesh everything reaches everything. With a policy (docs/policy.md) each pair is probed\n" +
			"per protocol and port (ICMP, TCP 7 and every TCP and UDP port the rules name, each with a\n" +
			"listener) both ways, held to what the policy allows, and each result names its rule.\n" +
			"Exit 1 if a pair is not as intended.\n\n" +
			"--bench A B measures TCP throughput from host A to host B through the tunnel, next to the\n" +
			"same copy between two stacks joined without WireGuard.",
		RunE: func(c *cobra.Command, args []string) error {
			return runLab(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), args, f, global)
		},
	}
	c.Flags().BoolVar(&f.bench, "bench", false, "measure throughput between the hosts named by the first two arguments")
	c.Flags().DurationVar(&f.duration, "duration", lab.DefaultBenchDuration, "how long each --bench copy runs")
	c.Flags().BoolVar(&f.noPolicy, "no-policy", false, "a control run: the spec without its policy, probing the same ports (everything should pass)")
	f.bindCommon(c)
	return c
}

func runLab(ctx context.Context, stdout, stderr io.Writer, args []string, f labFlags, g globalFlags) error {
	format, err := outputFormat(g.output, "text", "json")
	if err != nil {
		return err
	}
	var pair []string
	if f.bench {
		if len(args) < 2 {
			return usageError{fmt.Errorf("--bench needs two host names: wgnet lab --bench A B [CONFIG...]")}
		}
		pair, args = args[:2], args[2:]
	}
	in, err := labHosts(args, g.specFile, stderr)
	if err != nil {
		return err
	}
	hosts, s, notes := in.hosts, in.spec, in.notes
	if f.noPolicy && s != nil && s.Policy.Present {
		// The control run: the same network and ports, nothing filtered.
		pf := &policy.Resolve(s).Filter
		tcpPorts, udpPorts := policy.ProbePorts(policy.TCP, pf), policy.ProbePorts(policy.UDP, pf)
		cp := *s
		cp.Policy = spec.Policy{}
		if hosts, notes, err = lab.FromSpec(&cp, in.secrets); err != nil {
			return err
		}
		s = &cp
		f.ports, f.udpPorts = tcpPorts, udpPorts
	}
	text := format == "text"
	var disp *lab.Display
	opts := labOptions(f, stderr)
	labPolicy(&opts, s, hosts)
	if f.noPolicy {
		// The same probes as with the policy (its ports, from the subnets too),
		// every one meant to pass.
		opts.Policy = func(policy.Packet) policy.Verdict {
			return policy.Verdict{Accept: true, Rule: -1, Origin: "no policy (--no-policy)"}
		}
	}
	if text {
		disp = lab.NewDisplay(stdout, isTerminal(stdout))
		opts.Progress = disp.Event
		for _, n := range notes {
			fmt.Fprintln(stdout, "note:", n)
		}
	}
	l, err := lab.Start(ctx, hosts, opts)
	if err != nil {
		return err
	}
	defer l.Close()

	if f.bench {
		if disp != nil {
			disp.Done()
			fmt.Fprintf(stdout, "Copying over TCP from %s to %s for %s, twice: through WireGuard, then without it...\n", pair[0], pair[1], f.duration)
		}
		res, err := l.Bench(ctx, pair[0], pair[1], f.duration)
		if err != nil {
			return err
		}
		if !text {
			return writeJSON(stdout, struct {
				lab.BenchResult
				Ratio float64 `json:"ratio"`
			}{res, res.Ratio()})
		}
		fmt.Fprintf(stdout, "through WireGuard:  %6.2f Gbit/s  (%s)\n", res.Tunnel, strings.Join(res.Path, " → "))
		fmt.Fprintf(stdout, "without WireGuard:  %6.2f Gbit/s  (two in-process stacks joined by packet queues)\n", res.Direct)
		fmt.Fprintf(stdout, "ratio:              %6.2f\n", res.Ratio())
		fmt.Fprintln(stdout, "Both run inside this process on the same CPUs: the ratio is what WireGuard costs here, not a forecast for real servers.")
		return nil
	}

	m, err := l.Probe(ctx)
	if err != nil {
		return err
	}
	st, err := l.Status()
	if err != nil {
		return err
	}
	notes = append(notes, l.Notes()...)
	problems := len(m.Problems())
	if !text {
		err := writeJSON(stdout, labReport{Hosts: st, Matrix: m, Problems: problems, Notes: notes, Unproven: lab.Unproven})
		if err != nil {
			return err
		}
	} else {
		disp.Done()
		lab.WriteReport(stdout, st, m, time.Now())
		lab.WriteUnproven(stdout)
	}
	if problems > 0 {
		return errProblems("lab: %d of %d pairs are not as intended", problems, len(m.Probes))
	}
	return nil
}

// labReport is lab's -o json output.
type labReport struct {
	Hosts    []lab.HostStatus `json:"hosts"`
	Matrix   *lab.Matrix      `json:"matrix"`
	Problems int              `json:"problems"`
	Notes    []string         `json:"notes,omitempty"`
	Unproven []string         `json:"unproven"`
}

func labOptions(f labFlags, stderr io.Writer) lab.Options {
	opts := lab.Options{ProbeTimeout: f.timeout, Ports: f.ports, UDPPorts: f.udpPorts}
	if f.debug {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return opts
}

// labInput is what lab runs: the hosts, and the spec and secrets they come
// from (nil and zero for configs).
type labInput struct {
	hosts   []intent.Host
	spec    *spec.Spec
	secrets spec.Secrets
	notes   []string
}

// labHosts loads what lab runs: the given wg-quick configs, else the spec in
// specFile and its secrets (keys the secrets lack are made up for the lab).
func labHosts(paths []string, specFile string, stderr io.Writer) (labInput, error) {
	if len(paths) == 0 {
		l, err := lockToRead(specFile)
		if err != nil {
			return labInput{}, err
		}
		defer l.Unlock()
		s, err := spec.Load(specFile)
		if err != nil {
			return labInput{}, err
		}
		sec, warns, err := spec.LoadSecrets(spec.SecretsDir(specFile))
		for _, w := range warns {
			fmt.Fprintln(stderr, "wgnet: warning:", w.Message)
		}
		if err != nil {
			return labInput{}, err
		}
		hosts, notes, err := lab.FromSpec(s, sec)
		if err != nil {
			return labInput{}, fmt.Errorf("%s: %w", specFile, err)
		}
		return labInput{hosts, s, sec, notes}, nil
	}
	names := wgconf.HostNames(paths)
	var cfgs []*wgconf.Config
	for i, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return labInput{}, err
		}
		cfg, err := wgconf.Parse(p, src)
		if err != nil {
			return labInput{}, err
		}
		cfg.Name = names[i]
		cfgs = append(cfgs, cfg)
	}
	hosts, notes := lab.FromConfigs(cfgs)
	return labInput{hosts: hosts, notes: notes}, nil
}

// labPolicy holds the lab's probes to the network's policy: the spec's (s),
// else, for configs, each destination host's own filter; and probes the TCP
// ports the rules name. Without a policy it changes nothing but the ports
// (--no-policy's control run).
func labPolicy(opts *lab.Options, s *spec.Spec, hosts []intent.Host) {
	if s != nil {
		if !s.Policy.Present {
			return
		}
		n := policy.Resolve(s)
		opts.Ports, opts.UDPPorts = policy.ProbePorts(policy.TCP, &n.Filter), policy.ProbePorts(policy.UDP, &n.Filter)
		opts.Policy = func(p policy.Packet) policy.Verdict { return policy.Eval(&n.Filter, p) }
		return
	}
	var filters []*intent.Filter
	for i := range hosts {
		if hosts[i].Firewall.Filter.Enabled {
			filters = append(filters, &hosts[i].Firewall.Filter)
		}
	}
	if len(filters) == 0 {
		return
	}
	opts.Ports, opts.UDPPorts = policy.ProbePorts(policy.TCP, filters...), policy.ProbePorts(policy.UDP, filters...)
	opts.Policy = func(p policy.Packet) policy.Verdict {
		for i := range hosts {
			h := &hosts[i]
			if owns(h, p.Dst) {
				return policy.Eval(&h.Firewall.Filter, p)
			}
		}
		return policy.Verdict{Accept: true, Rule: -1, Origin: "no host filters it"}
	}
}

// owns reports whether a is one of h's addresses or behind it.
func owns(h *intent.Host, a netip.Addr) bool {
	for _, p := range h.Addresses {
		if p.Addr() == a {
			return true
		}
	}
	for _, p := range h.Routes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal, for live progress.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
