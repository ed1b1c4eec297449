package up

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/hostnet"
)

// WritePlan prints a plan for people, like a diff: "+" added, "-" removed, "~"
// changed, one thing per line, then notes.
func WritePlan(w io.Writer, p *Plan) error {
	_, err := io.WriteString(w, planText(p))
	return err
}

func planText(p *Plan) string {
	var b strings.Builder
	if p.Empty() {
		fmt.Fprintf(&b, "%s: no changes\n", p.Interface)
	} else {
		fmt.Fprintf(&b, "%s: %s\n", p.Interface, p.summary())
	}
	line := func(op, format string, a ...any) { fmt.Fprintf(&b, "  %s %s\n", op, fmt.Sprintf(format, a...)) }
	detail := func(format string, a ...any) { fmt.Fprintf(&b, "      %s\n", fmt.Sprintf(format, a...)) }
	if p.PrivateKey {
		if p.PublicKey != nil {
			line(PeerUpdate, "private key (every session restarts); the new public key, for every peer of this host: %s", p.PublicKey)
		} else {
			line(PeerUpdate, "private key (every session restarts)")
		}
	}
	if c := p.ListenPort; c != nil {
		line(PeerUpdate, "listen port %d -> %d", c.Old, c.New)
	}
	if c := p.FwMark; c != nil {
		line(PeerUpdate, "fwmark %#x -> %#x", c.Old, c.New)
	}
	for _, c := range p.Peers {
		line(c.Op, "peer %s", peerLabel(c.Name, c.PublicKey))
		if len(c.AllowedIPs) > 0 {
			detail("allowed IPs: %s", joinPrefixes(c.AllowedIPs, ""))
		}
		if len(c.AddAllowedIPs)+len(c.RemoveAllowedIPs) > 0 {
			s := strings.TrimSpace(joinPrefixes(c.AddAllowedIPs, "+") + " " + joinPrefixes(c.RemoveAllowedIPs, "-"))
			if c.ReplaceAllowedIPs {
				s += " (whole list rewritten: this device cannot remove single prefixes)"
			}
			detail("allowed IPs: %s", strings.ReplaceAll(s, ",", ""))
		}
		if e := c.Endpoint; e != nil {
			if e.Old == "" {
				detail("endpoint: %s", e.New)
			} else {
				detail("endpoint: %s -> %s", e.Old, e.New)
			}
		}
		if c.PresharedKey != "" {
			detail("preshared key: %s", c.PresharedKey)
		}
		if k := c.Keepalive; k != nil {
			if c.Op == PeerAdd {
				detail("persistent keepalive: %v", time.Duration(k.New)*time.Second)
			} else {
				detail("persistent keepalive: %s -> %s", keepaliveText(k.Old), keepaliveText(k.New))
			}
		}
	}
	if c := p.MTU; c != nil {
		line(PeerUpdate, "mtu %d -> %d", c.Old, c.New)
	}
	for _, a := range p.Addresses.Add {
		line(PeerAdd, "address %s", a)
	}
	for _, a := range p.Addresses.Remove {
		line(PeerRemove, "address %s", a)
	}
	for _, r := range p.Routes.Add {
		line(PeerAdd, "route %s", routeText(r))
	}
	for _, r := range p.Routes.Remove {
		line(PeerRemove, "route %s", routeText(r))
	}
	for _, c := range p.Sysctls {
		line(PeerUpdate, "sysctl %s: %s -> %s", hostnet.SysctlName(c.Key), c.Old, c.New)
	}
	if fw := p.Firewall; fw != nil {
		switch fw.Action {
		case "delete":
			line(PeerRemove, "%s", fw.where())
		case "create":
			line(PeerAdd, "%s (%s)", fw.where(), fw.what())
		default:
			line(PeerUpdate, "%s (%s)", fw.where(), fw.what())
		}
		if d := fw.Default; d != nil {
			line(PeerUpdate, "policy default: %s -> %s", d.Old, d.New)
		}
		for _, r := range fw.Rules {
			line(r.Op, "rule %s", r.Rule)
			if r.Origin != "" {
				detail("from %s", r.Origin)
			}
		}
		if fw.DeniesMore {
			what := "switches to default deny"
			if fw.Denied != "" {
				what = "denies traffic the running filter lets through, e.g. " + fw.Denied
			}
			fmt.Fprintf(&b, "  note: the policy change %s\n", what)
		}
	}
	tunnelText(p, line)
	hostFirewallText(p.HostFirewall, line)
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

// what says what the table does: "clamp TCP MSS on wg0; drop ICMP redirects out of wg0".
func (fw *FirewallChange) what() string {
	var parts []string
	if len(fw.ClampMSS) > 0 {
		parts = append(parts, "clamp TCP MSS on "+strings.Join(fw.ClampMSS, ", "))
	}
	if len(fw.DropRedirects) > 0 {
		parts = append(parts, "drop ICMP redirects out of "+strings.Join(fw.DropRedirects, ", "))
	}
	if f := fw.want; f != nil && f.Filter != nil {
		parts = append(parts, fmt.Sprintf("filter what enters %s: %d rule(s), default %s", f.Filter.Iface, len(f.Filter.Rules), verdictName(f.Filter)))
	}
	if len(parts) == 0 {
		return "empty"
	}
	return strings.Join(parts, "; ")
}

// summary counts the plan's changes: "1 peer added, 1 changed; 2 routes; ...".
func (p *Plan) summary() string {
	n := map[string]int{}
	for _, c := range p.Peers {
		n[c.Op]++
	}
	var parts []string
	if len(p.Peers) > 0 {
		var ps []string
		for _, x := range []struct{ op, word string }{{PeerAdd, "added"}, {PeerUpdate, "changed"}, {PeerRemove, "removed"}} {
			if n[x.op] > 0 {
				ps = append(ps, fmt.Sprintf("%d %s", n[x.op], x.word))
			}
		}
		parts = append(parts, fmt.Sprintf("peers: %s", strings.Join(ps, ", ")))
	}
	count := func(k int, one, many string) {
		if k == 1 {
			parts = append(parts, "1 "+one)
		} else if k > 1 {
			parts = append(parts, fmt.Sprintf("%d %s", k, many))
		}
	}
	if p.PrivateKey || p.ListenPort != nil || p.FwMark != nil || p.MTU != nil {
		parts = append(parts, "interface")
	}
	count(len(p.Addresses.Add)+len(p.Addresses.Remove), "address", "addresses")
	count(len(p.Routes.Add)+len(p.Routes.Remove), "route", "routes")
	count(len(p.Sysctls), "sysctl", "sysctls")
	if fw := p.Firewall; fw != nil {
		parts = append(parts, "firewall"+fw.ruleSummary())
	}
	parts = append(parts, p.tunnelSummary()...)
	if p.HostFirewall != nil {
		parts = append(parts, "host firewall")
	}
	return strings.Join(parts, "; ")
}

func joinPrefixes(ps []netip.Prefix, sign string) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = sign + p.String()
	}
	return strings.Join(s, ", ")
}

func keepaliveText(secs int) string {
	if secs == 0 {
		return "off"
	}
	return (time.Duration(secs) * time.Second).String()
}
