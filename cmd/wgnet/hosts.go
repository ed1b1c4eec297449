package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func init() {
	register(newAddCmd)
	register(newSetCmd)
	register(newRemoveCmd)
	register(newListCmd)
}

// hostFlags are the host fields that add and set share.
type hostFlags struct {
	endpoint, publicKey, privateKeyFile string
	addresses, routes, removeRoutes     []string
	tags, removeTags                    []string
	presharedWith                       []string
	hub, replaceRoutes                  bool
	keepalive, underlayMTU              int
	listenPort                          string // N or random
	hostFirewall                        string // set --host-firewall
	// wg-quick's keys, written as text into the spec (spec.WgQuickChanges)
	mtu, table, fwmark                 string
	dns, fullTunnel                    []string
	external, noAddress, assignAddress bool
}

func (f *hostFlags) bind(c *cobra.Command, forSet bool) {
	fl := c.Flags()
	fl.StringVar(&f.endpoint, "endpoint", "", "where others reach the host: HOST:PORT or [V6]:PORT")
	fl.StringArrayVar(&f.addresses, "address", nil, "overlay address (default: next free), repeatable")
	fl.StringArrayVar(&f.routes, "route", nil, "subnet routed behind the host (containers, a site), repeatable")
	fl.BoolVar(&f.hub, "hub", false, "make the host the hub (topology hub)")
	fl.IntVar(&f.keepalive, "keepalive", 0, "persistent keepalive in seconds, for a host behind NAT")
	fl.StringVar(&f.publicKey, "public-key", "", "the host keeps its own private key; this is its public key")
	fl.StringVar(&f.listenPort, "listen-port", "", "listen port, where it differs from the network's; random: wg picks one (a host nobody dials)")
	fl.IntVar(&f.underlayMTU, "underlay-mtu", 0, "MTU of the host's underlay network")
	fl.StringVar(&f.privateKeyFile, "private-key-file", "", "where a host that keeps its own key holds it")
	fl.StringArrayVar(&f.tags, "tag", nil, "a tag naming the host in policy groups (tag:TAG), repeatable")
	fl.StringVar(&f.mtu, "mtu", "", "the host's own tunnel MTU: a number or auto (default: the network's)")
	fl.StringArrayVar(&f.dns, "dns", nil, "DNS = : a resolver address or search domain, repeatable")
	fl.StringVar(&f.table, "table", "", "Table = : off, auto, main, a number or an rt_tables name")
	fl.StringVar(&f.fwmark, "fwmark", "", "FwMark = : decimal or 0x hex")
	fl.StringArrayVar(&f.fullTunnel, "full-tunnel", nil, "a default route (0.0.0.0/0, ::/0) this spoke sends through the hub, repeatable")
	fl.BoolVar(&f.external, "external", false, "a peer wgnet writes no config for (a VPN provider's server); needs --public-key")
	fl.BoolVar(&f.noAddress, "no-address", false, "assign_address: false: no Address in its config, the address is set elsewhere")
	if forSet {
		fl.BoolVar(&f.assignAddress, "assign-address", false, "undo --no-address: its config has its Address again")
		fl.StringArrayVar(&f.removeRoutes, "remove-route", nil, "routed subnet to remove, repeatable")
		fl.BoolVar(&f.replaceRoutes, "replace-routes", false, "--route replaces the host's routes instead of adding")
		fl.StringArrayVar(&f.removeTags, "remove-tag", nil, "tag to remove, repeatable")
		fl.StringArrayVar(&f.presharedWith, "preshared-with", nil, "use a preshared key (generated) with this host too, repeatable")
		hostFirewallFlag(c, &f.hostFirewall)
	}
}

func newAddCmd() *cobra.Command {
	var f hostFlags
	c := &cobra.Command{
		Use:   "add HOST",
		Short: "Add a host to the spec, with a new key pair unless --public-key is given",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			h := spec.Host{Name: args[0], Endpoint: f.endpoint, Keepalive: f.keepalive,
				UnderlayMTU: f.underlayMTU, Tags: f.tags}
			var ch spec.HostChanges
			if err := f.wgQuick(c.Flags(), &ch); err != nil {
				return err
			}
			if h.PrivateKeyFile, err = parseKeyFile(f.privateKeyFile); err != nil {
				return err
			}
			if h.Addresses, err = parseAddrs("address", f.addresses); err != nil {
				return err
			}
			if h.Routes, err = parsePrefixes("route", f.routes); err != nil {
				return err
			}
			if f.publicKey != "" {
				if h.PublicKey, err = parsePublicKey(f.publicKey); err != nil {
					return err
				}
			}
			var added spec.Host
			err = editSpec(global.specFile, func(d *spec.Document) error {
				if added, err = d.AddHost(h); err != nil {
					return err
				}
				if err := d.SetHost(h.Name, ch); err != nil {
					return err
				}
				if f.hub {
					return d.SetHub(h.Name)
				}
				return nil
			})
			if err != nil {
				return err
			}
			var as []string
			for _, a := range added.Addresses {
				as = append(as, a.String())
			}
			return report(c.OutOrStdout(), format, editResult{Action: "added", Host: h.Name, Addresses: as},
				fmt.Sprintf("added %s at %s", h.Name, strings.Join(as, ", ")))
		},
	}
	f.bind(c, false)
	return c
}

// wgQuick puts the flags given of wg-quick's keys (and --listen-port) into ch.
// Their values go into the spec as text: a bad one is refused when the spec is
// saved, with the error a hand-edited file gets.
func (f *hostFlags) wgQuick(fl *pflag.FlagSet, ch *spec.HostChanges) error {
	w := &ch.WgQuick
	if fl.Changed("listen-port") {
		switch p, err := strconv.Atoi(f.listenPort); {
		case f.listenPort == "random":
			w.RandomPort = true
		case err != nil:
			return usageError{fmt.Errorf("--listen-port %q: must be 1-65535, or random", f.listenPort)}
		default:
			ch.ListenPort = &p
		}
	}
	for _, s := range []struct {
		flag string
		v    string
		to   **string
	}{{"mtu", f.mtu, &w.MTU}, {"table", f.table, &w.Table}, {"fwmark", f.fwmark, &w.FwMark}} {
		if fl.Changed(s.flag) {
			v := s.v
			*s.to = &v
		}
	}
	for _, l := range []struct {
		flag string
		v    []string
		to   **[]string
	}{{"dns", f.dns, &w.DNS}, {"full-tunnel", f.fullTunnel, &w.FullTunnel}} {
		if fl.Changed(l.flag) {
			v := slices.DeleteFunc(slices.Clone(l.v), func(s string) bool { return s == "" }) // --dns '' removes them
			*l.to = &v
		}
	}
	if fl.Changed("external") {
		w.External = &f.external
	}
	if fl.Changed("no-address") && fl.Changed("assign-address") {
		return usageError{fmt.Errorf("--no-address and --assign-address: give one")}
	}
	if fl.Changed("no-address") {
		v := !f.noAddress
		w.AssignAddress = &v
	}
	if fl.Changed("assign-address") {
		w.AssignAddress = &f.assignAddress
	}
	return nil
}

func parsePublicKey(s string) (wgkey.Key, error) {
	k, err := wgkey.ParseKey(s)
	if err == nil && k.IsZero() {
		err = wgkey.ErrZero
	}
	if err != nil {
		return k, usageError{fmt.Errorf("--public-key: %w", err)}
	}
	return k, nil
}

func newSetCmd() *cobra.Command {
	var f hostFlags
	c := &cobra.Command{
		Use:   "set HOST",
		Short: "Change a host in the spec (only the flags given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			fl := c.Flags()
			if onlyGlobalFlags(c) {
				return usageError{fmt.Errorf("set %s: nothing to change; give at least one flag (see wgnet set --help)", args[0])}
			}
			var ch spec.HostChanges
			if fl.Changed("endpoint") {
				ch.Endpoint = &f.endpoint
			}
			if ch.Addresses, err = parseAddrs("address", f.addresses); err != nil {
				return err
			}
			if ch.Routes, err = parsePrefixes("route", f.routes); err != nil {
				return err
			}
			if ch.RemoveRoutes, err = parsePrefixes("remove-route", f.removeRoutes); err != nil {
				return err
			}
			ch.ReplaceRoutes = f.replaceRoutes
			ch.Tags, ch.RemoveTags = f.tags, f.removeTags
			ch.Hub = f.hub
			if fl.Changed("keepalive") {
				ch.Keepalive = &f.keepalive
			}
			if fl.Changed("public-key") {
				// The host now keeps its own key: the edit deletes the one wgnet
				// made for it once the spec is saved.
				k, err := parsePublicKey(f.publicKey)
				if err != nil {
					return err
				}
				ch.PublicKey = &k
			}
			if err := f.wgQuick(fl, &ch); err != nil {
				return err
			}
			if fl.Changed("underlay-mtu") {
				ch.UnderlayMTU = &f.underlayMTU
			}
			if fl.Changed("private-key-file") {
				if _, err := parseKeyFile(f.privateKeyFile); err != nil {
					return err
				}
				ch.PrivateKeyFile = &f.privateKeyFile
			}
			if fl.Changed("host-firewall") {
				if err := checkHostFirewall(f.hostFirewall); err != nil {
					return err
				}
				ch.HostFirewall = &f.hostFirewall
			}
			err = editSpec(global.specFile, func(d *spec.Document) error {
				if err := d.SetHost(args[0], ch); err != nil {
					return err
				}
				for _, o := range f.presharedWith {
					if err := d.AddPresharedPair(spec.Pair{args[0], o}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			return report(c.OutOrStdout(), format, editResult{Action: "changed", Host: args[0]}, "changed "+args[0])
		},
	}
	f.bind(c, true)
	return c
}

func newRemoveCmd() *cobra.Command {
	var newHub string
	var keepSecrets bool
	c := &cobra.Command{
		Use:   "remove HOST",
		Short: "Remove a host from the spec (and its keys from the secrets directory)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			name := args[0]
			l, err := spec.LockSpec(global.specFile, true)
			if err != nil {
				return err
			}
			defer l.Unlock()
			if err := spec.EditLocked(global.specFile, func(d *spec.Document) error { return d.RemoveHost(name, newHub) }); err != nil {
				return err
			}
			if !keepSecrets {
				if err := spec.RemoveHostSecrets(spec.SecretsDir(global.specFile), name); err != nil {
					return err
				}
			}
			return report(c.OutOrStdout(), format, editResult{Action: "removed", Host: name}, "removed "+name)
		},
	}
	c.Flags().StringVar(&newHub, "new-hub", "", "when removing the hub: the host that takes its place")
	c.Flags().BoolVar(&keepSecrets, "keep-secrets", false, "keep the host's private and preshared keys")
	return c
}

// hostRow is one host as `list` shows it.
type hostRow struct {
	Name       string   `json:"name"`
	Role       string   `json:"role"`
	Addresses  []string `json:"addresses"`
	Endpoint   string   `json:"endpoint,omitempty"`
	Routes     []string `json:"routes,omitempty"`
	ListenPort int      `json:"listen_port"` // 0: random (listen_port: random)
	Keepalive  int      `json:"keepalive,omitempty"`
	PublicKey  string   `json:"public_key"`
	OwnKey     bool     `json:"keeps_own_key"`
	External   bool     `json:"external,omitempty"`
}

func newListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the hosts of the spec",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			l, err := lockToRead(global.specFile)
			if err != nil {
				return err
			}
			s, err := spec.Load(global.specFile)
			if err != nil {
				l.Unlock()
				return err
			}
			sec, _, err := spec.LoadSecrets(spec.SecretsDir(global.specFile))
			l.Unlock()
			if err != nil {
				return err
			}
			rows := []hostRow{}
			for i := range s.Hosts {
				h := &s.Hosts[i]
				r := hostRow{Name: h.Name, Role: "member", Endpoint: h.Endpoint, ListenPort: s.ListenPortOf(h),
					Keepalive: h.Keepalive, PublicKey: h.PublicKey.String()}
				if s.Topology == spec.TopologyHub {
					r.Role = "spoke"
					if h.Name == s.Hub {
						r.Role = "hub"
					}
				}
				if h.RandomPort {
					r.ListenPort = 0 // wg picks one
				}
				r.External = h.External
				_, hasKey := sec.PrivateKeys[h.Name]
				r.OwnKey = !hasKey
				for _, a := range h.Addresses {
					r.Addresses = append(r.Addresses, a.String())
				}
				for _, p := range h.Routes {
					r.Routes = append(r.Routes, p.String())
				}
				rows = append(rows, r)
			}
			if format == "json" {
				e := json.NewEncoder(c.OutOrStdout())
				e.SetIndent("", "  ")
				return e.Encode(rows)
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "HOST\tROLE\tADDRESS\tENDPOINT\tROUTES\tPORT\tKEEPALIVE\tPUBLIC KEY")
			for _, r := range rows {
				ep, ka := r.Endpoint, "-"
				if ep == "" {
					ep = "(dials out)"
				}
				if r.Keepalive != 0 {
					ka = fmt.Sprint(r.Keepalive)
				}
				key := r.PublicKey
				switch {
				case r.PublicKey == (wgkey.Key{}).String():
					key = "(no key)"
				case r.OwnKey:
					key += " (own key)"
				}
				role, port := r.Role, fmt.Sprint(r.ListenPort)
				if r.External {
					role += " (external)"
				}
				if r.ListenPort == 0 {
					port = "random"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, role, strings.Join(r.Addresses, ","), ep,
					orDash(strings.Join(r.Routes, ",")), port, ka, key)
			}
			return w.Flush()
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// editResult is what the spec-editing commands print with -o json.
type editResult struct {
	Action    string   `json:"action"`
	Host      string   `json:"host"`
	Addresses []string `json:"addresses,omitempty"`
}

// report prints v as JSON, or text as a line.
func report(w io.Writer, format string, v any, text string) error {
	if format == "json" {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(v)
	}
	_, err := fmt.Fprintln(w, text)
	return err
}

// onlyGlobalFlags reports whether every flag given is a global one (-f, -o).
func onlyGlobalFlags(c *cobra.Command) bool {
	only := true
	c.Flags().Visit(func(f *pflag.Flag) {
		if f.Name != "file" && f.Name != "output" {
			only = false
		}
	})
	return only
}
