package lab

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netmodel"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// FromConfigs turns wg-quick configs, one per host (each with its Name set), into
// lab hosts. Configs say nothing of which subnets sit behind which host; the
// network model infers it (netmodel.RoutedSubnets, the rule check uses too): a
// subnet belongs to the host it is routed to when that host's own config does
// not relay it on. A peer whose key no host holds stands for the host its
// "# name" comment names. The notes say what could not be inferred.
func FromConfigs(cfgs []*wgconf.Config) ([]intent.Host, []string) {
	ins := make([]netmodel.Input, len(cfgs))
	byName := make(map[string]int, len(cfgs))
	for i, c := range cfgs {
		ins[i] = netmodel.FromConfig(c.Name, c)
		byName[c.Name] = i
	}
	m := netmodel.New(ins)
	to := func(h, j int) int {
		p := &m.Hosts[h].Peers[j]
		if p.To >= 0 || p.Self || p.DupOf >= 0 {
			return p.To
		}
		if i, ok := byName[p.Name]; ok && i != h {
			return i
		}
		return -1
	}

	// By prefix: the hosts it is routed to, and those of them it ends at.
	targets := make(map[netip.Prefix]map[int]bool)
	owners := make(map[netip.Prefix]map[int]bool)
	for _, r := range m.RoutedSubnets(to) {
		if targets[r.Prefix] == nil {
			targets[r.Prefix], owners[r.Prefix] = map[int]bool{}, map[int]bool{}
		}
		if t := to(r.Via, r.Peer); t >= 0 {
			targets[r.Prefix][t] = true
		}
		if r.Owner >= 0 {
			owners[r.Prefix][r.Owner] = true
		}
	}
	prefixes := make([]netip.Prefix, 0, len(targets))
	for p := range targets {
		prefixes = append(prefixes, p)
	}
	sort.Slice(prefixes, func(i, j int) bool { return prefixes[i].String() < prefixes[j].String() })
	var notes []string
	routes := make(map[string][]netip.Prefix)
	for _, p := range prefixes {
		var names []string
		for o := range owners[p] {
			names = append(names, cfgs[o].Name)
		}
		sort.Strings(names)
		switch {
		case len(targets[p]) == 0:
			notes = append(notes, fmt.Sprintf("subnet %s is routed only to peers that are no host of the lab; not probed", p))
		case len(names) == 1:
			routes[names[0]] = append(routes[names[0]], p)
		case len(names) == 0 && containsOther(p, prefixes):
			// An aggregate (10.0.0.0/16 over each /24) relayed on by whoever
			// it is routed to: its parts are probed.
		case len(names) == 0:
			notes = append(notes, fmt.Sprintf("subnet %s: every host it is routed to also routes it into its own tunnel, so the lab can't tell whose it is; not probed", p))
		default:
			notes = append(notes, fmt.Sprintf("subnet %s: could belong to any of %s; not probed", p, strings.Join(names, ", ")))
		}
	}

	out := make([]intent.Host, 0, len(cfgs))
	for _, c := range cfgs {
		h, _ := intent.FromConfig(c)
		// The lab runs no hooks, but models what they do to forwarding: a hook
		// that turns it on among other commands counts too.
		v4, v6 := intent.HooksForward(h.Hooks.PostUp)
		h.Forward.V4 = h.Forward.V4 || v4
		h.Forward.V6 = h.Forward.V6 || v6
		h.Routes = routes[c.Name]
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, notes
}

// containsOther reports whether p strictly contains another prefix of all.
func containsOther(p netip.Prefix, all []netip.Prefix) bool {
	for _, q := range all {
		if q != p && q.Bits() > p.Bits() && p.Contains(q.Addr()) {
			return true
		}
	}
	return false
}
