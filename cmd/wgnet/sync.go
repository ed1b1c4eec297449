package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/up"
)

func init() { register(newSyncCmd) }

type syncFlags struct {
	host         string
	dryRun       bool
	confirm      time.Duration
	confirmSet   bool // --confirm was given, so it must be positive
	noForwarding bool
	hostFirewall string // --host-firewall: the opt-in, over the config's
	// noConfirmPolicy lets a policy change that denies more go ahead without
	// --confirm.
	noConfirmPolicy bool
}

func newSyncCmd() *cobra.Command {
	var f syncFlags
	c := &cobra.Command{
		Use:   "sync NAME [CONFIG] | sync [NAME] --host HOST  [--dry-run] [--confirm DURATION]",
		Short: "Change a running interface to match its config, touching only what differs",
		Long: "sync reads the running interface back (peers, keys, addresses, routes, forwarding\n" +
			"sysctls, wgnet's firewall table) and applies only the difference from the config:\n" +
			"peers that went are removed, new ones added, a changed peer gets only its changed\n" +
			"prefixes added or removed, endpoints, keys and ports are set only when they changed.\n" +
			"Sessions of the other peers are not disturbed. It works on interfaces wg-quick made,\n" +
			"too, and adopts them (`wgnet down` works afterwards).\n\n" +
			"NAME alone means /etc/wireguard/NAME.conf; CONFIG is any path; --host HOST compiles\n" +
			"HOST's config from the spec (-f). --dry-run prints the plan and changes nothing;\n" +
			"-o json prints it as data. --confirm DURATION undoes the change by itself unless\n" +
			"`wgnet confirm NAME` runs in time. A step that fails undoes the sync. See docs/sync.md.\n\n" +
			"A policy change (the spec's policy section, enforced in wgnet's nftables table) is\n" +
			"applied live, touching no tunnel. One that denies traffic the running filter lets\n" +
			"through, or switches to default deny, needs --confirm DURATION, so that a rule can't\n" +
			"cut off the session you run it over; --no-confirm-policy applies it anyway.",
		Args: cobra.MaximumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			f.confirmSet = c.Flags().Changed("confirm")
			return runSync(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), args, f, global)
		},
	}
	c.Flags().StringVar(&f.host, "host", "", "compile this host's config from the spec (-f)")
	c.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the plan, change nothing")
	c.Flags().DurationVar(&f.confirm, "confirm", 0, "undo the change unless \"wgnet confirm NAME\" runs within this `DURATION` (e.g. 2m)")
	c.Flags().BoolVar(&f.noForwarding, "no-forwarding", false, "leave IP forwarding and MSS clamping alone")
	hostFirewallFlag(c, &f.hostFirewall)
	c.Flags().BoolVar(&f.noConfirmPolicy, "no-confirm-policy", false, "apply a policy change that denies more than before without --confirm")
	return c
}

// syncResult is what `sync -o json` prints: the plan, and what became of it.
type syncResult struct {
	*up.Plan
	DryRun  bool        `json:"dry_run"`
	Pending *up.Pending `json:"pending,omitempty"`
}

func runSync(ctx context.Context, stdout, stderr io.Writer, args []string, f syncFlags, g globalFlags) error {
	format, err := outputFormat(g.output, "text", "json")
	if err != nil {
		return err
	}
	if f.dryRun && f.confirm > 0 {
		return usageError{fmt.Errorf("--dry-run changes nothing: there is nothing to confirm")}
	}
	if f.confirmSet && f.confirm <= 0 {
		return usageError{fmt.Errorf("--confirm %v: must be positive", f.confirm)}
	}
	shortLivedGC()
	req, err := upRequest(args, f.host, g.specFile, stderr)
	if err != nil {
		return err
	}
	if err := setHostFirewall(&req, f.hostFirewall); err != nil {
		return err
	}
	opts := up.SyncOptions{
		Options: up.Options{
			StateDir:     stateDir(),
			NoForwarding: f.noForwarding,
			Log:          stderr,
		},
		Confirm:         up.Confirm{Within: f.confirm},
		AllowPolicyDeny: f.noConfirmPolicy,
	}
	var plan *up.Plan
	if f.dryRun {
		plan, err = up.PlanSync(ctx, req, opts)
	} else {
		plan, err = up.Sync(ctx, req, opts)
	}
	if err != nil {
		return advise(err)
	}
	res := syncResult{Plan: plan, DryRun: f.dryRun}
	if f.confirm > 0 && !plan.Empty() {
		if p, err := up.LoadPending(opts.StateDir, req.Name); err == nil {
			res.Pending = p
		}
	}
	if format == "json" {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		return e.Encode(res)
	}
	if err := up.WritePlan(stdout, plan); err != nil {
		return err
	}
	switch {
	case f.dryRun:
		_, err = fmt.Fprintf(stderr, "wgnet: dry run: %s not changed\n", req.Name)
	case plan.Empty():
		_, err = fmt.Fprintf(stderr, "wgnet: %s already matches the config\n", req.Name)
	case res.Pending != nil:
		_, err = fmt.Fprintf(stderr, "wgnet: %s synced; run `wgnet confirm %s` by %s to keep the change, or it is rolled back\n",
			req.Name, req.Name, res.Pending.Deadline.Local().Format(time.TimeOnly))
	default:
		_, err = fmt.Fprintf(stderr, "wgnet: %s synced\n", req.Name)
	}
	return err
}
