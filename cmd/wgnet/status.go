package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/client"
)

func init() { register(newStatusCmd) }

// newStatusCmd is `wgnet status NETWORK --controller URL`.
func newStatusCmd() *cobra.Command {
	r := &remoteFlags{}
	c := &cobra.Command{
		Use:   "status NETWORK --controller URL",
		Short: "Show each host of a controller's network: address, endpoint, last seen, revision applied",
		Long: "status shows each host of NETWORK as the controller holds it (addresses, endpoint)\n" +
			"and as its agent last reported it (last seen, the revision it has applied, each\n" +
			"peer; a note for each peer whose endpoint host name has never resolved there).\n" +
			"Until a host's agent reports, it shows \"never reported\".",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return r.run(c, func(cl *client.Client, format string) error {
				st, err := cl.Status(c.Context(), args[0])
				if err != nil || format == "json" {
					return errOrJSON(c.OutOrStdout(), st, err)
				}
				w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(w, "network %s at revision %d\n", st.Network, st.Revision)
				fmt.Fprintln(w, "HOST\tADDRESSES\tENDPOINT\tLAST SEEN\tREVISION APPLIED\tPEERS")
				var notes []string
				for _, h := range st.Hosts {
					seen, rev := "never reported", "-"
					if h.LastSeen != "" {
						seen, rev = h.LastSeen, fmt.Sprint(h.Revision)
						if h.Revision < st.Revision {
							rev += fmt.Sprintf(" (%d behind)", st.Revision-h.Revision)
						}
					}
					name := h.Name
					if h.Hub {
						name += " (hub)"
					}
					peers := "-"
					if h.LastSeen != "" {
						up := 0
						for _, p := range h.Peers {
							if p.LastHandshake != "" {
								up++
							}
						}
						peers = fmt.Sprintf("%d/%d with handshake", up, len(h.Peers))
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", name, strings.Join(h.Addresses, ","), orDash(h.Endpoint), seen, rev, peers)
					for _, n := range h.Notes {
						notes = append(notes, h.Name+": "+n)
					}
					for _, p := range h.Peers {
						if u := p.Unresolved; u != nil {
							notes = append(notes, h.Name+": "+unresolvedText(orDash(p.Host), u.Host, u.Error, u.Since))
						}
					}
				}
				if err := w.Flush(); err != nil {
					return err
				}
				for _, n := range notes {
					fmt.Fprintln(c.OutOrStdout(), "note:", n)
				}
				return nil
			})
		},
	}
	r.bind(c.Flags(), false)
	return c
}

// newControllerAuditCmd is `wgnet controller audit --controller URL`: the
// audit log, through the API (admin only).
func newControllerAuditCmd() *cobra.Command {
	r := &remoteFlags{}
	var since uint64
	c := &cobra.Command{
		Use:   "audit --controller URL [--since SEQ]",
		Short: "Show the controller's audit log: who made each change, and when",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return r.run(c, func(cl *client.Client, format string) error {
				a, err := cl.Audit(c.Context(), since)
				if err != nil || format == "json" {
					return errOrJSON(c.OutOrStdout(), a, err)
				}
				w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tNETWORK\tREVISION\tACTION\tSUBJECT")
				for _, e := range a.Entries {
					rev := "-"
					if e.Revision > 0 {
						rev = fmt.Sprint(e.Revision)
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time, e.Actor, orDash(e.Network), rev, e.Action, orDash(e.Subject))
				}
				return w.Flush()
			})
		},
	}
	r.bind(c.Flags(), false)
	c.Flags().Uint64Var(&since, "since", 0, "show entries after this sequence number")
	return c
}
