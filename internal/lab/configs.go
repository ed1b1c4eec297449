package lab

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// FromConfigs turns wg-quick configs, one per host (each with its Name set), into
// lab hosts. Configs say nothing of which subnets sit behind which host, so it
// infers them: a prefix in some peer's AllowedIPs that holds no host's overlay
// address and is the most specific of its kind belongs to the host it is routed to
// whose own config does not route it into the tunnel. The notes say what could
// not be inferred.
func FromConfigs(cfgs []*wgconf.Config) ([]intent.Host, []string) {
	var notes []string
	key := make(map[string]wgkey.Key)
	byKey := make(map[wgkey.Key]string)
	byName := make(map[string]*wgconf.Config)
	var overlay []netip.Addr
	for _, c := range cfgs {
		byName[c.Name] = c
		if !c.Interface.PrivateKey.IsZero() {
			k := c.Interface.PrivateKey.Public()
			key[c.Name] = k
			byKey[k] = c.Name
		}
		for _, a := range c.Interface.Addresses {
			overlay = append(overlay, a.Addr())
		}
	}
	target := func(p wgconf.Peer) string {
		if n, ok := byKey[p.PublicKey]; ok {
			return n
		}
		if _, ok := byName[p.Name]; ok {
			return p.Name
		}
		return ""
	}

	// Candidates: prefix → hosts it is routed to.
	cand := make(map[netip.Prefix]map[string]bool)
	for _, c := range cfgs {
		for _, p := range c.Peers {
			t := target(p)
			for _, a := range p.AllowedIPs {
				a = a.Masked()
				if a.Bits() == 0 || containsAny(a, overlay) {
					continue
				}
				if cand[a] == nil {
					cand[a] = make(map[string]bool)
				}
				if t != "" {
					cand[a][t] = true
				}
			}
		}
	}
	routes := make(map[string][]netip.Prefix)
	var prefixes []netip.Prefix
	for p := range cand {
		prefixes = append(prefixes, p)
	}
	sort.Slice(prefixes, func(i, j int) bool { return prefixes[i].String() < prefixes[j].String() })
	for _, p := range prefixes {
		if containsOther(p, prefixes) {
			continue // an aggregate (10.0.0.0/16 over each /24)
		}
		var owners []string
		for t := range cand[p] {
			if !routesInto(byName[t], p) {
				owners = append(owners, t)
			}
		}
		sort.Strings(owners)
		switch {
		case len(cand[p]) == 0:
			notes = append(notes, fmt.Sprintf("subnet %s is routed only to peers that are no host of the lab; not probed", p))
		case len(owners) == 1:
			routes[owners[0]] = append(routes[owners[0]], p)
		case len(owners) == 0:
			notes = append(notes, fmt.Sprintf("subnet %s: every host it is routed to also routes it into its own tunnel, so the lab can't tell whose it is; not probed", p))
		default:
			notes = append(notes, fmt.Sprintf("subnet %s: could belong to any of %s; not probed", p, strings.Join(owners, ", ")))
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

func containsAny(p netip.Prefix, addrs []netip.Addr) bool {
	for _, a := range addrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
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

// routesInto reports whether cfg sends some of p into its own tunnel: an AllowedIPs
// entry equal to p or inside it. (A wider entry such as 0.0.0.0/0 does not count:
// the subnet's own, more specific route wins on the host.)
func routesInto(cfg *wgconf.Config, p netip.Prefix) bool {
	if cfg == nil {
		return true
	}
	for _, peer := range cfg.Peers {
		for _, a := range peer.AllowedIPs {
			if a.Bits() >= p.Bits() && p.Contains(a.Addr()) {
				return true
			}
		}
	}
	return false
}
