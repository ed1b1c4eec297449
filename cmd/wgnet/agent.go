package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/agent"
	"github.com/wgnet/wgnet/internal/inputfile"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/up"
)

func init() { register(newAgentCmd) }

// agentFlags are the flags of agent run and join.
type agentFlags struct {
	dir, backend, metrics string
	resolveEvery          time.Duration
}

func (f *agentFlags) bind(c *cobra.Command) {
	c.Flags().StringVar(&f.dir, "dir", agent.DefaultDir, "the agent's directory (0700): its config, credential, cached state and key")
	c.Flags().StringVar(&f.backend, "backend", "auto", "WireGuard backend: auto|kernel|userspace")
	c.Flags().StringVar(&f.metrics, "metrics", "", "serve Prometheus /metrics on this loopback address (e.g. 127.0.0.1:9586)")
	c.Flags().DurationVar(&f.resolveEvery, "resolve-every", 5*time.Minute, "reconcile the applied state again this often, resolving endpoint host names again (at least 1s)")
}

// load loads the joined agent of f.dir.
func (f *agentFlags) load() (*agent.Agent, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	return agent.New(opts)
}

// options builds the agent's options: the real host, through up.
func (f *agentFlags) options() (agent.Options, error) {
	switch f.backend {
	case up.BackendAuto, up.BackendKernel, up.BackendUserspace:
	default:
		return agent.Options{}, usageError{fmt.Errorf("--backend %q: want auto, kernel or userspace", f.backend)}
	}
	if f.metrics != "" {
		ap, err := netip.ParseAddrPort(f.metrics)
		if err != nil || !ap.Addr().IsLoopback() {
			return agent.Options{}, usageError{fmt.Errorf("--metrics %q: want a loopback address and port, such as 127.0.0.1:9586", f.metrics)}
		}
	}
	if f.resolveEvery < time.Second {
		return agent.Options{}, usageError{fmt.Errorf("--resolve-every %s: want 1s or more", f.resolveEvery)}
	}
	var so up.SyncOptions
	so.Backend = f.backend
	so.Log = os.Stderr
	return agent.Options{Dir: f.dir, Plane: &agent.UpPlane{Options: so}, ResolveEvery: f.resolveEvery,
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}, nil
}

func newAgentCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "agent join|run|leave|show",
		Short: "Follow a network on a controller: join with a token, then every change is applied here",
		Long: "agent joins this host to a network of a controller (wgnet token create) and keeps it\n" +
			"in step: the key pair is made here and the private key never leaves the host, the\n" +
			"controller's CA is pinned from the token, every change is applied within about a\n" +
			"second, and the network stays up while no controller is reachable. See docs/agent.md.",
	}
	c.AddCommand(newAgentJoinCmd(), newAgentRunCmd(), newAgentLeaveCmd(), newAgentShowCmd())
	return c
}

func newAgentJoinCmd() *cobra.Command {
	var f agentFlags
	var req agent.JoinRequest
	var tokenFile string
	var routes, allow []string
	var noRun bool
	c := &cobra.Command{
		Use:   "join TOKEN|--token-file F [--name N] [--endpoint HOST:PORT] [--route CIDR]... [--key-file F] [--allow dns,full-tunnel,table,fwmark,public-routes]",
		Short: "Join this host to a controller's network and keep following it",
		Long: "join makes the host's key pair (or uses --key-file), enrolls with the join token (the\n" +
			"controller's URLs and CA pin are in it), stores the agent's credential and, unless\n" +
			"--no-run, brings the interface up and keeps running as `agent run` does. Without\n" +
			"--endpoint, others reach this host at the address the controller sees it at, port\n" +
			"51820. Routes (--route) must be allowed by the token; never a default route.\n" +
			"Preshared keys are not offered in agent mode.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			if req.Token, err = joinToken(c.Context(), args, tokenFile); err != nil {
				return err
			}
			if req.Name == "" {
				req.Name = defaultHostName()
			}
			if !spec.ValidName(req.Name) {
				return usageError{fmt.Errorf("--name %q: a name is 1-63 of a-z 0-9 _ . - starting with a letter or digit", req.Name)}
			}
			for _, s := range routes {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return usageError{fmt.Errorf("--route %q: %w", s, err)}
				}
				req.Routes = append(req.Routes, p)
			}
			if err := agent.CheckOwnRoutes(req.Routes); err != nil {
				return usageError{err}
			}
			if req.Allow, err = agent.ParseAllowed(allow); err != nil {
				return usageError{err}
			}
			opts, err := f.options()
			if err != nil {
				return err
			}
			a, err := agent.Join(c.Context(), req, opts)
			if err != nil {
				return err
			}
			cfg := a.Config()
			out := struct {
				Network   string `json:"network"`
				Host      string `json:"host"`
				PublicKey string `json:"public_key"`
				Dir       string `json:"dir"`
			}{cfg.Network, cfg.Host, a.PublicKey().String(), f.dir}
			if err := report(c.OutOrStdout(), format, out, fmt.Sprintf("joined network %s as %s (public key %s); agent files in %s", cfg.Network, cfg.Host, a.PublicKey(), f.dir)); err != nil {
				return err
			}
			if noRun {
				return nil
			}
			return runAgent(c.Context(), a, f.metrics)
		},
	}
	f.bind(c)
	c.Flags().StringVar(&tokenFile, "token-file", "", "read the join token from this file")
	c.Flags().StringVar(&req.Name, "name", "", "the host's name in the network (default: the host name)")
	c.Flags().StringVar(&req.Endpoint, "endpoint", "", "HOST:PORT others reach this host at (default: the address the controller sees, port 51820)")
	c.Flags().StringArrayVar(&routes, "route", nil, "a subnet routed behind this host (CIDR, allowed by the token), repeatable")
	c.Flags().StringVar(&req.KeyFile, "key-file", "", "use this private key file (an adopted host) instead of making a key pair")
	c.Flags().StringVar(&req.Interface, "interface", "", "interface name (default: the controller's, wg0)")
	c.Flags().BoolVar(&noRun, "no-run", false, "join only; start it later with agent run")
	c.Flags().StringSliceVar(&allow, "allow", nil, "let the controller set these of the host's settings, which reach past its interface: "+strings.Join(agent.AllowNames, ",")+" (default: none; a state with one is refused)")
	return c
}

// joinToken reads the token from the argument or the file (exactly one).
func joinToken(ctx context.Context, args []string, file string) (string, error) {
	switch {
	case len(args) == 1 && file != "":
		return "", usageError{errors.New("agent join: give the token or --token-file, not both")}
	case len(args) == 1:
		return args[0], nil
	case file == "":
		return "", usageError{errors.New("agent join: give the join token (wgnet token create) or --token-file F")}
	}
	b, _, err := inputfile.Read(ctx, file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// defaultHostName is the system's host name as a network host name.
func defaultHostName() string {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(strings.ToLower(h), ".")
	return h
}

func newAgentRunCmd() *cobra.Command {
	var f agentFlags
	c := &cobra.Command{
		Use:   "run [--dir D]",
		Short: "Run a joined agent: up from its cached state, then follow the network",
		Long: "run restarts a joined agent (packaging/wgnet-agent.service): it brings the interface\n" +
			"up from the last good state on disk, without waiting for a controller, then follows\n" +
			"the network's change log, catching up from the revision it had applied.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := f.load()
			if err != nil {
				return err
			}
			return runAgent(c.Context(), a, f.metrics)
		},
	}
	f.bind(c)
	return c
}

// runAgent runs a until ctx is done, with /metrics on addr when given.
func runAgent(ctx context.Context, a *agent.Agent, addr string) error {
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.Registry(), promhttp.HandlerOpts{}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
	}
	return a.Run(ctx)
}

func newAgentLeaveCmd() *cobra.Command {
	var f agentFlags
	var force bool
	c := &cobra.Command{
		Use:   "leave [--dir D] [--force]",
		Short: "Remove this host from its network, take the interface down, delete the agent's files",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := f.load()
			if err != nil {
				return err
			}
			cfg := a.Config()
			if err := a.Leave(c.Context(), force); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s left network %s\n", cfg.Host, cfg.Network)
			return nil
		},
	}
	f.bind(c)
	c.Flags().BoolVar(&force, "force", false, "leave locally even when no controller can be reached")
	return c
}

func newAgentShowCmd() *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:   "show [--dir D]",
		Short: "Show the joined agent: network, host, controllers, the revision cached (never the credential)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			cfg, err := agent.LoadConfig(dir)
			if err != nil {
				return err
			}
			cache, err := agent.LoadCache(dir)
			if err != nil {
				return err
			}
			unresolved, err := agent.LoadUnresolved(dir)
			if err != nil {
				return err
			}
			out := struct {
				Network   string   `json:"network"`
				Host      string   `json:"host"`
				URLs      []string `json:"urls"`
				CAHash    string   `json:"ca"`
				KeyFile   string   `json:"key_file"`
				Revision  uint64   `json:"revision_applied"`
				Interface string   `json:"interface,omitempty"`
				// Unresolved are the peers the running agent configured
				// without an endpoint, their host name never resolved.
				Unresolved []agent.UnresolvedPeer `json:"unresolved"`
			}{Network: cfg.Network, Host: cfg.Host, URLs: cfg.URLs, CAHash: cfg.CAHash, KeyFile: cfg.KeyFile, Interface: cfg.Interface,
				Unresolved: append([]agent.UnresolvedPeer{}, unresolved...)}
			if cache != nil {
				out.Revision = cache.State.Revision
			}
			text := fmt.Sprintf("host %s of network %s\ncontrollers %s (ca %s)\nkey file %s\nrevision applied %d",
				out.Host, out.Network, strings.Join(out.URLs, " "), out.CAHash, out.KeyFile, out.Revision)
			for _, u := range unresolved {
				text += "\n" + unresolvedText(u.Peer, u.Host, u.Error, u.Since.Format(time.RFC3339))
			}
			return report(c.OutOrStdout(), format, out, text)
		},
	}
	c.Flags().StringVar(&dir, "dir", agent.DefaultDir, "the agent's directory")
	return c
}

// unresolvedText says that a peer's endpoint host name has never resolved
// on a host, for `agent show` and `status`.
func unresolvedText(peer, host, why, since string) string {
	return fmt.Sprintf("peer %s: endpoint host name %s has not resolved since %s (%s); configured without an endpoint, it can still dial in", peer, host, since, why)
}
