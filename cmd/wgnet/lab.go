package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/lab"
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
			"or mesh everything reaches everything. Exit 1 if a pair is not as intended.\n\n" +
			"--bench A B measures TCP throughput from host A to host B through the tunnel, next to the\n" +
			"same copy between two stacks joined without WireGuard.",
		RunE: func(c *cobra.Command, args []string) error {
			return runLab(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), args, f, global)
		},
	}
	c.Flags().BoolVar(&f.bench, "bench", false, "measure throughput between the hosts named by the first two arguments")
	c.Flags().DurationVar(&f.duration, "duration", lab.DefaultBenchDuration, "how long each --bench copy runs")
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
	hosts, notes, err := labHosts(args, g.specFile, stderr)
	if err != nil {
		return err
	}
	text := format == "text"
	var disp *lab.Display
	opts := labOptions(f, stderr)
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
	opts := lab.Options{ProbeTimeout: f.timeout}
	if f.debug {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return opts
}

// labHosts loads what lab runs: the given wg-quick configs, else the spec in
// specFile and its secrets (keys the secrets lack are made up for the lab).
func labHosts(paths []string, specFile string, stderr io.Writer) ([]intent.Host, []string, error) {
	if len(paths) == 0 {
		l, err := lockToRead(specFile)
		if err != nil {
			return nil, nil, err
		}
		defer l.Unlock()
		s, err := spec.Load(specFile)
		if err != nil {
			return nil, nil, err
		}
		sec, warns, err := spec.LoadSecrets(spec.SecretsDir(specFile))
		for _, w := range warns {
			fmt.Fprintln(stderr, "wgnet: warning:", w.Message)
		}
		if err != nil {
			return nil, nil, err
		}
		hosts, notes, err := lab.FromSpec(s, sec)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", specFile, err)
		}
		return hosts, notes, nil
	}
	names := wgconf.HostNames(paths)
	var cfgs []*wgconf.Config
	for i, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, err
		}
		cfg, err := wgconf.Parse(p, src)
		if err != nil {
			return nil, nil, err
		}
		cfg.Name = names[i]
		cfgs = append(cfgs, cfg)
	}
	hosts, notes := lab.FromConfigs(cfgs)
	return hosts, notes, nil
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
