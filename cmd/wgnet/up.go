package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgconf"
)

func init() { register(newUpCmd) }

// upFlags are up's own flags.
type upFlags struct {
	host         string
	backend      string
	noForwarding bool
}

func newUpCmd() *cobra.Command {
	var f upFlags
	c := &cobra.Command{
		Use:   "up NAME|CONFIG | up --host HOST",
		Short: "Bring a WireGuard interface up, like wg-quick up (kernel or userspace)",
		Long: "up creates the interface and sets its key, port, peers, addresses, MTU and a route\n" +
			"for every AllowedIPs prefix, turns on forwarding (narrowly, restored by down) and\n" +
			"TCP MSS clamping where the host forwards, and runs the PreUp/PostUp hooks.\n\n" +
			"NAME means /etc/wireguard/NAME.conf, as with wg-quick; CONFIG is a path ending in\n" +
			"IFACE.conf; --host HOST compiles HOST's config from the spec (-f) instead.\n" +
			"Everything is checked before anything is touched; a failure undoes what was done.\n" +
			"The kernel backend is used when the WireGuard module is there; otherwise upstream\n" +
			"wireguard-go runs in the background (--backend picks one). See docs/up.md.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runUp(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), args, f)
		},
	}
	c.Flags().StringVar(&f.host, "host", "", "compile this host's config from the spec (-f) and bring it up")
	c.Flags().StringVar(&f.backend, "backend", "auto", "auto|kernel|userspace")
	c.Flags().BoolVar(&f.noForwarding, "no-forwarding", false, "leave IP forwarding and MSS clamping alone")
	return c
}

// stateDir is where up keeps its state; WGNET_STATE_DIR overrides it (for tests,
// and for hosts where /run is not the place).
func stateDir() string {
	if d := os.Getenv("WGNET_STATE_DIR"); d != "" {
		return d
	}
	return up.DefaultStateDir
}

// configDir is where NAME resolves to NAME.conf, like wg-quick's /etc/wireguard;
// WGNET_CONFIG_DIR overrides it.
func configDir() string {
	if d := os.Getenv("WGNET_CONFIG_DIR"); d != "" {
		return d
	}
	return "/etc/wireguard"
}

// resolveConfigArg turns up's and down's argument into an interface name and, for
// up, a config path, the way wg-quick does.
func resolveConfigArg(arg string) (name, path string, err error) {
	if up.ValidName(arg) {
		return arg, filepath.Join(configDir(), arg+".conf"), nil
	}
	base := filepath.Base(arg)
	name, ok := strings.CutSuffix(base, ".conf")
	if !ok || !up.ValidName(name) {
		return "", "", usageError{fmt.Errorf("%q: not an interface name (%s) nor a path to IFACE.conf", arg, "^[a-zA-Z0-9_=+.-]{1,15}$")}
	}
	return name, arg, nil
}

func runUp(ctx context.Context, stdout, stderr io.Writer, args []string, f upFlags) error {
	format, err := outputFormat("text", "json")
	if err != nil {
		return err
	}
	switch f.backend {
	case up.BackendAuto, up.BackendKernel, up.BackendUserspace:
	default:
		return usageError{fmt.Errorf("--backend %q: want auto, kernel or userspace", f.backend)}
	}
	var req up.Request
	switch {
	case f.host != "" && len(args) > 0:
		return usageError{fmt.Errorf("give either NAME|CONFIG or --host, not both")}
	case f.host != "":
		n, err := loadNetwork(stderr)
		if err != nil {
			return err
		}
		hc, err := n.host(f.host)
		if err != nil {
			return err
		}
		req = up.Request{
			Name:      n.spec.InterfaceName(),
			Config:    hc.Config,
			ForwardV4: hc.ForwardV4,
			ForwardV6: hc.ForwardV6,
			Source:    fmt.Sprintf("%s --host %s", n.path, f.host),
		}
	case len(args) == 1:
		name, path, err := resolveConfigArg(args[0])
		if err != nil {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o007 != 0 {
			fmt.Fprintf(stderr, "wgnet: warning: %s is world accessible; it holds a private key\n", path)
		}
		cfg, err := wgconf.Parse(path, src)
		if err != nil {
			return err
		}
		cfg.Name = name
		req = up.Request{Name: name, Config: cfg, Source: path}
	default:
		return usageError{fmt.Errorf("up needs NAME, CONFIG or --host HOST")}
	}
	st, err := up.Up(ctx, req, up.Options{
		Backend:      f.backend,
		StateDir:     stateDir(),
		NoForwarding: f.noForwarding,
		// The compiler's own forwarding hooks: up does their job natively.
		ForwardingHooks: []string{compile.HookForwardV4, compile.HookForwardV6},
		Log:             stderr,
	})
	if err != nil {
		return err
	}
	if format == "json" {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		return e.Encode(st)
	}
	how := st.Backend
	if st.PID != 0 {
		how += fmt.Sprintf(", pid %d", st.PID)
	}
	_, err = fmt.Fprintf(stderr, "wgnet: %s is up (%s)\n", st.Name, how)
	return err
}
