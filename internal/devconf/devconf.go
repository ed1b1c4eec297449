// Package devconf works out how to take a running WireGuard device to the
// configuration a config file describes, changing only what differs: the rules of
// `wg syncconf`, made finer. Peers that went are removed and new ones added; a peer
// that stays gets only its changed prefixes added or removed one by one (or, on a
// device that cannot remove one, its whole list rewritten), its endpoint,
// preshared key and keepalive only when they changed, and an endpoint it roamed to
// is left alone; the private key, port and fwmark change only when they differ.
// So sessions of peers that stay keep running.
//
// It is the one place that maps a host's intent onto device terms (FromHost,
// Want.Replace) and diffs it against a device.State (Diff, Changes.Patches): `wgnet
// up` and `wgnet sync` (package up, on real hosts) and the in-process lab (package
// lab) all go through it, so the lab's live changes are the very patches sync makes.
//
// It is pure: no I/O, no clock. It imports device, intent, wgconf and wgkey; it
// must not import up, lab, hostnet, spec or compile.
package devconf

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Want is the WireGuard configuration a device should have.
type Want struct {
	// PrivateKey: nil leaves the device's key (a hook may set it); zero: no key.
	PrivateKey *wgkey.Private
	// ListenPort and FwMark: nil leaves them.
	ListenPort *int
	FwMark     *int
	// Peers are every peer the device should have, one per public key.
	Peers []Peer
	// Configured holds each peer's endpoint as it was configured at the last
	// change. A peer whose wanted endpoint is still the configured one but who is
	// now elsewhere roamed there: Diff leaves it where it is. Nil: every endpoint
	// that differs is set.
	Configured map[wgkey.Key]netip.AddrPort
}

// Peer is one peer a device should have.
type Peer struct {
	PublicKey wgkey.Key
	// PresharedKey is the preshared key; zero: none.
	PresharedKey wgkey.Private
	// PresharedKeyUnknown leaves the peer's preshared key as it is (PresharedKey
	// is ignored), for a peer read from a device that did not say what it was.
	PresharedKeyUnknown bool
	// Endpoint is an IP address and port; zero leaves the peer's endpoint as it is.
	Endpoint            netip.AddrPort
	PersistentKeepalive time.Duration // 0: off
	AllowedIPs          []netip.Prefix
}

// FromHost returns what h asks of a device. endpoint gives a peer's endpoint
// as an IP address and port (a config's may be a host name); it is asked only for
// peers with an Endpoint, and ok=false (or a nil endpoint) leaves the peer without.
//
// What the host leaves out is left as the device has it: the private key when
// it has none inline (a KeyFile is the caller's to read and set), the listen port when it sets none (wg picks a random one
// at setconf; a running device keeps its own), the fwmark when it is 0 (wgconf
// does not tell "off" from unset). [Peer] sections that repeat a public key are
// merged as wg does: AllowedIPs accumulate, later preshared keys, endpoints and
// keepalives win. Allowed IPs are masked and sorted.
func FromHost(h *intent.Host, endpoint func(wgconf.Peer) (netip.AddrPort, bool)) *Want {
	w := &Want{}
	if !h.PrivateKey.IsZero() {
		k := h.PrivateKey
		w.PrivateKey = &k
	}
	if h.ListenPort != nil {
		port := int(*h.ListenPort)
		w.ListenPort = &port
	}
	if h.FwMark != 0 {
		fw := int(h.FwMark)
		w.FwMark = &fw
	}
	index := make(map[wgkey.Key]int, len(h.Peers))
	for _, cp := range h.Peers {
		p := Peer{
			PublicKey:           cp.PublicKey,
			PresharedKey:        wgkey.Private(cp.PresharedKey),
			PersistentKeepalive: time.Duration(cp.PersistentKeepalive) * time.Second,
			AllowedIPs:          cp.AllowedIPs,
		}
		if cp.Endpoint != nil && endpoint != nil {
			if ap, ok := endpoint(cp); ok {
				p.Endpoint = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			}
		}
		i, seen := index[p.PublicKey]
		if !seen {
			index[p.PublicKey] = len(w.Peers)
			p.AllowedIPs = slices.Clone(p.AllowedIPs)
			w.Peers = append(w.Peers, p)
			continue
		}
		q := &w.Peers[i]
		q.AllowedIPs = append(q.AllowedIPs, p.AllowedIPs...)
		if !p.PresharedKey.IsZero() {
			q.PresharedKey = p.PresharedKey
		}
		if p.Endpoint.IsValid() {
			q.Endpoint = p.Endpoint
		}
		if p.PersistentKeepalive != 0 {
			q.PersistentKeepalive = p.PersistentKeepalive
		}
	}
	for i := range w.Peers {
		w.Peers[i].AllowedIPs = normalized(w.Peers[i].AllowedIPs)
	}
	return w
}

// Replace returns the patch that makes a new device w, like wg setconf: every
// peer is replaced, and what w leaves becomes the default (a random port, no
// fwmark; the private key stays unset). On a running device it would restart
// every session: use Diff there.
func (w *Want) Replace() device.Config {
	c := device.Config{PrivateKey: w.PrivateKey, ReplacePeers: true}
	port, fw := 0, 0
	if w.ListenPort != nil {
		port = *w.ListenPort
	}
	if w.FwMark != nil {
		fw = *w.FwMark
	}
	c.ListenPort, c.FwMark = &port, &fw
	for _, p := range w.Peers {
		pc := device.PeerConfig{
			PublicKey:           p.PublicKey,
			PersistentKeepalive: ptr(p.PersistentKeepalive),
			ReplaceAllowedIPs:   true,
			AllowedIPs:          p.AllowedIPs,
		}
		if !p.PresharedKeyUnknown {
			pc.PresharedKey = ptr(wgkey.Key(p.PresharedKey))
		}
		if p.Endpoint.IsValid() {
			pc.Endpoint = ptr(p.Endpoint)
		}
		c.Peers = append(c.Peers, pc)
	}
	return c
}

// Op is what happens to a peer.
type Op string

// Peer operations, as a diff shows them.
const (
	Add    Op = "+"
	Remove Op = "-"
	Update Op = "~"
)

// Change is a value that changes.
type Change[T any] struct {
	Old, New T
}

// Changes are what Diff found: the device changes that take a running device to
// a Want. It holds secrets (new private and preshared keys) in their redacting
// type. Its prefix lists may share memory with the State and the Want it was
// made from: change neither while it is in use.
type Changes struct {
	// PrivateKey is the new private key (zero: none) when the device's public key
	// is not the wanted one; nil otherwise.
	PrivateKey *wgkey.Private
	ListenPort *Change[int]
	FwMark     *Change[int]
	// Peers are the wanted peers that are new or differ, in the Want's order, then
	// the running peers that are not wanted, in the device's order.
	Peers []PeerChange
	// Roamed are peers left at the endpoint they roamed to (see Want.Configured).
	Roamed []Roam
}

// PeerChange is one peer added, removed or updated.
type PeerChange struct {
	Op        Op
	PublicKey wgkey.Key
	// AllowedIPs is the peer's whole list, masked and sorted: the wanted one for
	// an added or updated peer, the running one for a removed peer.
	AllowedIPs []netip.Prefix
	// AddAllowedIPs and RemoveAllowedIPs are an updated peer's prefix changes.
	AddAllowedIPs    []netip.Prefix
	RemoveAllowedIPs []netip.Prefix
	// ReplaceAllowedIPs is set when the device cannot remove single prefixes and
	// some must go: the peer's whole list is rewritten, and packets to it may drop
	// for a moment.
	ReplaceAllowedIPs bool
	// PresharedKey, Endpoint and PersistentKeepalive are set when they change
	// (for an added peer: when it has one). A zero Old means none.
	PresharedKey        *Change[wgkey.Private]
	Endpoint            *Change[netip.AddrPort]
	PersistentKeepalive *Change[time.Duration]
}

// Roam is a peer whose endpoint differs from the configured one only because it
// roamed: the config did not change it, so it is left alone (setting it would undo
// the roaming, and cut the peer off if it moved for a reason).
type Roam struct {
	PublicKey  wgkey.Key
	Configured netip.AddrPort // what the config says, unchanged since the last change
	Current    netip.AddrPort // where the peer is now
}

// Empty reports whether the changes leave the device as it is.
func (c *Changes) Empty() bool {
	return c.PrivateKey == nil && c.ListenPort == nil && c.FwMark == nil && len(c.Peers) == 0
}

// Diff works out what takes the device from running to w. canRemove says whether
// the device removes single allowed IPs (device.RemovesAllowedIPs); when it cannot
// and a peer loses prefixes, that peer's list is rewritten. running is not
// changed; its peers' allowed IPs need not be sorted.
func Diff(running *device.State, w *Want, canRemove bool) *Changes {
	c := &Changes{}
	if w.PrivateKey != nil {
		var want wgkey.Key
		if !w.PrivateKey.IsZero() {
			want = w.PrivateKey.Public()
		}
		if want != running.PublicKey {
			k := *w.PrivateKey
			c.PrivateKey = &k
		}
	}
	if w.ListenPort != nil && *w.ListenPort != running.ListenPort {
		c.ListenPort = &Change[int]{Old: running.ListenPort, New: *w.ListenPort}
	}
	if w.FwMark != nil && *w.FwMark != running.FwMark {
		c.FwMark = &Change[int]{Old: running.FwMark, New: *w.FwMark}
	}
	have := make(map[wgkey.Key]*device.PeerState, len(running.Peers))
	for i := range running.Peers {
		have[running.Peers[i].PublicKey] = &running.Peers[i]
	}
	wanted := make(map[wgkey.Key]bool, len(w.Peers))
	for i := range w.Peers {
		wp := &w.Peers[i]
		wanted[wp.PublicKey] = true
		rp, ok := have[wp.PublicKey]
		if !ok {
			c.Peers = append(c.Peers, addPeer(wp))
			continue
		}
		pc, changed, roam := updatePeer(rp, wp, w.Configured, canRemove)
		if changed {
			c.Peers = append(c.Peers, pc)
		}
		if roam != nil {
			c.Roamed = append(c.Roamed, *roam)
		}
	}
	for i := range running.Peers {
		rp := &running.Peers[i]
		if !wanted[rp.PublicKey] {
			c.Peers = append(c.Peers, PeerChange{Op: Remove, PublicKey: rp.PublicKey, AllowedIPs: normalized(rp.AllowedIPs)})
		}
	}
	return c
}

func addPeer(wp *Peer) PeerChange {
	c := PeerChange{Op: Add, PublicKey: wp.PublicKey, AllowedIPs: normalized(wp.AllowedIPs)}
	if !wp.PresharedKeyUnknown && !wp.PresharedKey.IsZero() {
		c.PresharedKey = &Change[wgkey.Private]{New: wp.PresharedKey}
	}
	if wp.Endpoint.IsValid() {
		c.Endpoint = &Change[netip.AddrPort]{New: wp.Endpoint}
	}
	if wp.PersistentKeepalive != 0 {
		c.PersistentKeepalive = &Change[time.Duration]{New: wp.PersistentKeepalive}
	}
	return c
}

// updatePeer works out what changes on a peer that stays, and reports whether
// anything does, and whether the peer roamed.
func updatePeer(rp *device.PeerState, wp *Peer, configured map[wgkey.Key]netip.AddrPort, canRemove bool) (c PeerChange, changed bool, roam *Roam) {
	c = PeerChange{Op: Update, PublicKey: wp.PublicKey, AllowedIPs: normalized(wp.AllowedIPs)}
	if !wp.PresharedKeyUnknown && !wp.PresharedKey.Equal(rp.PresharedKey) {
		c.PresharedKey = &Change[wgkey.Private]{Old: rp.PresharedKey, New: wp.PresharedKey}
		changed = true
	}
	if e := wp.Endpoint; e.IsValid() && e != rp.Endpoint {
		if last, ok := configured[wp.PublicKey]; ok && last == e && rp.Endpoint.IsValid() {
			roam = &Roam{PublicKey: wp.PublicKey, Configured: e, Current: rp.Endpoint}
		} else {
			c.Endpoint = &Change[netip.AddrPort]{Old: rp.Endpoint, New: e}
			changed = true
		}
	}
	if wp.PersistentKeepalive != rp.PersistentKeepalive {
		c.PersistentKeepalive = &Change[time.Duration]{Old: rp.PersistentKeepalive, New: wp.PersistentKeepalive}
		changed = true
	}
	have := normalized(rp.AllowedIPs)
	c.AddAllowedIPs = minus(c.AllowedIPs, have)
	c.RemoveAllowedIPs = minus(have, c.AllowedIPs)
	if len(c.AddAllowedIPs) > 0 || len(c.RemoveAllowedIPs) > 0 {
		changed = true
	}
	if len(c.RemoveAllowedIPs) > 0 && !canRemove {
		c.ReplaceAllowedIPs = true
	}
	return c, changed, roam
}

// Patches turns the changes into two patches. add adds and updates: the private
// key, port and fwmark, new peers, new prefixes, preshared keys, endpoints and
// keepalives. remove removes: single prefixes, then peers. Applied in that order
// (with whatever routes to the new prefixes in between), a prefix that moves from
// one peer to another is never without one, and a new peer's route exists before
// the old one's goes. Either may be empty (device.Config.Empty).
func (c *Changes) Patches() (add, remove device.Config) {
	add.PrivateKey = c.PrivateKey
	if c.ListenPort != nil {
		add.ListenPort = ptr(c.ListenPort.New)
	}
	if c.FwMark != nil {
		add.FwMark = ptr(c.FwMark.New)
	}
	for _, pc := range c.Peers {
		p := device.PeerConfig{PublicKey: pc.PublicKey}
		if pc.PresharedKey != nil {
			p.PresharedKey = ptr(wgkey.Key(pc.PresharedKey.New))
		}
		if pc.Endpoint != nil {
			p.Endpoint = ptr(pc.Endpoint.New)
		}
		if pc.PersistentKeepalive != nil {
			p.PersistentKeepalive = ptr(pc.PersistentKeepalive.New)
		}
		switch pc.Op {
		case Add:
			p.AllowedIPs = pc.AllowedIPs
			add.Peers = append(add.Peers, p)
		case Update:
			p.UpdateOnly = true
			p.AllowedIPs = pc.AddAllowedIPs
			if pc.ReplaceAllowedIPs {
				p.ReplaceAllowedIPs, p.AllowedIPs = true, pc.AllowedIPs
			} else if len(pc.RemoveAllowedIPs) > 0 {
				remove.Peers = append(remove.Peers, device.PeerConfig{
					PublicKey:        pc.PublicKey,
					UpdateOnly:       true,
					RemoveAllowedIPs: pc.RemoveAllowedIPs,
				})
			}
			if p.PresharedKey != nil || p.Endpoint != nil || p.PersistentKeepalive != nil || len(p.AllowedIPs) > 0 || p.ReplaceAllowedIPs {
				add.Peers = append(add.Peers, p)
			}
		}
	}
	for _, pc := range c.Peers {
		if pc.Op == Remove {
			remove.Peers = append(remove.Peers, device.PeerConfig{PublicKey: pc.PublicKey, Remove: true})
		}
	}
	return add, remove
}

// normalized returns ps masked, sorted and without repeats: ps itself when it
// already is (the common case: a State read back by package up, a Want), so that
// diffing ten thousand peers allocates little.
func normalized(ps []netip.Prefix) []netip.Prefix {
	ok := true
	for i, p := range ps {
		if p != p.Masked() || i > 0 && comparePrefix(ps[i-1], p) >= 0 {
			ok = false
			break
		}
	}
	if ok {
		return ps
	}
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = p.Masked()
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// minus returns the prefixes of a not in b; both normalized.
func minus(a, b []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range a {
		if _, found := slices.BinarySearchFunc(b, x, comparePrefix); !found {
			out = append(out, x)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
