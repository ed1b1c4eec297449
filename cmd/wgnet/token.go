package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
)

func init() { register(newTokenCmd) }

// newTokenCmd is `wgnet token create NETWORK`: a join token for a controller's network.
func newTokenCmd() *cobra.Command {
	r := &remoteFlags{}
	c := &cobra.Command{
		Use:   "token create NETWORK --controller URL [--ttl D] [--uses N] [--host NAME] [--route CIDR]...",
		Short: "Make a join token for a network of a controller",
	}
	r.bind(c.PersistentFlags(), false)
	var ttl time.Duration
	var uses int
	var host string
	var routes []string
	create := &cobra.Command{
		Use:   "create NETWORK",
		Short: "Make a join token: the controller's URLs, its CA pin and a secret, shown once",
		Long: "create prints a join token for NETWORK. It carries the controller's URLs and the\n" +
			"SHA-256 of its CA's public key, so a joining host needs nothing else; the controller\n" +
			"stores only the secret's hash. A token expires (--ttl) and admits --uses hosts,\n" +
			"or only the host called --host; the joining host may claim routed subnets inside\n" +
			"the --route prefixes (others need an admin's `wgnet set --route`).",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if ttl < time.Second || uses < 1 {
				return usageError{fmt.Errorf("token create: --ttl is at least 1s and --uses at least 1")}
			}
			if err := parsePrefixList("route", routes); err != nil {
				return err
			}
			return r.run(c, func(cl *client.Client, format string) error {
				t, err := cl.CreateToken(c.Context(), args[0], api.CreateToken{TTLSeconds: int(ttl / time.Second), Uses: uses, Host: host, Routes: routes})
				if err != nil {
					return err
				}
				return report(c.OutOrStdout(), format, t, t.Token)
			})
		},
	}
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid")
	create.Flags().IntVar(&uses, "uses", 1, "how many hosts may join with it")
	create.Flags().StringVar(&host, "host", "", "admit only the host of this name")
	create.Flags().StringArrayVar(&routes, "route", nil, "a subnet the joining host may claim as routed behind it (CIDR), repeatable")
	c.AddCommand(create)
	return c
}
