package intent

import (
	"net/netip"
	"strings"
)

// routesCommentSuffix ends the comment the compiler writes into a rendered
// config of a host with routed subnets:
// "routes 10.10.1.0/24, fd00:10:1::/64 behind this host: the interface in front
// of them must forward too (...)".
const routesCommentSuffix = " behind this host:"

// CommentedRoutes returns the routed subnets named by the compiler's comment in
// a rendered config ("routes P, Q behind this host: ..."), so that `up` of a
// rendered file knows what is behind its host as `up --host` does; nil when
// there is no such comment or it does not parse. FromConfig leaves Routes empty
// (a wg-quick file by itself does not say), so a caller that wants them asks.
func CommentedRoutes(comments []string) []netip.Prefix {
	for _, c := range comments {
		rest, ok := strings.CutPrefix(strings.TrimSpace(c), "routes ")
		if !ok {
			continue
		}
		list, _, ok := strings.Cut(rest, routesCommentSuffix)
		if !ok {
			continue
		}
		var out []netip.Prefix
		for _, f := range strings.Split(list, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(f))
			if err != nil {
				return nil
			}
			out = append(out, p)
		}
		return out
	}
	return nil
}
