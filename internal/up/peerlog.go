package up

import (
	"fmt"
	"net/netip"
	"strings"
)

// peerLogMax bounds the log lines of one patch: a sync of 10,000 peers says
// how many more rather than naming each.
const peerLogMax = 8

// peerLog returns the log lines of the plan's peer changes in one of the two
// device patches (removing: the second, see devconf.Changes.Patches), one per
// peer, naming what changes, so that a prefix that moved reads as
// "peer s2: +allowed ip 10.0.9.0/24" and not as a peer removed.
func (p *Plan) peerLog(removing bool) []string {
	var out []string
	n := 0
	for _, c := range p.Peers {
		var parts []string
		switch {
		case c.Op == PeerAdd && !removing:
			parts = append(parts, "added, allowed ips "+joinPrefixes(c.AllowedIPs, ""))
		case c.Op == PeerRemove && removing:
			parts = append(parts, "removed")
		case c.Op == PeerUpdate && removing:
			if !c.ReplaceAllowedIPs {
				parts = appendPrefixes(parts, "-", c.RemoveAllowedIPs)
			}
		case c.Op == PeerUpdate:
			parts = appendPrefixes(parts, "+", c.AddAllowedIPs)
			if c.ReplaceAllowedIPs {
				parts = appendPrefixes(parts, "-", c.RemoveAllowedIPs)
				parts = append(parts, "(whole list rewritten)")
			}
			if e := c.Endpoint; e != nil {
				parts = append(parts, fmt.Sprintf("endpoint %s -> %s", e.Old, e.New))
			}
			if c.PresharedKey != "" {
				parts = append(parts, "preshared key "+c.PresharedKey)
			}
			if k := c.Keepalive; k != nil {
				parts = append(parts, fmt.Sprintf("keepalive %s -> %s", keepaliveText(k.Old), keepaliveText(k.New)))
			}
		}
		if len(parts) == 0 {
			continue
		}
		if n++; n > peerLogMax {
			continue
		}
		name := c.Name
		if name == "" {
			name = c.PublicKey.String()
		}
		out = append(out, fmt.Sprintf("peer %s: %s", name, strings.Join(parts, ", ")))
	}
	if n > peerLogMax {
		out = append(out, fmt.Sprintf("%d more peer(s)", n-peerLogMax))
	}
	return out
}

// appendPrefixes adds "+allowed ip P" (sign "+") or "-allowed ip P" for each of ps.
func appendPrefixes(parts []string, sign string, ps []netip.Prefix) []string {
	for _, p := range ps {
		parts = append(parts, sign+"allowed ip "+p.String())
	}
	return parts
}
