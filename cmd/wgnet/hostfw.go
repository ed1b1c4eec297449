package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/up"
)

// hostFirewallFlag adds --host-firewall to up and sync: the opt-in of a plain
// wg-quick file (a spec says it with host_firewall:).
func hostFirewallFlag(c *cobra.Command, v *string) {
	c.Flags().StringVar(v, "host-firewall", "", "open the host's forward firewall for the overlay and the routed subnets: "+dockerfw.Modes+" (off: leave it); see docs/docker.md")
}

// setHostFirewall puts the flag's opt-in into the request, over the config's.
func setHostFirewall(req *up.Request, flag string) error {
	if flag == "" {
		return nil
	}
	if err := checkHostFirewall(flag); err != nil {
		return err
	}
	req.Host.HostFirewall = flag
	return nil
}

// checkHostFirewall refuses a --host-firewall value that is not a mode.
func checkHostFirewall(flag string) error {
	if _, err := dockerfw.ParseMode(flag); err != nil {
		return usageError{fmt.Errorf("--host-firewall %w", err)}
	}
	return nil
}
