package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
)

func init() { register(newNetworkCmd) }

// newNetworkCmd is `wgnet network create|list|delete`: the networks of a controller.
func newNetworkCmd() *cobra.Command {
	r := &remoteFlags{}
	c := &cobra.Command{
		Use:   "network create|list|delete --controller URL",
		Short: "Create, list or delete the networks of a controller",
		Long: "network acts on a controller (wgnet controller): its networks are edited with the\n" +
			"same verbs as a spec (add, set, remove, list, render, check) given --controller URL\n" +
			"--network NAME. The admin token comes from $WGNET_TOKEN or --token-file; the\n" +
			"controller is trusted by its CA (--ca-file) or the CA's pin (--ca-hash sha256:...).",
	}
	r.bind(c.PersistentFlags(), false)
	var subnets []string
	var topology string
	create := &cobra.Command{
		Use:   "create NAME --subnet CIDR [--subnet CIDR6] [--topology hub|mesh]",
		Short: "Create a network on the controller",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(subnets) == 0 {
				return usageError{fmt.Errorf("network create %s: give --subnet CIDR", args[0])}
			}
			if err := parsePrefixList("subnet", subnets); err != nil {
				return err
			}
			return r.run(c, func(cl *client.Client, format string) error {
				n, err := cl.CreateNetwork(c.Context(), api.CreateNetwork{Name: args[0], Subnets: subnets, Topology: topology})
				if err != nil {
					return err
				}
				return report(c.OutOrStdout(), format, n, fmt.Sprintf("created network %s (%s, %s)", n.Name, n.Topology, strings.Join(n.Subnets, ", ")))
			})
		},
	}
	create.Flags().StringArrayVar(&subnets, "subnet", nil, "overlay subnet (IPv4 and/or IPv6), repeatable")
	create.Flags().StringVar(&topology, "topology", "hub", "hub (first host added is the hub) or mesh")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the controller's networks",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return r.run(c, func(cl *client.Client, format string) error {
				ns, err := cl.Networks(c.Context())
				if err != nil || format == "json" {
					return errOrJSON(c.OutOrStdout(), ns, err)
				}
				w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NETWORK\tTOPOLOGY\tSUBNETS\tHUB\tREVISION")
				for _, n := range ns {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", n.Name, n.Topology, strings.Join(n.Subnets, ","), orDash(n.Hub), n.Revision)
				}
				return w.Flush()
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a network and all its hosts from the controller",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return r.run(c, func(cl *client.Client, format string) error {
				if err := cl.DeleteNetwork(c.Context(), args[0]); err != nil {
					return err
				}
				return report(c.OutOrStdout(), format, map[string]string{"action": "deleted", "network": args[0]}, "deleted network "+args[0])
			})
		},
	}
	c.AddCommand(create, list, del)
	return c
}
