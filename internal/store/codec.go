package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// The text forms stores keep lists and peer reports in, one for every
// implementation (and what `controller migrate` carries between them).

// JoinPrefixes is the stored form of a list of prefixes: comma-separated.
func JoinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// SplitPrefixes parses what JoinPrefixes wrote.
func SplitPrefixes(s string) ([]netip.Prefix, error) {
	if s == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("stored prefix %q: %w", f, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// SplitRoutes sorts the routes a joining host asks for: those inside one of
// its token's routes are granted, the others wait for an admin's approval
// (Host.PendingRoutes). A default route is never granted to a host that
// asks for it itself (ErrInvalid).
func SplitRoutes(t Token, routes []netip.Prefix) (granted, pending []netip.Prefix, err error) {
	for _, r := range routes {
		switch {
		case r.Bits() == 0:
			return nil, nil, fmt.Errorf("route %s: %w: a host never claims a default route by itself", r, ErrInvalid)
		case slices.ContainsFunc(t.Routes, func(p netip.Prefix) bool { return p.Bits() <= r.Bits() && p.Contains(r.Addr()) }):
			granted = append(granted, r)
		default:
			pending = append(pending, r)
		}
	}
	return granted, pending, nil
}

// peerJSON is how a peer's status is kept in a stored report.
type peerJSON struct {
	Key       string `json:"k"`
	Endpoint  string `json:"e,omitempty"`
	Handshake int64  `json:"h,omitempty"`
	Rx        uint64 `json:"rx,omitempty"`
	Tx        uint64 `json:"tx,omitempty"`
	// Added after the first release; older readers ignore them.
	Unresolved string `json:"uh,omitempty"`
	ResolveErr string `json:"ue,omitempty"`
	Since      int64  `json:"us,omitempty"`
}

// UnixNano is t in nanoseconds since 1970, 0 for the zero time.
func UnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromUnixNano is UnixNano's inverse (UTC).
func FromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// EncodePeers is the stored form of a report's peers.
func EncodePeers(peers []PeerStatus) (string, error) {
	out := make([]peerJSON, len(peers))
	for i, p := range peers {
		out[i] = peerJSON{Key: p.PublicKey.String(), Endpoint: p.Endpoint, Handshake: UnixNano(p.LastHandshake), Rx: p.RxBytes, Tx: p.TxBytes,
			Unresolved: p.Unresolved, ResolveErr: p.ResolveError, Since: UnixNano(p.UnresolvedSince)}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// DecodePeers parses what EncodePeers wrote.
func DecodePeers(s string) ([]PeerStatus, error) {
	var in []peerJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	var out []PeerStatus
	for _, p := range in {
		k, err := wgkey.ParseKey(p.Key)
		if err != nil {
			return nil, err
		}
		out = append(out, PeerStatus{PublicKey: k, Endpoint: p.Endpoint, LastHandshake: FromUnixNano(p.Handshake), RxBytes: p.Rx, TxBytes: p.Tx,
			Unresolved: p.Unresolved, ResolveError: p.ResolveErr, UnresolvedSince: FromUnixNano(p.Since)})
	}
	return out, nil
}

// SplitTags reads tags stored joined by commas.
func SplitTags(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// SettingsColumns are the columns of a host's Settings in both stores'
// hosts table (schema 6), in the order of StoredSettings' Args and Dests.
const SettingsColumns = "address_bits, address_elsewhere, random_port, mtu, dns, table_name, fwmark, external, full_tunnel"

// StoredSettings is a host's Settings as the columns hold them: lists joined
// by commas, an address's own prefix length as ADDR/BITS, the mark as a
// 64-bit integer (a column of PostgreSQL's BIGINT holds 2^32-1).
type StoredSettings struct {
	AddressBits                            string
	AddressElsewhere, RandomPort, External bool
	MTU                                    int
	DNS, Table                             string
	FwMark                                 int64
	FullTunnel                             string
}

// Store is the stored form of s (the bits of addresses the host does not
// have are dropped).
func (s Settings) Store(addrs []netip.Addr) StoredSettings {
	var bits []netip.Prefix
	for a, b := range KeepBits(s.AddressBits, addrs) {
		bits = append(bits, netip.PrefixFrom(a, b))
	}
	slices.SortFunc(bits, func(p, q netip.Prefix) int { return p.Addr().Compare(q.Addr()) })
	return StoredSettings{AddressBits: JoinPrefixes(bits), AddressElsewhere: s.AddressElsewhere, RandomPort: s.RandomPort,
		External: s.External, MTU: s.MTU, DNS: strings.Join(s.DNS, ","), Table: s.Table, FwMark: int64(s.FwMark),
		FullTunnel: JoinPrefixes(s.FullTunnel)}
}

// Args are the values of SettingsColumns, for an INSERT or UPDATE.
func (st *StoredSettings) Args() []any {
	return []any{st.AddressBits, st.AddressElsewhere, st.RandomPort, st.MTU, st.DNS, st.Table, st.FwMark, st.External, st.FullTunnel}
}

// Dests are where a row's SettingsColumns are scanned to.
func (st *StoredSettings) Dests() []any {
	return []any{&st.AddressBits, &st.AddressElsewhere, &st.RandomPort, &st.MTU, &st.DNS, &st.Table, &st.FwMark, &st.External, &st.FullTunnel}
}

// Settings reads the stored form back.
func (st StoredSettings) Settings() (Settings, error) {
	s := Settings{AddressElsewhere: st.AddressElsewhere, RandomPort: st.RandomPort, External: st.External, MTU: st.MTU,
		DNS: SplitTags(st.DNS), Table: st.Table}
	if st.FwMark < 0 || st.FwMark > math.MaxUint32 {
		return s, fmt.Errorf("stored fwmark %d: out of range", st.FwMark)
	}
	s.FwMark = uint32(st.FwMark)
	bits, err1 := SplitPrefixes(st.AddressBits)
	for _, p := range bits {
		if s.AddressBits == nil {
			s.AddressBits = map[netip.Addr]int{}
		}
		s.AddressBits[p.Addr()] = p.Bits()
	}
	var err2 error
	s.FullTunnel, err2 = SplitPrefixes(st.FullTunnel)
	return s, errors.Join(err1, err2)
}

// SettingsUpdate is the SET list of an UPDATE of SettingsColumns, its
// parameters numbered by param from first on (SQLite: "?", PostgreSQL: $N).
func SettingsUpdate(param func(n int) string, first int) string {
	cols := strings.Split(SettingsColumns, ", ")
	for i, c := range cols {
		cols[i] = c + " = " + param(first+i)
	}
	return strings.Join(cols, ", ")
}
