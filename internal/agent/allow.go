package agent

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Allowed says which of a host's own settings that reach past its
// interface the host's operator lets the controller set (wgnet agent join
// --allow): the controller is not root on the host, so a state with any of
// them is refused unless it is allowed here. The zero value allows none.
type Allowed struct {
	// DNS: the host's resolver (resolvconf, as wg-quick's DNS =).
	DNS bool `json:"dns,omitempty"`
	// FullTunnel: a default route (0.0.0.0/0, ::/0) among a peer's allowed
	// IPs, all the host's traffic through that peer (wg-quick's full tunnel:
	// policy rules, a table, nftables marks).
	FullTunnel bool `json:"full_tunnel,omitempty"`
	// Table: where the tunnel's routes go (off: none).
	Table bool `json:"table,omitempty"`
	// FwMark: the mark of the tunnel's own packets (a mark the host's other
	// software may use: Kubernetes' 0x4000, for one).
	FwMark bool `json:"fwmark,omitempty"`
	// PublicRoutes: subnets and approved routes in public address space
	// (not only private, shared, benchmarking and documentation ranges: api.AgentRanges), as a
	// network that routes a host's public /29; a full tunnel allows them too.
	PublicRoutes bool `json:"public_routes,omitempty"`
}

// AllowNames are the words of --allow, each naming a field of Allowed.
var AllowNames = []string{"dns", "full-tunnel", "table", "fwmark", "public-routes"}

// ParseAllowed reads --allow's words (AllowNames; "none" allows nothing).
func ParseAllowed(words []string) (Allowed, error) {
	var a Allowed
	for _, w := range words {
		switch w {
		case "dns":
			a.DNS = true
		case "full-tunnel":
			a.FullTunnel = true
		case "table":
			a.Table = true
		case "fwmark":
			a.FwMark = true
		case "public-routes":
			a.PublicRoutes = true
		case "none", "":
		default:
			return a, fmt.Errorf("--allow %q: want some of %s", w, strings.Join(AllowNames, ", "))
		}
	}
	return a, nil
}

// Intent is Intent(st, keyFile, own) with the settings al allows taken
// into the intent instead of refused.
func (al Allowed) Intent(st *api.AgentState, keyFile string, own wgkey.Key) (*intent.Host, error) {
	return guarded(st, keyFile, own, made{}, al)
}

// domainRE is a search domain: dot-separated labels of letters, digits, '-'
// and '_' (what a spec's dns takes besides addresses).
var domainRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?$`)

// tableRE is wg-quick's Table: off, auto, main, a number or an rt_tables name.
var tableRE = regexp.MustCompile(`^(off|auto|main|[0-9]{1,10}|[A-Za-z_][A-Za-z0-9_.-]{0,30})$`)

// settings judges the state's DNS, Table and FwMark against al and puts
// those allowed (and well formed) into h; r.fullTunnel says whether a peer
// may route a default route.
func (al Allowed) settings(st *api.AgentState, h *intent.Host, r *rules) error {
	r.fullTunnel = al.FullTunnel
	refused := func(what, flag string) error {
		return r.refuse("%s: an agent takes none from the controller unless its host's operator allowed it at join (wgnet agent join --allow %s)", what, flag)
	}
	switch {
	case len(st.DNS) > 0 && !al.DNS:
		return refused(fmt.Sprintf("DNS %v", st.DNS), "dns")
	case st.Table != "" && !al.Table:
		return refused(fmt.Sprintf("table %q", st.Table), "table")
	case st.FwMark != 0 && !al.FwMark:
		return refused(fmt.Sprintf("fwmark %#x", st.FwMark), "fwmark")
	case st.Table != "" && !tableRE.MatchString(st.Table):
		return r.refuse("table %q: not off, auto, main, a number or a table name", st.Table)
	}
	for _, d := range st.DNS {
		if _, err := netip.ParseAddr(d); err != nil && (len(d) > 253 || !domainRE.MatchString(d)) {
			return r.refuse("DNS %q: not an address nor a domain name", d)
		}
	}
	h.DNS, h.Table, h.FwMark = slices.Clone(st.DNS), st.Table, st.FwMark
	return nil
}
