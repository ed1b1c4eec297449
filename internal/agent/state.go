package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// ErrRefused marks a desired state the agent's guardrails refuse: the
// controller is not root on the host.
var ErrRefused = errors.New("refused")

// Intent turns a desired state from the controller into the interface's
// intent, after the guardrails (Guard): each field is parsed once, and
// judged as it is. The private key stays where it is: keyFile, read on the
// host by the data plane. Nothing the controller sends becomes a hook or a
// command: the wire type has no field for them. A state with DNS, Table,
// FwMark or a full tunnel's default route is refused (Allowed.Intent takes
// those the host's operator allowed).
func Intent(st *api.AgentState, keyFile string, own wgkey.Key) (*intent.Host, error) {
	return guarded(st, keyFile, own, made{}, Allowed{})
}

// made is an intent made before, and the state it was made of: the memo
// that lets IntentAfter judge only the peers that changed.
type made struct {
	st *api.AgentState
	h  *intent.Host
}

// IntentAfter is Intent(st, ...), made knowing that prevH is
// Intent(prev, ...) with the same key file and key: when the two states
// agree on every field but the peers, revision and URLs, a peer of st equal
// to one of prev (both lists sorted by name, as the controller sends them
// and api.ApplyDelta leaves them) gets prevH's peer, which the same rules
// judged against the same subnets and routes; only the others are parsed
// and judged. In a mesh of 1,000, where a delta names one peer, that is one
// peer judged instead of 999. Its result is Intent's, peer for peer (and it
// shares their read-only parts with prevH).
func IntentAfter(prev *api.AgentState, prevH *intent.Host, st *api.AgentState, keyFile string, own wgkey.Key) (*intent.Host, error) {
	return intentAfter(prev, prevH, st, keyFile, own, Allowed{})
}

// intentAfter is IntentAfter with the settings al allows.
func intentAfter(prev *api.AgentState, prevH *intent.Host, st *api.AgentState, keyFile string, own wgkey.Key, al Allowed) (*intent.Host, error) {
	m := made{prev, prevH}
	if prev == nil || prevH == nil || len(prevH.Peers) != len(prev.Peers) || !sameHead(prev, st) {
		m = made{}
	}
	return guarded(st, keyFile, own, m, al)
}

// sameHead reports whether two states agree on every field the guardrails
// read besides the peers (the revision and URLs aside).
func sameHead(a, b *api.AgentState) bool {
	x, y := *a, *b
	x.Peers, y.Peers, x.Revision, y.Revision, x.URLs, y.URLs = nil, nil, 0, 0, nil, nil
	return reflect.DeepEqual(x, y)
}

// samePeer reports whether two wire peers are equal.
func samePeer(a, b *api.Peer) bool {
	return a.Name == b.Name && a.PublicKey == b.PublicKey && a.Endpoint == b.Endpoint && a.Keepalive == b.Keepalive &&
		slices.Equal(a.AllowedIPs, b.AllowedIPs)
}

// Guard checks a desired state against the agent's rules before anything is
// applied: every address and every peer prefix lies inside the network's
// subnets or a routed subnet approved for some host; no prefix is a default
// route (an agent never routes everything into the tunnel on the
// controller's word); no peer claims the host's own routed subnets or its
// own key; interface settings are in range.
func Guard(st *api.AgentState, own wgkey.Key) error {
	_, err := guarded(st, "", own, made{}, Allowed{})
	return err
}

// guarded is Intent and Guard in one pass: a state the guardrails refuse is
// ErrRefused; one that can't be read otherwise is another error.
// With prev (made of a state with the same head), a peer equal to one of
// prev.st is prev.h's.
func guarded(st *api.AgentState, keyFile string, own wgkey.Key, prev made, al Allowed) (*intent.Host, error) {
	h, r, err := judgeHead(st, keyFile, own, al)
	if err != nil {
		return nil, err
	}
	// Filled in place: a peer is a large struct, and a mesh has many. Room
	// for an eighth more: the agent patches peers added later into this
	// slice (heldIntent), and growing it copies every peer.
	h.Peers = make([]wgconf.Peer, len(st.Peers), len(st.Peers)+len(st.Peers)/8+4)
	var unreadable error // a peer's endpoint; said once every peer is judged
	j := 0               // the next peer of prev.st to match
	// Peers kept from prev are copied a run at a time (h.Peers[ri:ri+rn]
	// from prev.h.Peers[rj:]), not one 300-byte struct at a time.
	ri, rj, rn := 0, 0, 0
	for i := range st.Peers {
		p := &st.Peers[i]
		if prev.st != nil {
			if i > 0 && st.Peers[i-1].Name >= p.Name {
				copy(h.Peers[ri:ri+rn], prev.h.Peers[rj:rj+rn])
				prev, rn = made{}, 0 // not sorted: judged one by one
			} else {
				for j < len(prev.st.Peers) && prev.st.Peers[j].Name < p.Name {
					j++
				}
				if j < len(prev.st.Peers) && samePeer(&prev.st.Peers[j], p) {
					if rn == 0 || ri+rn != i || rj+rn != j {
						copy(h.Peers[ri:ri+rn], prev.h.Peers[rj:rj+rn])
						ri, rj, rn = i, j, 0
					}
					rn++
					continue
				}
			}
		}
		if err := r.peer(p, &h.Peers[i], &unreadable); err != nil {
			return nil, err
		}
	}
	if rn > 0 {
		copy(h.Peers[ri:ri+rn], prev.h.Peers[rj:rj+rn])
	}
	return r.finish(h, st, unreadable)
}

// rules are what a state's head says of its peers: the prefixes they may
// route and the host's own routes and key, which they may not claim.
type rules struct {
	st      *api.AgentState
	own     wgkey.Key
	allowed []netip.Prefix // the network's subnets and approved routes
	mine    []netip.Prefix // the host's own routes
	// fullTunnel: a peer may route a default route (Allowed.FullTunnel).
	fullTunnel bool
	// skipped are the approved routes the host does not take: a peer's
	// prefix inside one is left out of its allowed IPs, not refused.
	skipped []netip.Prefix
}

func (r *rules) refuse(format string, a ...any) error {
	return fmt.Errorf("revision %d: %w: %s", r.st.Revision, ErrRefused, fmt.Sprintf(format, a...))
}

// judgeHead judges every field of st but the peers and the filter: the
// intent without them, and the rules its peers are judged by; al says
// which settings the host's operator allowed.
func judgeHead(st *api.AgentState, keyFile string, own wgkey.Key, al Allowed) (*intent.Host, *rules, error) {
	r := &rules{st: st, own: own}
	subnets, err := routePrefixes("subnets", st.Subnets)
	if err != nil {
		return nil, nil, r.refuse("%v", err)
	}
	approved, err := routePrefixes("approved_routes", st.ApprovedRoutes)
	if err != nil {
		return nil, nil, r.refuse("%v", err)
	}
	mine, err := routePrefixes("routes", st.Routes)
	if err != nil {
		return nil, nil, r.refuse("%v", err)
	}
	for _, p := range append(slices.Clone(approved), mine...) {
		if p.Bits() == 0 {
			return nil, nil, r.refuse("route %s is a default route: an agent never takes one from the controller", p)
		}
	}
	for _, p := range mine {
		if !within(p, approved) {
			return nil, nil, r.refuse("own route %s is not among the network's approved routes", p)
		}
	}
	addrs, err := prefixes("addresses", st.Addresses)
	if err != nil {
		return nil, nil, r.refuse("%v", err)
	}
	for _, a := range addrs {
		// The address's prefix is a route the kernel adds with it: all of
		// it, not only the address, lies in a subnet.
		if !within(a.Masked(), subnets) {
			return nil, nil, r.refuse("address %s (a route to %s) is outside the network's subnets %v", a, a.Masked(), subnets)
		}
	}
	// The network's subnets and approved routes bound every peer's
	// prefixes. A subnet that may not be routed refuses the state; an
	// approved route that may not, the agent does not take (r.skipped: the
	// peers' prefixes inside it are left out, as a Tailscale node does
	// without --accept-routes), so that one route the host won't take does
	// not hold it at an old revision, deaf to removals and new keys. Never
	// taken: a route over the ranges no tunnel routes (api.NeverRouted,
	// 169.254.169.254 among them) or wider than /8 (a default route in
	// parts: 0.0.0.0/1 and 128.0.0.0/1); unless the host allowed public
	// routes or a full tunnel at join, one outside api.AgentRanges.
	for _, p := range subnets {
		if err := al.routable(p); err != nil {
			return nil, nil, r.refuse("subnet %v", err)
		}
	}
	taken := approved
	for i, p := range approved {
		if al.routable(p) != nil {
			if len(r.skipped) == 0 {
				taken = slices.Clone(approved[:i])
			}
			r.skipped = append(r.skipped, p)
		} else if len(r.skipped) > 0 {
			taken = append(taken, p)
		}
	}
	if st.ListenPort < 0 || st.ListenPort > 65535 || st.MTU < 0 || (st.MTU != 0 && (st.MTU < 1280 || st.MTU > 65535)) {
		return nil, nil, r.refuse("listen port %d or MTU %d out of range", st.ListenPort, st.MTU)
	}
	h := &intent.Host{Name: st.Host, KeyFile: keyFile, MTU: st.MTU, Addresses: addrs, Routes: mine,
		Comments: []string{fmt.Sprintf("wgnet agent: host %s of network %s, revision %d", st.Host, st.Network, st.Revision)},
		Forward:  intent.Forwarding{V4: st.ForwardV4, V6: st.ForwardV6}}
	if err := al.settings(st, h, r); err != nil {
		return nil, nil, err
	}
	h.Firewall.ClampMSS = st.ClampMSS
	if st.ListenPort > 0 {
		port := uint16(st.ListenPort)
		h.ListenPort = &port
	}
	r.allowed, r.mine = append(slices.Clone(subnets), taken...), mine
	for _, p := range r.skipped { // said where the intent is shown (wgnet show, the state record)
		h.Comments = append(h.Comments, fmt.Sprintf("approved route not taken on this host: %v", al.routable(p)))
	}
	return h, r, nil
}

// peer judges p into wp: a refusal is returned; an endpoint that can't be
// read is kept in *unreadable, the first only (said once every peer is
// judged: a refusal of a later peer comes first).
func (r *rules) peer(p *api.Peer, wp *wgconf.Peer, unreadable *error) error {
	wp.Name, wp.PersistentKeepalive = p.Name, p.Keepalive
	k, err := wgkey.ParseKey(p.PublicKey)
	if err != nil || k.IsZero() || k == r.own {
		return r.refuse("peer %s: public key %q is not another host's", p.Name, p.PublicKey)
	}
	wp.PublicKey = k
	if wp.AllowedIPs, err = routePrefixes("", p.AllowedIPs); err != nil {
		return r.refuse("peer %s allowed_ips: %v", p.Name, err)
	}
	if wp.AllowedIPs, err = r.routes(p.Name, wp.AllowedIPs); err != nil {
		return err
	}
	if p.Endpoint != "" {
		ep, err := wgconf.ParseEndpoint(p.Endpoint)
		if err != nil && *unreadable == nil {
			*unreadable = fmt.Errorf("peer %s: %w", p.Name, err)
		}
		wp.Endpoint = &ep
	}
	return nil
}

// routes judges a peer's allowed IPs, parsed, by the head's rules: the part
// of a peer's judgment that depends on the head (its subnets, approved
// routes and own routes). It returns those the host takes: allowed itself,
// or when some lie inside a route the host does not take (r.skipped), a
// copy without them.
func (r *rules) routes(name string, allowed []netip.Prefix) ([]netip.Prefix, error) {
	var out []netip.Prefix // nil: all of allowed so far
	for i, q := range allowed {
		switch {
		case q.Bits() == 0 && r.fullTunnel: // allowed at join
		case q.Bits() == 0:
			return nil, r.refuse("peer %s: %s is a default route (a full tunnel: wgnet agent join --allow full-tunnel)", name, q)
		case !within(q, r.allowed) && within(q, r.skipped):
			if out == nil {
				out = append(make([]netip.Prefix, 0, len(allowed)), allowed[:i]...)
			}
			continue // not taken
		case !within(q, r.allowed):
			return nil, r.refuse("peer %s: %s is outside the network's subnets and approved routes", name, q)
		case overlapsAny(q, r.mine):
			return nil, r.refuse("peer %s: %s overlaps this host's own routed subnets %v", name, q, r.mine)
		}
		if out != nil {
			out = append(out, q)
		}
	}
	if out == nil {
		return allowed, nil
	}
	return out, nil
}

// routable says why the host does not take p, a subnet or an approved
// route (nil: it does).
func (al Allowed) routable(p netip.Prefix) error {
	if r, ok := api.Unroutable(p); ok {
		return fmt.Errorf("%s overlaps %s, which no tunnel routes", p, r)
	}
	if p.Bits() < widestRoute {
		// With the ranges above out, routes no wider than /8 can't
		// together cover a family: no default route in parts.
		return fmt.Errorf("%s is wider than /%d: a default route, or a part of one", p, widestRoute)
	}
	if !al.FullTunnel && !al.PublicRoutes && !api.InAgentRanges(p) {
		return fmt.Errorf("%s is public address space: an agent routes only private, shared, benchmarking and documentation ranges unless its host's operator allowed public routes at join (wgnet agent join --allow public-routes)", p)
	}
	return nil
}

// skipsRoutes reports whether st's head has an approved route the host
// does not take (al.routable).
func skipsRoutes(st *api.AgentState, al Allowed) bool {
	for _, s := range st.ApprovedRoutes {
		if p, err := netip.ParsePrefix(s); err == nil && al.routable(p) != nil {
			return true
		}
	}
	return false
}

// samePeerRules reports whether two states' heads judge peers alike: the
// same subnets, approved routes and own routes (the rest of a head, DNS,
// MTU, a filter, does not touch a peer).
func samePeerRules(a, b *api.AgentState) bool {
	return slices.Equal(a.Subnets, b.Subnets) && slices.Equal(a.ApprovedRoutes, b.ApprovedRoutes) && slices.Equal(a.Routes, b.Routes)
}

// finish is h once its peers are judged: the endpoint that could not be
// read, else the filter judged.
func (r *rules) finish(h *intent.Host, st *api.AgentState, unreadable error) (*intent.Host, error) {
	if unreadable != nil {
		return nil, unreadable
	}
	if st.Filter != nil {
		f, err := filterOf(st.Filter)
		if err != nil {
			return nil, err
		}
		h.Firewall.Filter = f
	}
	return h, nil
}

// memo is the last intent the agent made and the state it made it of:
// heldIntent patches its peers into the next intent, in place.
type memo struct {
	st *held
	h  *intent.Host
}

// patchAtMost is how many peers heldIntent patches into the last intent in
// place (each moves the peers after it); beyond it, they are merged into a
// new slice.
const patchAtMost = 8

// heldIntent is Intent(st.Flat(), keyFile, own), made knowing that prev.h
// is the intent of prev.st, made with the same key file and key. When the
// two states have the same head (but for their revision and URLs), only the
// peers that differ between them (diffPeers: a chunk both share is not even
// read) are parsed and judged, and prev.h's peers are patched IN PLACE into
// the new intent's: prev.h is not to be used again (a DataPlane keeps no
// intent after its Apply returns). A refused state leaves prev.h as it was.
// Another head that judges peers otherwise (samePeerRules) has every kept
// peer's parsed prefixes judged again by its rules first; only a refusal
// among them takes IntentAfter of their wire forms. The result is Intent's,
// peer for peer, and so is the error (TestHeldMatchesFlat).
func heldIntent(prev memo, st *held, keyFile string, own wgkey.Key, al Allowed) (*intent.Host, error) {
	slow := func() (*intent.Host, error) {
		var m made
		if prev.st != nil && prev.h != nil {
			m = made{prev.st.Flat(), prev.h}
		}
		return intentAfter(m.st, m.h, st.Flat(), keyFile, own, al)
	}
	if prev.st == nil || prev.h == nil || prev.st.Peers == nil || st.Peers == nil {
		return slow()
	}
	h, r, err := judgeHead(&st.AgentState, keyFile, own, al)
	if err != nil {
		return nil, err
	}
	if !samePeerRules(&prev.st.AgentState, &st.AgentState) {
		// Another head that judges peers otherwise (a route approved or
		// withdrawn, in every host's head at once): the peers kept are
		// judged again, parsed as they are, by the new rules alone. One
		// that fails goes the slow way, for Intent's error, peer for peer;
		// so does a head with routes the host does not take, before or
		// now (a kept peer's parsed prefixes are then not all its wire's).
		if len(r.skipped) > 0 || skipsRoutes(&prev.st.AgentState, al) {
			return slow()
		}
		for i := range prev.h.Peers {
			if _, err := r.routes(prev.h.Peers[i].Name, prev.h.Peers[i].AllowedIPs); err != nil {
				return slow()
			}
		}
	}
	// The peers that differ, judged before anything is changed.
	type edit struct {
		name string
		p    *wgconf.Peer // nil: removed
	}
	var edits []edit
	var unreadable error
	diffPeers(prev.st.Peers, st.Peers, func(old, p *api.Peer) bool {
		if p == nil {
			edits = append(edits, edit{name: old.Name})
			return true
		}
		wp := new(wgconf.Peer)
		if err = r.peer(p, wp, &unreadable); err != nil {
			return false
		}
		edits = append(edits, edit{p.Name, wp})
		return true
	})
	if err != nil {
		return nil, err
	}
	if h, err = r.finish(h, &st.AgentState, unreadable); err != nil {
		return nil, err
	}
	byName := func(p wgconf.Peer, name string) int { return strings.Compare(p.Name, name) }
	peers := prev.h.Peers
	if len(edits) > patchAtMost {
		out := make([]wgconf.Peer, 0, st.Peers.n+st.Peers.n/8+4)
		i := 0
		for _, e := range edits {
			at, found := slices.BinarySearchFunc(peers[i:], e.name, byName)
			out = append(out, peers[i:i+at]...)
			if i += at; found {
				i++
			}
			if e.p != nil {
				out = append(out, *e.p)
			}
		}
		h.Peers = append(out, peers[i:]...)
		return h, nil
	}
	for _, e := range edits {
		at, found := slices.BinarySearchFunc(peers, e.name, byName)
		switch {
		case e.p == nil && found:
			peers = slices.Delete(peers, at, at+1)
		case e.p == nil:
		case found:
			peers[at] = *e.p
		default:
			peers = slices.Insert(peers, at, *e.p)
		}
	}
	h.Peers = peers
	return h, nil
}

// CheckOwnRoutes is the rule for the routes an agent asks for itself: never a
// default route (the token decides the rest, at the controller).
func CheckOwnRoutes(routes []netip.Prefix) error {
	for _, r := range routes {
		if r.Bits() == 0 {
			return fmt.Errorf("route %s: %w: an agent never claims a default route; an admin routes one with wgnet set", r, ErrRefused)
		}
		if r != r.Masked() {
			return fmt.Errorf("route %s: host bits set (did you mean %s?)", r, r.Masked())
		}
	}
	if err := notDefault(routes); err != nil {
		return fmt.Errorf("%w: an agent never claims a default route, whole or in parts: %v", ErrRefused, err)
	}
	for _, r := range routes {
		if n, ok := api.Unroutable(r); ok {
			return fmt.Errorf("route %s: %w: it overlaps %s, which no tunnel routes", r, ErrRefused, n)
		}
	}
	return nil
}

// widestRoute is the widest prefix an agent takes without --allow
// full-tunnel, from the controller or for itself: a /8, as 10.0.0.0/8.
const widestRoute = 8

// notDefault refuses a default route in parts: a prefix wider than
// widestRoute, or prefixes that together cover a whole family (0.0.0.0/1 and
// 128.0.0.0/1), which route all that family's traffic as 0.0.0.0/0 does.
func notDefault(ps []netip.Prefix) error {
	for _, p := range ps {
		if p.Bits() < widestRoute {
			return fmt.Errorf("%s is wider than /%d: a default route, or a part of one", p, widestRoute)
		}
	}
	for _, all := range []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0), netip.PrefixFrom(netip.IPv6Unspecified(), 0)} {
		if covers(ps, all) {
			return fmt.Errorf("%d prefixes together cover %s: a default route in parts", len(ps), all)
		}
	}
	return nil
}

// covers reports whether the prefixes ps together cover all of b: b is split
// in halves only while some prefix lies strictly inside it, so the work is
// bounded by len(ps) times b's length in bits.
func covers(ps []netip.Prefix, b netip.Prefix) bool {
	var inside []netip.Prefix
	for _, p := range ps {
		if p.Addr().BitLen() != b.Addr().BitLen() || !p.Overlaps(b) {
			continue
		}
		if p.Bits() <= b.Bits() {
			return true
		}
		inside = append(inside, p)
	}
	if len(inside) == 0 || b.Bits() == b.Addr().BitLen() {
		return false
	}
	lo := netip.PrefixFrom(b.Addr(), b.Bits()+1)
	return covers(inside, lo) && covers(inside, netip.PrefixFrom(upperHalf(b), b.Bits()+1))
}

// upperHalf is the first address of b's upper half.
func upperHalf(b netip.Prefix) netip.Addr {
	if b.Addr().Is4() {
		a := b.Addr().As4()
		a[b.Bits()/8] |= 0x80 >> (b.Bits() % 8)
		return netip.AddrFrom4(a)
	}
	a := b.Addr().As16()
	a[b.Bits()/8] |= 0x80 >> (b.Bits() % 8)
	return netip.AddrFrom16(a)
}

// within reports whether p lies inside one of ps.
func within(p netip.Prefix, ps []netip.Prefix) bool {
	return slices.ContainsFunc(ps, func(q netip.Prefix) bool {
		return q.Bits() <= p.Bits() && q.Contains(p.Addr())
	})
}

func overlapsAny(p netip.Prefix, ps []netip.Prefix) bool {
	return slices.ContainsFunc(ps, p.Overlaps)
}

// prefixes parses in; an error names field (when not ""). An IPv4-mapped
// IPv6 prefix (::ffff:10.0.0.0/104) is refused: the checks would judge it
// as IPv6, and WireGuard routes it as IPv4 (wgctrl's family is To4's).
func prefixes(field string, in []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err == nil && p.Addr().Is4In6() {
			err = fmt.Errorf("%s: an IPv4-mapped IPv6 prefix (write the IPv4 one)", s)
		}
		if err != nil && field == "" {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// routePrefixes is prefixes, each a route: no host bits set.
func routePrefixes(field string, in []string) ([]netip.Prefix, error) {
	ps, err := prefixes(field, in)
	for _, p := range ps {
		if p != p.Masked() {
			err = fmt.Errorf("%s has host bits set (a route is %s)", p, p.Masked())
			if field != "" {
				err = fmt.Errorf("%s: %w", field, err)
			}
			return nil, err
		}
	}
	return ps, err
}

// filterOf reads the compiled policy the controller sends: a packet filter
// on what arrives over the tunnel, data the data plane writes as nftables
// rules, never text it runs.
func filterOf(in *api.Filter) (intent.Filter, error) {
	f := intent.Filter{Enabled: true, DefaultAccept: in.DefaultAccept}
	for i, r := range in.Rules {
		fr := intent.FilterRule{Accept: r.Accept, Origin: r.Origin}
		switch r.Proto {
		case "", "tcp", "udp", "icmp":
			fr.Proto = r.Proto
		default:
			return f, fmt.Errorf("filter rule %d: proto %q: %w", i, r.Proto, ErrRefused)
		}
		var err error
		if fr.Src, err = prefixes(fmt.Sprintf("filter rule %d src", i), r.Src); err != nil {
			return f, err
		}
		if fr.Dst, err = prefixes(fmt.Sprintf("filter rule %d dst", i), r.Dst); err != nil {
			return f, err
		}
		for _, p := range r.Ports {
			pr, err := portRange(p)
			if err != nil {
				return f, fmt.Errorf("filter rule %d: %w", i, err)
			}
			fr.Ports = append(fr.Ports, pr)
		}
		if len(fr.Ports) > 0 && fr.Proto != "tcp" && fr.Proto != "udp" {
			return f, fmt.Errorf("filter rule %d: ports without tcp or udp: %w", i, ErrRefused)
		}
		f.Rules = append(f.Rules, fr)
	}
	return f, nil
}

// portRange reads "443" or "8000-8080".
func portRange(s string) (intent.PortRange, error) {
	a, b, isRange := strings.Cut(s, "-")
	from, err1 := strconv.ParseUint(a, 10, 16)
	to := from
	var err2 error
	if isRange {
		to, err2 = strconv.ParseUint(b, 10, 16)
	}
	if err1 != nil || err2 != nil || from == 0 || to < from {
		return intent.PortRange{}, fmt.Errorf("port %q: want 1-65535 or a range like 8000-8100", s)
	}
	return intent.PortRange{From: uint16(from), To: uint16(to)}, nil
}
