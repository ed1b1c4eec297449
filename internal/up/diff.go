package up

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/device"
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
}

// target is what Sync drives an interface to: from a config (configTarget), or
// the interface as it was before a change (snapshot.target), for a rollback.
type target struct {
	privateKey *wgkey.Private // nil: leave; zero: remove the key
	listenPort *int           // nil: leave
	fwMark     *int           // nil: leave
	peers      []peerTarget
	mtu        int // 0: leave
	addresses  []netip.Prefix
	routes     []hostnet.Route // normalized
	// sysctls are the values wanted for some keys; the others are left alone.
	sysctls map[string]string
	// firewallManaged says whether wgnet's table is this target's business
	// (not with --no-forwarding); firewall is the table wanted, nil for none.
	firewallManaged bool
	firewall        *hostnet.Firewall
	firewallTable   string
	// configured holds the endpoints the config gave at the last up or sync, for
	// targets made from a config: a peer whose configured endpoint did not change
	// but who roamed elsewhere is left where it is.
	configured map[wgkey.Key]netip.AddrPort
}

// peerTarget is one peer of a target.
type peerTarget struct {
	key  wgkey.Key
	name string
	// psk is the preshared key (zero: none), meaningful only when pskKnown.
	psk      wgkey.Private
	pskKnown bool
	endpoint netip.AddrPort // zero: leave as it is
	// keepalive is the persistent keepalive interval (0: off).
	keepalive time.Duration
	allowed   []netip.Prefix // masked, sorted
}

// Peer change operations in a Plan, as a diff shows them.
const (
	PeerAdd    = "+"
	PeerRemove = "-"
	PeerUpdate = "~"
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
	PrivateKey bool            `json:"private_key_changes,omitempty"`
	ListenPort *Change[int]    `json:"listen_port,omitempty"`
	FwMark     *Change[int]    `json:"fwmark,omitempty"`
	MTU        *Change[int]    `json:"mtu,omitempty"`
	Peers      []PeerChange    `json:"peers"`
	Addresses  PrefixChanges   `json:"addresses"`
	Routes     RouteChanges    `json:"routes"`
	Sysctls    []SysctlChange  `json:"sysctls"`
	Firewall   *FirewallChange `json:"firewall,omitempty"`
	// Notes explain what the plan leaves alone and why, and what a change costs.
	Notes []string `json:"notes,omitempty"`

	privateKey *wgkey.Private
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

	psk       *wgkey.Key
	endpoint  *netip.AddrPort
	keepalive *time.Duration
	allowed   []netip.Prefix // the whole wanted list, for ReplaceAllowedIPs
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
	Action   string   `json:"action"` // "create", "replace" or "delete"
	Table    string   `json:"table"`
	ClampMSS []string `json:"clamp_mss,omitempty"`

	want *hostnet.Firewall
}

// Empty reports whether the plan changes nothing (notes aside).
func (p *Plan) Empty() bool {
	return !p.PrivateKey && p.ListenPort == nil && p.FwMark == nil && p.MTU == nil &&
		len(p.Peers) == 0 && len(p.Addresses.Add)+len(p.Addresses.Remove) == 0 &&
		len(p.Routes.Add)+len(p.Routes.Remove) == 0 && len(p.Sysctls) == 0 && p.Firewall == nil
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

// diffDevice adds to plan the device changes from r to t. canRemove says whether
// the device removes single allowed IPs. names name peers the target does not.
func diffDevice(plan *Plan, r *device.State, t *target, canRemove bool, names map[string]string) {
	if t.privateKey != nil {
		var want wgkey.Key
		if !t.privateKey.IsZero() {
			want = t.privateKey.Public()
		}
		if want != r.PublicKey {
			plan.PrivateKey, plan.privateKey = true, t.privateKey
		}
	}
	if t.listenPort != nil && *t.listenPort != r.ListenPort {
		plan.ListenPort = &Change[int]{Old: r.ListenPort, New: *t.listenPort}
	}
	if t.fwMark != nil && *t.fwMark != r.FwMark {
		plan.FwMark = &Change[int]{Old: r.FwMark, New: *t.fwMark}
	}
	have := make(map[wgkey.Key]*device.PeerState, len(r.Peers))
	for i := range r.Peers {
		have[r.Peers[i].PublicKey] = &r.Peers[i]
	}
	wanted := make(map[wgkey.Key]bool, len(t.peers))
	for i := range t.peers {
		tp := &t.peers[i]
		wanted[tp.key] = true
		rp, ok := have[tp.key]
		if !ok {
			plan.Peers = append(plan.Peers, addPeer(tp))
			continue
		}
		c, changed, roamed := changePeer(rp, tp, t.configured, canRemove)
		if changed {
			plan.Peers = append(plan.Peers, c)
		}
		if roamed != nil {
			plan.Notes = append(plan.Notes, fmt.Sprintf("peer %s roamed to %s; its configured endpoint %s did not change, so it is left where it is",
				peerLabel(tp.name, tp.key), roamed.Old, roamed.New))
		}
	}
	for i := range r.Peers {
		rp := &r.Peers[i]
		if wanted[rp.PublicKey] {
			continue
		}
		plan.Peers = append(plan.Peers, PeerChange{
			Op:         PeerRemove,
			PublicKey:  rp.PublicKey,
			Name:       names[rp.PublicKey.String()],
			AllowedIPs: slices.Clone(rp.AllowedIPs),
		})
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

func addPeer(tp *peerTarget) PeerChange {
	c := PeerChange{Op: PeerAdd, PublicKey: tp.key, Name: tp.name, AllowedIPs: slices.Clone(tp.allowed), allowed: tp.allowed}
	if tp.pskKnown && !tp.psk.IsZero() {
		k := wgkey.Key(tp.psk)
		c.psk, c.PresharedKey = &k, "set"
	}
	if tp.endpoint.IsValid() {
		e := tp.endpoint
		c.endpoint = &e
		c.Endpoint = &Change[string]{New: e.String()}
	}
	if tp.keepalive != 0 {
		k := tp.keepalive
		c.keepalive = &k
		c.Keepalive = &Change[int]{New: int(k / time.Second)}
	}
	return c
}

// changePeer works out what changes on a peer that stays, and reports whether
// anything does. roamed is set when the peer's endpoint differs from the
// configured one only because the peer roamed: the config did not change it, so
// it is left alone (setting it would undo the roaming, and cut the peer off if it
// moved for a reason).
func changePeer(rp *device.PeerState, tp *peerTarget, configured map[wgkey.Key]netip.AddrPort, canRemove bool) (c PeerChange, changed bool, roamed *Change[string]) {
	c = PeerChange{Op: PeerUpdate, PublicKey: tp.key, Name: tp.name, allowed: tp.allowed}
	if tp.pskKnown && !tp.psk.Equal(rp.PresharedKey) {
		k := wgkey.Key(tp.psk)
		c.psk = &k
		switch {
		case rp.PresharedKey.IsZero():
			c.PresharedKey = "set"
		case tp.psk.IsZero():
			c.PresharedKey = "removed"
		default:
			c.PresharedKey = "changed"
		}
		changed = true
	}
	if e := tp.endpoint; e.IsValid() && e != rp.Endpoint {
		old := ""
		if rp.Endpoint.IsValid() {
			old = rp.Endpoint.String()
		}
		ch := &Change[string]{Old: old, New: e.String()}
		if last, ok := configured[tp.key]; ok && last == e && rp.Endpoint.IsValid() {
			roamed = ch
		} else {
			c.endpoint, c.Endpoint = &e, ch
			changed = true
		}
	}
	if tp.keepalive != rp.PersistentKeepalive {
		k := tp.keepalive
		c.keepalive = &k
		c.Keepalive = &Change[int]{Old: int(rp.PersistentKeepalive / time.Second), New: int(k / time.Second)}
		changed = true
	}
	c.AddAllowedIPs = minus(tp.allowed, rp.AllowedIPs, comparePrefix)
	c.RemoveAllowedIPs = minus(rp.AllowedIPs, tp.allowed, comparePrefix)
	if len(c.AddAllowedIPs) > 0 || len(c.RemoveAllowedIPs) > 0 {
		changed = true
	}
	if len(c.RemoveAllowedIPs) > 0 && !canRemove {
		c.ReplaceAllowedIPs = true
	}
	return c, changed, roamed
}

// diffHost adds to plan the host changes from r to t.
func diffHost(plan *Plan, r *running, t *target) {
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
		case t.firewall != nil && r.firewall == nil:
			plan.Firewall = &FirewallChange{Action: "create", Table: t.firewall.Table, ClampMSS: t.firewall.ClampMSS, want: t.firewall}
		case t.firewall != nil && !slices.Equal(t.firewall.ClampMSS, r.firewall.ClampMSS):
			plan.Firewall = &FirewallChange{Action: "replace", Table: t.firewall.Table, ClampMSS: t.firewall.ClampMSS, want: t.firewall}
		}
	}
}

// patches turns the plan's device changes into two patches: the first adds and
// updates (new peers, new prefixes, keys, endpoints), the second removes (single
// prefixes, then peers). Between them the host gets its new addresses and routes,
// so that a prefix moving from one peer to another is never without one, and a
// new peer's route exists before the old one's goes.
func (p *Plan) patches() (add, remove device.Config) {
	add.PrivateKey = p.privateKey
	if p.ListenPort != nil {
		n := p.ListenPort.New
		add.ListenPort = &n
	}
	if p.FwMark != nil {
		n := p.FwMark.New
		add.FwMark = &n
	}
	for _, c := range p.Peers {
		switch c.Op {
		case PeerAdd:
			add.Peers = append(add.Peers, device.PeerConfig{
				PublicKey:           c.PublicKey,
				PresharedKey:        c.psk,
				Endpoint:            c.endpoint,
				PersistentKeepalive: c.keepalive,
				AllowedIPs:          c.allowed,
			})
		case PeerUpdate:
			pc := device.PeerConfig{
				PublicKey:           c.PublicKey,
				UpdateOnly:          true,
				PresharedKey:        c.psk,
				Endpoint:            c.endpoint,
				PersistentKeepalive: c.keepalive,
				AllowedIPs:          c.AddAllowedIPs,
			}
			if c.ReplaceAllowedIPs {
				pc.ReplaceAllowedIPs, pc.AllowedIPs = true, c.allowed
			} else if len(c.RemoveAllowedIPs) > 0 {
				remove.Peers = append(remove.Peers, device.PeerConfig{
					PublicKey:        c.PublicKey,
					UpdateOnly:       true,
					RemoveAllowedIPs: c.RemoveAllowedIPs,
				})
			}
			if pc.PresharedKey != nil || pc.Endpoint != nil || pc.PersistentKeepalive != nil || len(pc.AllowedIPs) > 0 || pc.ReplaceAllowedIPs {
				add.Peers = append(add.Peers, pc)
			}
		}
	}
	for _, c := range p.Peers {
		if c.Op == PeerRemove {
			remove.Peers = append(remove.Peers, device.PeerConfig{PublicKey: c.PublicKey, Remove: true})
		}
	}
	return add, remove
}

func emptyPatch(c device.Config) bool {
	return c.PrivateKey == nil && c.ListenPort == nil && c.FwMark == nil && !c.ReplacePeers && len(c.Peers) == 0
}
