package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/up"
)

func init() { register(newShowCmd) }

func newShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show [NAME...] [-o json]",
		Short: "Show WireGuard interfaces like wg show, with peers named by host and a state",
		Long: "show lists every WireGuard interface (or the named ones): wgnet's, wg-quick's,\n" +
			"kernel or userspace (any that serves a UAPI socket in /var/run/wireguard), and those\n" +
			"wgnet brought up that are gone (a daemon that died) as NOT RUNNING.\n" +
			"Peers are named from the spec or the config's \"# name\" comments, and have a state:\n" +
			"  up        a handshake within the last 3 minutes\n" +
			"  idle      no recent handshake, nothing wrong seen (WireGuard is quiet without traffic)\n" +
			"  no-reply  bytes sent, nothing ever received: key, endpoint or firewall problem",
		RunE: func(c *cobra.Command, args []string) error {
			return runShow(c.OutOrStdout(), args, global)
		},
	}
}

func runShow(stdout io.Writer, names []string, g globalFlags) error {
	format, err := outputFormat(g.output, "text", "json")
	if err != nil {
		return err
	}
	ifcs, err := up.Status(names, up.StatusOptions{StateDir: stateDir(), ConfigDir: configDir()})
	err = advise(err)
	if err != nil && len(ifcs) == 0 {
		return err
	}
	if format == "json" {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		if ifcs == nil {
			ifcs = []up.Interface{}
		}
		if werr := e.Encode(ifcs); werr != nil {
			return werr
		}
		return err
	}
	if werr := up.WriteText(stdout, ifcs); werr != nil {
		return werr
	}
	return err
}
