package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/spec"
)

// remoteFlags say which controller a command talks to and how it trusts it.
type remoteFlags struct {
	controller, network, tokenFile, caFile, caHash string
}

func (r *remoteFlags) bind(fl *pflag.FlagSet, withNetwork bool) {
	fl.StringVar(&r.controller, "controller", "", "act on a network of this controller (https://HOST:PORT) instead of the spec; several controllers of one database: URL,URL,... (the next is tried when one can't be reached)")
	if withNetwork {
		fl.StringVar(&r.network, "network", "", "the controller's network (with --controller)")
	}
	fl.StringVar(&r.tokenFile, "token-file", "", "file holding the controller's admin token (default: $WGNET_TOKEN)")
	fl.StringVar(&r.caFile, "ca-file", "", "the controller's CA certificate (DATA/ca.crt)")
	fl.StringVar(&r.caHash, "ca-hash", "", "or the controller's CA pin, sha256:HEX (printed by wgnet controller)")
}

// client returns a client for the flags; the admin token comes from
// --token-file, else $WGNET_TOKEN.
func (r *remoteFlags) client() (*client.Client, error) {
	if r.controller == "" {
		return nil, usageError{errors.New("--controller URL is needed")}
	}
	urls := strings.Split(r.controller, ",")
	o := client.Options{URL: urls[0], Fallback: urls[1:], Token: os.Getenv("WGNET_TOKEN"), CAHash: r.caHash}
	if r.tokenFile != "" {
		b, err := os.ReadFile(r.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		o.Token = strings.TrimSpace(string(b))
	}
	if r.caFile != "" {
		b, err := os.ReadFile(r.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		o.CAPEM = b
	}
	c, err := client.New(o)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// run checks -o, makes the client and calls fn with it.
func (r *remoteFlags) run(c *cobra.Command, fn func(cl *client.Client, format string) error) error {
	format, err := outputFormat(global.output, "text", "json")
	if err != nil {
		return err
	}
	cl, err := r.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(cl, format)
}

// errOrJSON returns err, or prints v as indented JSON.
func errOrJSON(w io.Writer, v any, err error) error {
	if err != nil {
		return err
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

// remoteVerbs are the spec verbs that also act on a controller's network, with
// the flags each accepts there (the others are about a host's local setup or
// secrets, which a controller doesn't hold).
var remoteVerbs = map[string]func(ctx context.Context, c *cobra.Command, cl *client.Client, network string, args []string, format string) error{
	"add":    remoteAdd,
	"set":    remoteSet,
	"remove": remoteRemove,
	"list":   remoteList,
	"render": remoteRender,
	"check":  remoteCheck,
}

var remoteOK = map[string][]string{
	"add": {"endpoint", "address", "route", "hub", "keepalive", "public-key", "tag",
		"mtu", "dns", "table", "fwmark", "full-tunnel", "external", "no-address", "listen-port"},
	"set": {"endpoint", "address", "route", "remove-route", "replace-routes", "hub", "keepalive", "public-key", "tag", "remove-tag",
		"mtu", "dns", "table", "fwmark", "full-tunnel", "external", "no-address", "assign-address", "listen-port"},
	"render": {"out"},
}

// remoteSettings reads the flags of a host's own settings that were given
// (api.SetHost's settings; nil: not given). Their values are checked by the
// controller with a spec's rules (validation of the network as it would be).
func remoteSettings(fl *pflag.FlagSet) (api.SetHost, error) {
	var s api.SetHost
	for _, f := range []struct {
		name string
		to   **string
	}{{"mtu", &s.MTU}, {"table", &s.Table}} {
		if fl.Changed(f.name) {
			v, _ := fl.GetString(f.name)
			*f.to = &v
		}
	}
	for _, f := range []struct {
		name string
		to   **[]string
	}{{"dns", &s.DNS}, {"full-tunnel", &s.FullTunnel}} {
		if fl.Changed(f.name) {
			v, _ := fl.GetStringArray(f.name)
			v = slices.DeleteFunc(v, func(s string) bool { return s == "" }) // --dns '' removes them
			*f.to = &v
		}
	}
	if fl.Changed("fwmark") {
		v, _ := fl.GetString("fwmark")
		m := uint32(0) // "" removes it
		if v != "" {
			var err error
			if m, err = spec.ParseFwMark(v); err != nil {
				return s, usageError{fmt.Errorf("--fwmark %w", err)}
			}
		}
		s.FwMark = &m
	}
	if fl.Changed("external") {
		v, _ := fl.GetBool("external")
		s.External = &v
	}
	if fl.Changed("no-address") && fl.Changed("assign-address") {
		return s, usageError{fmt.Errorf("--no-address and --assign-address: give one")}
	}
	if fl.Changed("no-address") {
		v, _ := fl.GetBool("no-address")
		s.NoAddress = &v
	}
	if fl.Changed("assign-address") {
		v, _ := fl.GetBool("assign-address")
		v = !v
		s.NoAddress = &v
	}
	if fl.Changed("listen-port") {
		v, _ := fl.GetString("listen-port")
		random := v == "random"
		if !random && v != strconv.Itoa(spec.DefaultListenPort) {
			return s, usageError{fmt.Errorf("--listen-port %q: a controller network's hosts listen on its port (%d) or on one wg picks (random); a port of a host's own is not kept", v, spec.DefaultListenPort)}
		}
		s.RandomPort = &random
	}
	return s, nil
}

// wireRemote adds --controller and --network to the verbs that can act on a
// controller's network. Without --controller a verb runs as it always has.
func wireRemote(cmds []*cobra.Command) {
	for _, c := range cmds {
		verb, ok := remoteVerbs[c.Name()]
		if !ok {
			continue
		}
		r := &remoteFlags{}
		r.bind(c.Flags(), true)
		offline := c.RunE
		c.RunE = func(c *cobra.Command, args []string) error {
			if !c.Flags().Changed("controller") {
				if r.network != "" {
					return usageError{errors.New("--network needs --controller")}
				}
				return offline(c, args)
			}
			if err := onlyRemoteFlags(c, remoteOK[c.Name()]); err != nil {
				return err
			}
			if r.network == "" {
				return usageError{errors.New("--controller needs --network NAME")}
			}
			return r.run(c, func(cl *client.Client, format string) error {
				return verb(c.Context(), c, cl, r.network, args, format)
			})
		}
	}
}

// onlyRemoteFlags refuses a flag a controller's network has no use for.
func onlyRemoteFlags(c *cobra.Command, ok []string) error {
	var bad []string
	c.Flags().Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "controller", "network", "token-file", "ca-file", "ca-hash", "output", "file":
			return
		}
		for _, o := range ok {
			if f.Name == o {
				return
			}
		}
		bad = append(bad, "--"+f.Name)
	})
	if len(bad) > 0 {
		return usageError{fmt.Errorf("%s: not available with --controller", strings.Join(bad, ", "))}
	}
	return nil
}

func stringsFlag(c *cobra.Command, name string) []string {
	v, _ := c.Flags().GetStringArray(name)
	return v
}

func remoteAdd(ctx context.Context, c *cobra.Command, cl *client.Client, network string, args []string, format string) error {
	fl := c.Flags()
	h := api.Host{Name: args[0], Addresses: stringsFlag(c, "address"), Routes: stringsFlag(c, "route"), Tags: stringsFlag(c, "tag")}
	h.Endpoint, _ = fl.GetString("endpoint")
	h.Keepalive, _ = fl.GetInt("keepalive")
	h.Hub, _ = fl.GetBool("hub")
	h.PublicKey, _ = fl.GetString("public-key")
	set, err := remoteSettings(fl)
	if err != nil {
		return err
	}
	h.Settings = api.Settings{MTU: deref(set.MTU), DNS: deref(set.DNS), Table: deref(set.Table), FwMark: deref(set.FwMark),
		FullTunnel: deref(set.FullTunnel), External: deref(set.External), NoAddress: deref(set.NoAddress), RandomPort: deref(set.RandomPort)}
	if h.PublicKey == "" {
		return usageError{errors.New("add --controller: give --public-key; a controller never holds a private key (make the pair on the host: wg genkey | tee wg0.key | wg pubkey)")}
	}
	if _, err := parsePublicKey(h.PublicKey); err != nil {
		return err
	}
	r, err := cl.AddHost(ctx, network, h)
	if err != nil {
		return err
	}
	return report(c.OutOrStdout(), format, editResult{Action: "added", Host: h.Name, Addresses: r.Host.Addresses},
		fmt.Sprintf("added %s at %s (revision %d)", h.Name, strings.Join(r.Host.Addresses, ", "), r.Revision))
}

func remoteSet(ctx context.Context, c *cobra.Command, cl *client.Client, network string, args []string, format string) error {
	fl := c.Flags()
	if onlyGlobalFlags(c) || !anyChanged(fl, remoteOK["set"]...) {
		return usageError{fmt.Errorf("set %s: nothing to change; give at least one flag (see wgnet set --help)", args[0])}
	}
	s, err := remoteSettings(fl)
	if err != nil {
		return err
	}
	s.Addresses, s.Routes, s.RemoveRoutes = stringsFlag(c, "address"), stringsFlag(c, "route"), stringsFlag(c, "remove-route")
	s.AddTags, s.RemoveTags = stringsFlag(c, "tag"), stringsFlag(c, "remove-tag")
	s.ReplaceRoutes, _ = fl.GetBool("replace-routes")
	s.Hub, _ = fl.GetBool("hub")
	if fl.Changed("endpoint") {
		v, _ := fl.GetString("endpoint")
		s.Endpoint = &v
	}
	if fl.Changed("keepalive") {
		v, _ := fl.GetInt("keepalive")
		s.Keepalive = &v
	}
	if fl.Changed("public-key") {
		v, _ := fl.GetString("public-key")
		if _, err := parsePublicKey(v); err != nil {
			return err
		}
		s.PublicKey = &v
	}
	r, err := cl.SetHost(ctx, network, args[0], s)
	if err != nil {
		return err
	}
	return report(c.OutOrStdout(), format, editResult{Action: "changed", Host: args[0], Addresses: r.Host.Addresses},
		fmt.Sprintf("changed %s (revision %d)", args[0], r.Revision))
}

// deref is *p, or the zero value for nil.
func deref[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}

func anyChanged(fl *pflag.FlagSet, names ...string) bool {
	for _, n := range names {
		if fl.Changed(n) {
			return true
		}
	}
	return false
}

func remoteRemove(ctx context.Context, c *cobra.Command, cl *client.Client, network string, args []string, format string) error {
	r, err := cl.RemoveHost(ctx, network, args[0])
	if err != nil {
		return err
	}
	return report(c.OutOrStdout(), format, editResult{Action: "removed", Host: args[0]},
		fmt.Sprintf("removed %s (revision %d)", args[0], r.Revision))
}

func remoteList(ctx context.Context, c *cobra.Command, cl *client.Client, network string, _ []string, format string) error {
	hs, err := cl.Hosts(ctx, network)
	if err != nil || format == "json" {
		return errOrJSON(c.OutOrStdout(), hs, err)
	}
	w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HOST\tROLE\tADDRESS\tENDPOINT\tROUTES\tKEEPALIVE\tPUBLIC KEY")
	for _, h := range hs.Hosts {
		role := "member"
		if hs.Network.Topology == "hub" {
			role = "spoke"
			if h.Hub {
				role = "hub"
			}
		}
		if h.External {
			role += " (external)"
		}
		ep, ka := h.Endpoint, "-"
		if ep == "" {
			ep = "(dials out)"
		}
		if h.Keepalive != 0 {
			ka = fmt.Sprint(h.Keepalive)
		}
		routes := orDash(strings.Join(h.Routes, ","))
		if len(h.PendingRoutes) > 0 {
			routes += " (waiting for approval: " + strings.Join(h.PendingRoutes, ",") + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, role, strings.Join(h.Addresses, ","), ep,
			routes, ka, h.PublicKey)
	}
	return w.Flush()
}

// remoteRender writes DIR/HOST/IFACE.conf for every host of the network, as
// render does for a spec: every config fetched and every path checked before
// anything is written, and the configs rendered for hosts that left the
// network removed. The configs hold no private key (each host reads its own
// with the PostUp hook).
func remoteRender(ctx context.Context, c *cobra.Command, cl *client.Client, network string, _ []string, format string) error {
	outDir, _ := c.Flags().GetString("out")
	hs, err := cl.Hosts(ctx, network)
	if err != nil {
		return err
	}
	var files []hostFile
	has := map[string]bool{}
	for _, h := range hs.Hosts {
		cfg, err := cl.Config(ctx, network, h.Name)
		if err != nil {
			return err
		}
		files = append(files, hostFile{host: h.Name, name: cfg.Interface + ".conf", data: []byte(cfg.WgQuick)})
		has[h.Name] = true
	}
	steps, err := planFiles(outDir, files, network, func(host string) bool { return has[host] })
	if err != nil {
		return fmt.Errorf("render: nothing written: %w", err)
	}
	done, err := applyRender(steps)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	return printRendered(c.OutOrStdout(), format, done)
}

func remoteCheck(ctx context.Context, c *cobra.Command, cl *client.Client, network string, args []string, format string) error {
	if len(args) > 0 {
		return usageError{errors.New("check --controller takes no files")}
	}
	res, err := cl.Check(ctx, network)
	if err != nil {
		return err
	}
	var findings diag.List
	for _, f := range res.Findings {
		findings = append(findings, diag.Diagnostic{File: f.File, Line: f.Line, Severity: diag.Severity(f.Severity), Code: f.Code, Message: f.Message})
	}
	if err := writeFindings(findings, format, c.OutOrStdout(), c.ErrOrStderr()); err != nil {
		return err
	}
	if errs, _ := findings.Count(); errs > 0 {
		return errProblems("")
	}
	return nil
}

// parsePrefixList checks CIDR flags before they go to the controller.
func parsePrefixList(flag string, in []string) error {
	for _, s := range in {
		if _, err := netip.ParsePrefix(s); err != nil {
			return usageError{fmt.Errorf("--%s %q: %w", flag, s, err)}
		}
	}
	return nil
}
