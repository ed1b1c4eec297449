package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/wgnet/wgnet/internal/spec"
)

func init() { register(newInitCmd) }

func newInitCmd() *cobra.Command {
	var o spec.InitOptions
	var subnets []string
	c := &cobra.Command{
		Use:   "init NAME --subnet CIDR [--subnet CIDR6]",
		Short: "Create a new network spec (refuses to overwrite one)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			o.Network = args[0]
			if len(subnets) == 0 {
				return usageError{fmt.Errorf("init: --subnet is required (the overlay, like 192.168.100.0/24)")}
			}
			if o.Subnets, err = parsePrefixes("subnet", subnets); err != nil {
				return err
			}
			l, err := spec.LockSpec(global.specFile, true)
			if err != nil {
				return err
			}
			defer l.Unlock()
			d, err := spec.Init(global.specFile, o)
			if err != nil {
				return err
			}
			if err := d.Save(); err != nil {
				return err
			}
			return report(c.OutOrStdout(), format, map[string]string{"action": "created", "spec": global.specFile, "network": o.Network, "topology": o.Topology},
				fmt.Sprintf("created %s (network %s, %s); add hosts with `wgnet add HOST`", global.specFile, o.Network, o.Topology))
		},
	}
	c.Flags().StringArrayVar(&subnets, "subnet", nil, "overlay subnet (IPv4 and/or IPv6), repeatable")
	c.Flags().StringVar(&o.Topology, "topology", spec.TopologyHub, "hub (first host added is the hub) or mesh")
	c.Flags().IntVar(&o.ListenPort, "port", 0, "listen port of every host (default 51820)")
	c.Flags().StringVar(&o.Interface, "interface", "", "interface name (default wg0)")
	c.Flags().IntVar(&o.MTU, "mtu", 0, "tunnel MTU (default: smallest underlay_mtu minus 80, else 1420)")
	return c
}
