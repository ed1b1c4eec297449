package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/check"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgconf"
)

func init() { register(newUpCmd) }

// upFlags are up's own flags.
type upFlags struct {
	host         string
	backend      string
	noForwarding bool
	hostFirewall string // --host-firewall: the opt-in, over the config's
	confirm      time.Duration
	confirmSet   bool // --confirm was given, so it must be positive
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
			f.confirmSet = c.Flags().Changed("confirm")
			return runUp(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), args, f, global)
		},
	}
	c.Flags().StringVar(&f.host, "host", "", "compile this host's config from the spec (-f) and bring it up")
	c.Flags().StringVar(&f.backend, "backend", "auto", "auto|kernel|userspace")
	c.Flags().BoolVar(&f.noForwarding, "no-forwarding", false, "leave IP forwarding and MSS clamping alone")
	hostFirewallFlag(c, &f.hostFirewall)
	c.Flags().DurationVar(&f.confirm, "confirm", 0, "take the interface down again unless \"wgnet confirm NAME\" runs within this `DURATION` (e.g. 2m)")
	return c
}

// stateDir is where up keeps its state: a directory per network namespace
// (up.NetnsStateDir). WGNET_STATE_DIR overrides it (for tests, and for hosts
// where /run is not the place) and is used as given; a record there of another
// namespace's interface is still refused.
func stateDir() string {
	if d := os.Getenv("WGNET_STATE_DIR"); d != "" {
		return d
	}
	return up.NetnsStateDir()
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
	if arg == "." || arg == ".." {
		return "", "", usageError{fmt.Errorf("%q: a directory, not an interface name nor a path to IFACE.conf", arg)}
	}
	base := filepath.Base(arg)
	name, ok := strings.CutSuffix(base, ".conf")
	if !ok || !up.ValidName(name) {
		return "", "", usageError{fmt.Errorf("%q: not an interface name (%s) nor a path to IFACE.conf", arg, "^[a-zA-Z0-9_=+.-]{1,15}$")}
	}
	return name, arg, nil
}

func runUp(ctx context.Context, stdout, stderr io.Writer, args []string, f upFlags, g globalFlags) error {
	format, err := outputFormat(g.output, "text", "json")
	if err != nil {
		return err
	}
	if f.confirmSet && f.confirm <= 0 {
		return usageError{fmt.Errorf("--confirm %v: must be positive", f.confirm)}
	}
	switch f.backend {
	case up.BackendAuto, up.BackendKernel, up.BackendUserspace:
	default:
		return usageError{fmt.Errorf("--backend %q: want auto, kernel or userspace", f.backend)}
	}
	shortLivedGC()
	req, err := upRequest(args, f.host, g.specFile, stderr)
	if err != nil {
		return err
	}
	if err := setHostFirewall(&req, f.hostFirewall); err != nil {
		return err
	}
	opts := up.Options{
		Backend:      f.backend,
		StateDir:     stateDir(),
		NoForwarding: f.noForwarding,
		Log:          stderr,
	}
	var st *up.State
	var pending *up.Pending
	if f.confirm > 0 {
		st, pending, err = up.TryUp(ctx, req, up.SyncOptions{Options: opts, Confirm: up.Confirm{Within: f.confirm}})
	} else {
		st, err = up.Up(ctx, req, opts)
	}
	if err != nil {
		return advise(err)
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
	if pending != nil {
		_, err = fmt.Fprintf(stderr, "wgnet: %s is up (%s); run `wgnet confirm %s` by %s to keep it, or it is taken down again\n",
			st.Name, how, st.Name, pending.Deadline.Local().Format(time.TimeOnly))
		return err
	}
	_, err = fmt.Fprintf(stderr, "wgnet: %s is up (%s)\n", st.Name, how)
	return err
}

// upRequest turns the arguments of up and sync into a request: NAME or CONFIG as
// wg-quick takes them, NAME CONFIG (sync), or --host HOST from the spec (with an
// optional NAME for the interface; specFile is -f).
func upRequest(args []string, host, specFile string, stderr io.Writer) (up.Request, error) {
	switch {
	case host != "" && len(args) > 1:
		return up.Request{}, usageError{fmt.Errorf("with --host, give at most the interface NAME")}
	case host != "":
		n, err := loadSpecNetwork(specFile, stderr)
		if err != nil {
			return up.Request{}, err
		}
		hc, err := n.host(host)
		if err != nil {
			return up.Request{}, err
		}
		name := n.spec.InterfaceName()
		if len(args) == 1 {
			name = args[0]
		}
		return up.Request{Name: name, Host: hc, Source: fmt.Sprintf("%s --host %s", n.path, host)}, nil
	case len(args) == 1 || len(args) == 2:
		name, path, err := resolveConfigArg(args[0])
		if err != nil {
			return up.Request{}, err
		}
		if len(args) == 2 {
			if !up.ValidName(args[0]) {
				return up.Request{}, usageError{fmt.Errorf("%q: not an interface name (%s)", args[0], "^[a-zA-Z0-9_=+.-]{1,15}$")}
			}
			path = args[1]
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return up.Request{}, err
		}
		if d, ok := worldReadable(path); ok {
			fmt.Fprintln(stderr, "wgnet: warning:", d.Located())
		}
		cfg, err := wgconf.Parse(path, src)
		if err != nil {
			return up.Request{}, err
		}
		cfg.Name = name
		h, read := intent.FromConfig(cfg)
		for _, line := range read.Converted {
			fmt.Fprintf(stderr, "wgnet: not running hook %q: wgnet does this itself (forwarding narrowly on the interface, restored on down; a key file read natively)\n", line)
		}
		return up.Request{Name: name, Host: h, Source: path}, nil
	}
	return up.Request{}, usageError{fmt.Errorf("give NAME, CONFIG or --host HOST")}
}

// worldReadable is check's world-readable warning for a config file that
// others can read or write, as up reads it.
func worldReadable(path string) (diag.Diagnostic, bool) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o007 == 0 {
		return diag.Diagnostic{}, false
	}
	return diag.Diagnostic{File: path, Severity: diag.Warning, Code: check.CodeWorldReadable,
		Message: fmt.Sprintf("mode %04o lets others read or change it, and it holds a private key; chmod 600 %s", fi.Mode().Perm(), path)}, true
}

// advise adds to an error of package up what the user can do about it.
func advise(err error) error {
	var se *up.StateError
	if !errors.As(err, &se) {
		return err
	}
	switch {
	case errors.Is(err, up.ErrAlreadyUp):
		return fmt.Errorf("%w; run `wgnet down %s` first", err, se.Name)
	case errors.Is(err, up.ErrNotRunning):
		return fmt.Errorf("%w; see %s, then `wgnet down %s` and up again", err, se.LogFile, se.Name)
	case errors.Is(err, up.ErrIncomplete):
		return fmt.Errorf("%w; run `wgnet down %s` and up again", err, se.Name)
	case errors.Is(err, up.ErrNotOurs):
		return fmt.Errorf("%w; use the tool that made it (wg-quick down %s)", err, se.Name)
	case errors.Is(err, up.ErrPending):
		return fmt.Errorf("%w; run `wgnet confirm %s` to keep it or `wgnet confirm --rollback %s` to undo it now (timer log %s), then change it again", err, se.Name, se.Name, se.LogFile)
	case errors.Is(err, up.ErrOtherNetns):
		return fmt.Errorf("%w; run wgnet in that namespace (ip netns exec NAME wgnet ...), or give each namespace its own WGNET_STATE_DIR", err)
	case errors.Is(err, up.ErrNeedsConfirm):
		return fmt.Errorf("%w; rerun with --confirm DURATION (the change is rolled back unless `wgnet confirm %s` runs in time) or, if you are sure, --no-confirm-policy", err, se.Name)
	case errors.Is(err, up.ErrNotUp) && strings.HasPrefix(se.Msg, "sync "):
		return fmt.Errorf("%w; bring it up with `wgnet up` first", err)
	}
	return err
}
