package up

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/devconf"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// running is what wgnet manages on one interface, read back from the system: the
// WireGuard device and, on the host, the link's MTU, its addresses, the routes that
// are wgnet's (or wg-quick's) business, some sysctls and wgnet's firewall table.
type running struct {
	dev       *device.State // each peer's allowed IPs masked and sorted
	mtu       int
	addresses []netip.Prefix
	routes    []hostnet.Route // managed routes only, normalized (see readRunning)
	sysctls   map[string]string
	firewall  *hostnet.Firewall // nil: no table
	// firewallBackend is what the host writes wgnet's table with ("" not known).
	firewallBackend string
	up              bool           // the link is administratively up
	tunnel          *tunnelRunning // the full tunnel's rules and tables in scope
	// hostfw is the host's iptables as read (nil: not read), hostfwOurs the
	// interface's rules in it.
	hostfw     []*dockerfw.View
	hostfwOurs []dockerfw.Rule
}

// target is what Sync drives an interface to: from a config (configTarget), or
// the interface as it was before a change (snapshot.target), for a rollback.
type target struct {
	// dev is the WireGuard device wanted; for a target made from a config its
	// Configured holds the endpoints the config gave at the last up or sync, so
	// that a peer who roamed is left where it is.
	dev *devconf.Want
	// peerNames names the wanted peers by public key (base64).
	peerNames map[string]string
	mtu       int // 0: leave
	addresses []netip.Prefix
	routes    []hostnet.Route // normalized
	// sysctls are the values wanted for some keys; the others are left alone.
	sysctls map[string]string
	// firewallManaged says whether wgnet's table is this target's business
	// (not with --no-forwarding); firewall is the table wanted, nil for none.
	firewallManaged bool
	firewall        *hostnet.Firewall
	firewallTable   string
	// linkUp asks for the link to be set up (with its MTU), as up does for an
	// interface it creates; false leaves the link as it is.
	linkUp bool
	// tunnel is the full tunnel wanted (tunnel.go); nil leaves it alone.
	tunnel *tunnelTarget
	// hostfw is wgnet's part of the host's forward firewall; nil leaves it
	// alone (not read).
	hostfw *hostFWTarget
	// notes say what the target leaves out and why (a routed subnet with no
	// route yet), for the plan.
	notes []string
}

// Peer change operations in a Plan, as a diff shows them.
const (
	PeerAdd    = string(devconf.Add)
	PeerRemove = string(devconf.Remove)
	PeerUpdate = string(devconf.Update)
)

// Plan is the difference between a running interface and what it should be, and
// what Sync does about it, step by step. It never holds a key other than public
// ones: private and preshared key changes are only flagged.
type Plan struct {
	Interface string `json:"interface"`
	// Adopt is set when wgnet has no state for the interface (another tool, such
	// as wg-quick, made it): sync takes it over and writes one, so that `wgnet
	// down` removes it afterwards.
	Adopt bool `json:"adopt,omitempty"`
	// PrivateKey is set when the private key changes; every session restarts.
	PrivateKey bool `json:"private_key_changes,omitempty"`
	// PublicKey is the new public key when the private key changes: every peer of
	// this host needs it.
	PublicKey  *wgkey.Key      `json:"public_key,omitempty"`
	ListenPort *Change[int]    `json:"listen_port,omitempty"`
	FwMark     *Change[int]    `json:"fwmark,omitempty"`
	MTU        *Change[int]    `json:"mtu,omitempty"`
	Peers      []PeerChange    `json:"peers"`
	Addresses  PrefixChanges   `json:"addresses"`
	Routes     RouteChanges    `json:"routes"`
	Sysctls    []SysctlChange  `json:"sysctls"`
	Firewall   *FirewallChange `json:"firewall,omitempty"`
	// Rules and TunnelFirewall are a full tunnel's policy rules and nftables
	// tables (tunnel.go).
	Rules          RuleChanges           `json:"rules,omitzero"`
	TunnelFirewall *TunnelFirewallChange `json:"tunnel_firewall,omitempty"`
	// HostFirewall changes wgnet's rules in the host's own forward firewall.
	HostFirewall *HostFirewallChange `json:"host_firewall,omitempty"`
	// Notes explain what the plan leaves alone and why, and what a change costs.
	Notes []string `json:"notes,omitempty"`

	dev *devconf.Changes // what the device changes are made from; nil: none
	// linkUp sets the link up with MTU upMTU (an interface just created).
	linkUp bool
	upMTU  int
}

// Change is a value that changes.
type Change[T any] struct {
	Old T `json:"old"`
	New T `json:"new"`
}

// PeerChange is one peer added (+), removed (-) or changed (~).
type PeerChange struct {
	Op        string    `json:"op"`
	PublicKey wgkey.Key `json:"public_key"`
	Name      string    `json:"name,omitempty"`
	// AllowedIPs is the whole list of a peer added or removed.
	AllowedIPs []netip.Prefix `json:"allowed_ips,omitempty"`
	// AddAllowedIPs and RemoveAllowedIPs are a changed peer's prefix changes.
	AddAllowedIPs    []netip.Prefix `json:"add_allowed_ips,omitempty"`
	RemoveAllowedIPs []netip.Prefix `json:"remove_allowed_ips,omitempty"`
	// ReplaceAllowedIPs is set when the device cannot remove single prefixes, so
	// the peer's whole list is rewritten: packets to it may drop for a moment.
	ReplaceAllowedIPs bool            `json:"replace_allowed_ips,omitempty"`
	Endpoint          *Change[string] `json:"endpoint,omitempty"`
	// PresharedKey is "set", "changed" or "removed"; never the key.
	PresharedKey string       `json:"preshared_key,omitempty"`
	Keepalive    *Change[int] `json:"persistent_keepalive,omitempty"`
}

// PrefixChanges are prefixes added and removed.
type PrefixChanges struct {
	Add    []netip.Prefix `json:"add"`
	Remove []netip.Prefix `json:"remove"`
}

// RouteChanges are routes added and removed.
type RouteChanges struct {
	Add    []hostnet.Route `json:"add"`
	Remove []hostnet.Route `json:"remove"`
}

// FirewallChange creates, replaces or deletes wgnet's nftables table.
type FirewallChange struct {
	Action        string   `json:"action"` // "create", "replace" or "delete"
	Table         string   `json:"table"`
	ClampMSS      []string `json:"clamp_mss,omitempty"`
	DropRedirects []string `json:"drop_redirects,omitempty"`
	// Rules are the policy filter's rules added and removed; Default its default
	// verdict when it changes ("accept", "deny", or "none": no filter).
	Rules   []RuleChange    `json:"rules,omitempty"`
	Default *Change[string] `json:"default,omitempty"`
	// DeniesMore: the change denies traffic the running filter lets through
	// (Denied is an example), or switches to default deny.
	DeniesMore bool   `json:"denies_more,omitempty"`
	Denied     string `json:"denied,omitempty"`
	// Backend is "iptables" when the host writes the table with iptables
	// (WGNET_FIREWALL), empty for nftables.
	Backend string `json:"backend,omitempty"`

	want *hostnet.Firewall
	// forget selects the conntrack entries to delete once the table is in
	// place: connections the new filter denies; nil: none.
	forget func(hostnet.Flow) bool
}

// Empty reports whether the plan changes nothing (notes aside).
func (p *Plan) Empty() bool {
	return !p.linkUp && !p.PrivateKey && p.ListenPort == nil && p.FwMark == nil && p.MTU == nil &&
		len(p.Peers) == 0 && len(p.Addresses.Add)+len(p.Addresses.Remove) == 0 &&
		len(p.Routes.Add)+len(p.Routes.Remove) == 0 && len(p.Sysctls) == 0 && p.Firewall == nil && p.HostFirewall == nil &&
		p.tunnelEmpty()
}

// deviceChanges reports whether the plan changes the WireGuard device.
func (p *Plan) deviceChanges() bool {
	return p.PrivateKey || p.ListenPort != nil || p.FwMark != nil || len(p.Peers) > 0
}

// normRoute puts a route in the form routes are compared in: destination masked,
// the main table as 0.
func normRoute(r hostnet.Route) hostnet.Route {
	r.Dst = r.Dst.Masked()
	if r.Table == hostnet.TableMain {
		r.Table = 0
	}
	return r
}

func compareRoute(a, b hostnet.Route) int {
	if c := cmp.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	if c := comparePrefix(a.Dst, b.Dst); c != 0 {
		return c
	}
	return strings.Compare(a.Dev, b.Dev)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// sortedAddrs sorts interface addresses (which keep their host bits).
func sortedAddrs(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

// sortedPrefixes masks and sorts allowed IPs.
func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

// minus returns the elements of a not in b; both sorted by compare.
func minus[T any](a, b []T, compare func(T, T) int) []T {
	var out []T
	for _, x := range a {
		if _, found := slices.BinarySearchFunc(b, x, compare); !found {
			out = append(out, x)
		}
	}
	return out
}

// hostPrefix reports whether an address prefix is a single host (/32, /128), for
// which the kernel adds no prefix route.
func hostPrefix(p netip.Prefix) bool { return p.Bits() == p.Addr().BitLen() }

// diffDevice adds to plan the device changes from r to t (worked out by
// devconf.Diff). canRemove says whether the device removes single allowed IPs.
// names name peers the target does not.
func diffDevice(plan *Plan, r *device.State, t *target, canRemove bool, names map[string]string) {
	d := devconf.Diff(r, t.dev, canRemove)
	plan.dev = d
	plan.PrivateKey = d.PrivateKey != nil
	if d.PrivateKey != nil {
		pub := d.PrivateKey.Public()
		plan.PublicKey = &pub
	}
	if c := d.ListenPort; c != nil {
		plan.ListenPort = &Change[int]{Old: c.Old, New: c.New}
	}
	if c := d.FwMark; c != nil {
		plan.FwMark = &Change[int]{Old: c.Old, New: c.New}
	}
	for _, c := range d.Peers {
		name := t.peerNames[c.PublicKey.String()]
		if c.Op == devconf.Remove {
			name = names[c.PublicKey.String()]
		}
		plan.Peers = append(plan.Peers, peerChange(c, name))
	}
	for _, rm := range d.Roamed {
		plan.Notes = append(plan.Notes, fmt.Sprintf("peer %s roamed to %s; its configured endpoint %s did not change, so it is left where it is",
			peerLabel(t.peerNames[rm.PublicKey.String()], rm.PublicKey), rm.Current, rm.Configured))
	}
	slices.SortFunc(plan.Peers, func(a, b PeerChange) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return slices.Compare(a.PublicKey[:], b.PublicKey[:])
	})
}

func peerLabel(name string, k wgkey.Key) string {
	if name == "" {
		return k.String()
	}
	return name + " (" + k.String() + ")"
}

// peerChange shows a device change of a peer in the plan: never a key other than
// public ones.
func peerChange(c devconf.PeerChange, name string) PeerChange {
	pc := PeerChange{
		Op:                string(c.Op),
		PublicKey:         c.PublicKey,
		Name:              name,
		AddAllowedIPs:     c.AddAllowedIPs,
		RemoveAllowedIPs:  c.RemoveAllowedIPs,
		ReplaceAllowedIPs: c.ReplaceAllowedIPs,
	}
	if c.Op != devconf.Update {
		pc.AllowedIPs = slices.Clone(c.AllowedIPs)
	}
	if k := c.PresharedKey; k != nil {
		switch {
		case k.Old.IsZero():
			pc.PresharedKey = "set"
		case k.New.IsZero():
			pc.PresharedKey = "removed"
		default:
			pc.PresharedKey = "changed"
		}
	}
	if e := c.Endpoint; e != nil {
		pc.Endpoint = &Change[string]{New: e.New.String()}
		if e.Old.IsValid() {
			pc.Endpoint.Old = e.Old.String()
		}
	}
	if k := c.PersistentKeepalive; k != nil {
		pc.Keepalive = &Change[int]{Old: int(k.Old / time.Second), New: int(k.New / time.Second)}
	}
	return pc
}

// diffHost adds to plan the host changes from r to t.
// where names where the table is kept (hostnet.FirewallWhere).
func (c *FirewallChange) where() string { return hostnet.FirewallWhere(c.Backend, c.Table) }

// firewallChange is the change that creates or replaces wgnet's table with fw.
func firewallChange(action string, fw *hostnet.Firewall) *FirewallChange {
	return &FirewallChange{Action: action, Table: fw.Table, ClampMSS: fw.ClampMSS, DropRedirects: fw.DropRedirects, want: fw}
}

func diffHost(plan *Plan, r *running, t *target) {
	if t.linkUp && !r.up {
		plan.linkUp, plan.upMTU = true, cmp.Or(t.mtu, r.mtu)
	}
	if t.mtu != 0 && t.mtu != r.mtu {
		plan.MTU = &Change[int]{Old: r.mtu, New: t.mtu}
	}
	plan.Addresses.Add = minus(t.addresses, r.addresses, comparePrefix)
	plan.Addresses.Remove = minus(r.addresses, t.addresses, comparePrefix)
	plan.Routes.Add = minus(t.routes, r.routes, compareRoute)
	plan.Routes.Remove = minus(r.routes, t.routes, compareRoute)
	for _, k := range slices.Sorted(maps.Keys(t.sysctls)) {
		cur, ok := r.sysctls[k]
		if ok && cur != t.sysctls[k] {
			plan.Sysctls = append(plan.Sysctls, SysctlChange{Key: k, Old: cur, New: t.sysctls[k]})
		}
	}
	if t.firewallManaged {
		switch {
		case t.firewall == nil && r.firewall != nil:
			plan.Firewall = &FirewallChange{Action: "delete", Table: r.firewall.Table}
			plan.Firewall.policyChange(r.firewall.Filter, nil, nil)
		case t.firewall != nil && r.firewall == nil:
			plan.Firewall = firewallChange("create", t.firewall)
			plan.Firewall.policyChange(nil, t.firewall.Filter, tunnelPrefixes(r, t))
		case t.firewall != nil && (!slices.Equal(t.firewall.ClampMSS, r.firewall.ClampMSS) || !slices.Equal(t.firewall.DropRedirects, r.firewall.DropRedirects) ||
			!t.firewall.Filter.Equal(r.firewall.Filter)):
			plan.Firewall = firewallChange("replace", t.firewall)
			plan.Firewall.policyChange(r.firewall.Filter, t.firewall.Filter, tunnelPrefixes(r, t))
		}
	}
	if plan.Firewall != nil && r.firewallBackend == hostnet.TunnelIptables {
		plan.Firewall.Backend = r.firewallBackend
	}
	diffTunnel(plan, r, t)
	plan.Notes = append(plan.Notes, t.notes...)
}

// patches turns the plan's device changes into two patches (see
// devconf.Changes.Patches): the first adds and updates, the second removes.
// Between them the host gets its new addresses and routes.
//
// A fwmark going to 0 (a full tunnel taken down) is in the second patch: it is
// reset only after the tunnel's rules are gone (see removeRules).
func (p *Plan) patches() (add, remove device.Config) {
	if p.dev == nil {
		return add, remove
	}
	add, remove = p.dev.Patches()
	if add.FwMark != nil && *add.FwMark == 0 {
		add.FwMark, remove.FwMark = nil, add.FwMark
	}
	return add, remove
}
