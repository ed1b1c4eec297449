package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/spec"
)

func init() { register(newPolicyCmd) }

// newPolicyCmd is `wgnet policy add|remove|list|group|default`: the spec's
// policy section, edited under the spec's lock with comments kept.
func newPolicyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy add|remove|list|group|default",
		Short: "Edit or list the spec's segmentation policy (who may reach whom)",
		Long: "policy edits the spec's policy section, keeping comments. A rule is\n" +
			"  allow|deny FROM -> TO [tcp|udp|icmp] [PORTS]\n" +
			"FROM and TO: a group, a host, tag:TAG, a name pattern (web-*), a CIDR prefix or any.\n" +
			"Quote a rule: the shell reads -> as a redirection. See docs/policy.md.",
	}
	var at int
	add := &cobra.Command{
		Use:   "add 'RULE' [--at N]",
		Short: "Add a rule (at the end, or at position N, counted from 1)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			rule := strings.Join(args, " ")
			r, err := spec.ParseRule(rule)
			if err != nil {
				return usageError{fmt.Errorf("policy add: %w", err)}
			}
			return editPolicy(c, func(d *spec.Document) error { return d.AddPolicyRule(rule, at-1) }, func(p *api.Policy) error {
				return addRule(p, r.String(), at-1)
			}, func() (any, string) {
				return map[string]string{"action": "added", "rule": r.String()}, "added rule: " + r.String()
			})
		},
	}
	add.Flags().IntVar(&at, "at", 0, "position of the new rule, counted from 1 (default: last)")
	remove := &cobra.Command{
		Use:   "remove N",
		Short: "Remove rule N (as policy list numbers them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return usageError{fmt.Errorf("policy remove %q: give the rule's number (see wgnet policy list)", args[0])}
			}
			var text string
			return editPolicy(c, func(d *spec.Document) (err error) {
				text, err = d.RemovePolicyRule(n - 1)
				return err
			}, func(p *api.Policy) (err error) {
				text, err = removeRule(p, n-1)
				return err
			}, func() (any, string) {
				return map[string]string{"action": "removed", "rule": text}, "removed rule: " + text
			})
		},
	}
	group := &cobra.Command{
		Use:   "group NAME [MEMBER...]",
		Short: "Define a group (hosts, tag:TAG, name patterns, prefixes); no members removes it",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			msg := fmt.Sprintf("group %s: %s", args[0], strings.Join(args[1:], ", "))
			if len(args) == 1 {
				msg = "removed group " + args[0]
			}
			return editPolicy(c, func(d *spec.Document) error { return d.SetPolicyGroup(args[0], args[1:]) }, func(p *api.Policy) error {
				return setGroup(p, args[0], args[1:])
			}, func() (any, string) {
				return map[string]any{"group": args[0], "members": args[1:]}, msg
			})
		},
	}
	def := &cobra.Command{
		Use:   "default allow|deny",
		Short: "Set the verdict for traffic no rule matches",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if args[0] != spec.Allow && args[0] != spec.Deny {
				return usageError{fmt.Errorf("policy default %q: want allow or deny", args[0])}
			}
			return editPolicy(c, func(d *spec.Document) error { return d.SetPolicyDefault(args[0]) }, func(p *api.Policy) error {
				p.Default = args[0]
				return nil
			}, func() (any, string) {
				return map[string]string{"default": args[0]}, "default: " + args[0]
			})
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the policy: default, groups and numbered rules",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return runPolicyList(c) },
	}
	c.AddCommand(add, remove, group, def, list)
	policyRemote.bind(c.PersistentFlags(), true)
	return c
}

// editPolicy checks -o, runs edit on the spec under its lock (or, with
// --controller, remote on the controller network's policy) and reports what
// result returns (called after a successful edit).
func editPolicy(c *cobra.Command, edit func(d *spec.Document) error, remote func(p *api.Policy) error, result func() (any, string)) error {
	format, err := outputFormat(global.output, "text", "json")
	if err != nil {
		return err
	}
	if policyRemote.controller != "" {
		err = editRemotePolicy(c, remote)
	} else {
		err = editSpec(global.specFile, edit)
	}
	if err != nil {
		return err
	}
	v, text := result()
	return report(c.OutOrStdout(), format, v, text)
}

// policyListing is `policy list -o json`.
type policyListing struct {
	Present bool                `json:"present"`
	Default string              `json:"default"`
	Groups  map[string][]string `json:"groups"`
	Rules   []string            `json:"rules"`
}

func runPolicyList(c *cobra.Command) error {
	format, err := outputFormat(global.output, "text", "json")
	if err != nil {
		return err
	}
	p, err := listedPolicy(c)
	if err != nil {
		return err
	}
	out := policyListing{Present: p.Present, Default: spec.Allow, Groups: map[string][]string{}, Rules: []string{}}
	if !p.DefaultAllows() {
		out.Default = spec.Deny
	}
	for _, g := range p.Groups {
		ms := []string{}
		for _, m := range g.Members {
			ms = append(ms, m.String())
		}
		out.Groups[g.Name] = ms
	}
	for _, r := range p.Rules {
		out.Rules = append(out.Rules, r.String())
	}
	if format == "json" {
		e := json.NewEncoder(c.OutOrStdout())
		e.SetIndent("", "  ")
		return e.Encode(out)
	}
	w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
	if !p.Present {
		fmt.Fprintln(w, "no policy: every host reaches every other (default allow)")
		return w.Flush()
	}
	fmt.Fprintf(w, "default: %s\n", out.Default)
	for _, g := range p.Groups {
		fmt.Fprintf(w, "group %s:\t%s\n", g.Name, strings.Join(out.Groups[g.Name], ", "))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for i, r := range out.Rules {
		fmt.Fprintf(c.OutOrStdout(), "%3d  %s\n", i+1, r)
	}
	return nil
}
