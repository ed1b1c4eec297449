package main

import (
	"fmt"
	"text/tabwriter"
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
		Use:   "token create|admin|list|revoke --controller URL",
		Short: "Make, list and revoke a controller's join and admin tokens",
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
	c.AddCommand(create, newTokenAdminCmd(r), newTokenListCmd(r), newTokenRevokeCmd(r))
	return c
}

// newTokenAdminCmd is `wgnet token admin`: another admin token.
func newTokenAdminCmd(r *remoteFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "admin",
		Short: "Make another admin token, shown once (to rotate: make one, switch to it, revoke the old)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return r.run(c, func(cl *client.Client, format string) error {
				t, err := cl.CreateAdminToken(c.Context())
				if err != nil {
					return err
				}
				return report(c.OutOrStdout(), format, t, t.Token)
			})
		},
	}
}

// newTokenListCmd is `wgnet token list`: the admin and join tokens by ID.
func newTokenListCmd(r *remoteFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the controller's admin and join tokens by ID (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return r.run(c, func(cl *client.Client, format string) error {
				ts, err := cl.Tokens(c.Context())
				if err != nil || format == "json" {
					return errOrJSON(c.OutOrStdout(), ts, err)
				}
				w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tKIND\tNETWORK\tHOST\tUSES LEFT\tEXPIRES")
				for _, t := range ts.Tokens {
					uses, exp := "-", "never"
					if t.Kind != "admin" {
						uses = fmt.Sprint(t.Uses)
					}
					if t.Expires != "" {
						exp = t.Expires
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Kind, orDash(t.Network), orDash(t.Host), uses, exp)
				}
				return w.Flush()
			})
		},
	}
}

// newTokenRevokeCmd is `wgnet token revoke ID`.
func newTokenRevokeCmd(r *remoteFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an admin or join token by its ID (token list); the last admin token stays",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return r.run(c, func(cl *client.Client, format string) error {
				if err := cl.RevokeToken(c.Context(), args[0]); err != nil {
					return err
				}
				return report(c.OutOrStdout(), format, map[string]string{"revoked": args[0]}, "revoked "+args[0])
			})
		},
	}
}
