package dockerfw

import (
	"context"
	"net/netip"
	"strings"
)

// ruleMatch is what a rule matches on that matters here.
type ruleMatch struct {
	in, notIn string
	dst       netip.Prefix
	target    string
}

func parseMatch(spec string) ruleMatch {
	var m ruleMatch
	f := strings.Fields(spec)
	not := false
	for i := 0; i < len(f); i++ {
		next := func() string {
			if i+1 < len(f) {
				i++
				return f[i]
			}
			return ""
		}
		switch f[i] {
		case "!":
			not = true
			continue
		case "-i":
			if v := next(); not {
				m.notIn = v
			} else {
				m.in = v
			}
		case "-d":
			if p, err := netip.ParsePrefix(next()); err == nil && !not {
				m.dst = p.Masked()
			}
		case "-j":
			m.target = next()
		}
		not = false
	}
	return m
}

// RawDrops returns the rules of raw PREROUTING that drop packets arriving on wg
// for an address inside subnet, unless an accept for wg comes first: Docker
// 28's protection of containers in a nat-mode network from direct routing
// (`-d CONTAINER ! -i BRIDGE -j DROP`, or per network `-d SUBNET ! -i BRIDGE`).
// Such a packet is dropped before any filter chain, so no accept in
// DOCKER-USER lets it through; the network's options do (see docs/docker.md).
func (v *View) RawDrops(subnet netip.Prefix, wg string) []string {
	rules, _ := v.chain("raw", "PREROUTING")
	var out []string
	for _, spec := range rules {
		m := parseMatch(spec)
		if (m.in != "" && m.in != wg) || m.notIn == wg {
			continue
		}
		if m.dst.IsValid() && !m.dst.Overlaps(subnet) {
			continue
		}
		switch m.target {
		case "ACCEPT":
			if m.in == wg && (!m.dst.IsValid() || m.dst.Contains(subnet.Addr()) && m.dst.Bits() <= subnet.Bits()) {
				return out
			}
		case "DROP":
			if m.dst.IsValid() {
				out = append(out, "-A PREROUTING "+spec)
			}
		}
	}
	return out
}

// NftablesDocker reports whether Docker runs its nftables firewall backend
// (Docker 29+, `"firewall-backend": "nftables"`): its tables ip/ip6
// docker-bridges exist. There is no DOCKER-USER chain then, and an accept
// anywhere else is not final against Docker's drops; only a firewall mark that
// dockerd was told to accept (--bridge-accept-fwmark) is.
func NftablesDocker(ctx context.Context, r Runner) bool {
	out, err := r.Run(ctx, []string{"nft", "list", "tables"})
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" && f[2] == "docker-bridges" {
			return true
		}
	}
	return false
}
