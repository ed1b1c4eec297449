package lab

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// This file speaks the cross-platform UAPI text protocol
// (https://www.wireguard.com/xplatform/#configuration-protocol): keys in hex, one
// key=value per line, a peer's lines after its public_key.

// NodeState is what a running device reports (UAPI "get"), the private key left out.
type NodeState struct {
	PublicKey  wgkey.Key
	ListenPort uint16
	Peers      []PeerState
}

// PeerState is one peer of a running device.
type PeerState struct {
	PublicKey       wgkey.Key
	HasPresharedKey bool
	psk             wgkey.Key // for diffs only; never reported
	Endpoint        netip.AddrPort
	LastHandshake   time.Time // zero: never
	RxBytes         int64
	TxBytes         int64
	Keepalive       int // seconds, 0 = off
	AllowedIPs      []netip.Prefix
	// Handshakes counts completed handshakes with the peer's current endpoint, seen
	// on the wire (the UAPI only reports the last one).
	Handshakes int
}

// Peer returns the state of the peer with key k.
func (s NodeState) Peer(k wgkey.Key) (PeerState, bool) {
	for _, p := range s.Peers {
		if p.PublicKey == k {
			return p, true
		}
	}
	return PeerState{}, false
}

func parseHexKey(v string) (wgkey.Key, error) {
	var k wgkey.Key
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != wgkey.Len {
		return k, fmt.Errorf("bad hex key")
	}
	copy(k[:], b)
	return k, nil
}

// parseState reads the UAPI "get" answer. The private key is only used to derive
// the public key and is not kept.
func parseState(text string) (NodeState, error) {
	var st NodeState
	var peer *PeerState
	var hsSec, hsNsec int64
	flush := func() {
		if peer != nil {
			if hsSec != 0 || hsNsec != 0 {
				peer.LastHandshake = time.Unix(hsSec, hsNsec)
			}
			st.Peers = append(st.Peers, *peer)
		}
		peer, hsSec, hsNsec = nil, 0, 0
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return st, fmt.Errorf("uapi get: bad line %q", line)
		}
		var err error
		switch key {
		case "private_key":
			var k wgkey.Key
			if k, err = parseHexKey(val); err == nil {
				st.PublicKey = wgkey.Private(k).Public()
			}
		case "listen_port":
			var n uint64
			n, err = strconv.ParseUint(val, 10, 16)
			st.ListenPort = uint16(n)
		case "public_key":
			flush()
			peer = &PeerState{}
			peer.PublicKey, err = parseHexKey(val)
		case "preshared_key":
			if peer != nil {
				peer.psk, err = parseHexKey(val)
				peer.HasPresharedKey = !peer.psk.IsZero()
			}
		case "endpoint":
			if peer != nil {
				peer.Endpoint, err = netip.ParseAddrPort(val)
			}
		case "last_handshake_time_sec":
			hsSec, err = strconv.ParseInt(val, 10, 64)
		case "last_handshake_time_nsec":
			hsNsec, err = strconv.ParseInt(val, 10, 64)
		case "rx_bytes":
			if peer != nil {
				peer.RxBytes, err = strconv.ParseInt(val, 10, 64)
			}
		case "tx_bytes":
			if peer != nil {
				peer.TxBytes, err = strconv.ParseInt(val, 10, 64)
			}
		case "persistent_keepalive_interval":
			if peer != nil {
				peer.Keepalive, err = strconv.Atoi(val)
			}
		case "allowed_ip":
			if peer != nil {
				var p netip.Prefix
				if p, err = netip.ParsePrefix(val); err == nil {
					peer.AllowedIPs = append(peer.AllowedIPs, p)
				}
			}
		case "errno":
			if val != "0" {
				return st, fmt.Errorf("uapi get: errno %s", val)
			}
		}
		if err != nil {
			return st, fmt.Errorf("uapi get: %s: %w", key, err)
		}
	}
	flush()
	slices.SortFunc(st.Peers, func(a, b PeerState) int { return strings.Compare(a.PublicKey.String(), b.PublicKey.String()) })
	return st, nil
}

// Change is one difference between a device's running state and a desired config,
// as Configure applies it.
type Change struct {
	Peer wgkey.Key // zero for interface changes
	What string    // "add peer", "remove peer", "+allowed ip 10.0.9.0/24", ...
}

// desiredPeer is a config peer with its endpoint already mapped onto the lab.
type desiredPeer struct {
	wgconf.Peer
	endpoint netip.AddrPort // invalid: none
}

// mergePeers folds repeated [Peer] sections with the same key into one, as
// `wg setconf` does: AllowedIPs accumulate, later scalar values win.
func mergePeers(peers []desiredPeer) []desiredPeer {
	var out []desiredPeer
	index := make(map[wgkey.Key]int)
	for _, p := range peers {
		i, ok := index[p.PublicKey]
		if !ok {
			index[p.PublicKey] = len(out)
			p.AllowedIPs = slices.Clone(p.AllowedIPs)
			out = append(out, p)
			continue
		}
		q := &out[i]
		q.AllowedIPs = append(q.AllowedIPs, p.AllowedIPs...)
		if !p.PresharedKey.IsZero() {
			q.PresharedKey = p.PresharedKey
		}
		if p.endpoint.IsValid() {
			q.endpoint = p.endpoint
		}
		if p.PersistentKeepalive != 0 {
			q.PersistentKeepalive = p.PersistentKeepalive
		}
	}
	return out
}

func maskedSet(ps []netip.Prefix) map[netip.Prefix]bool {
	m := make(map[netip.Prefix]bool, len(ps))
	for _, p := range ps {
		m[p.Masked()] = true
	}
	return m
}

func sortedPrefixes(m map[netip.Prefix]bool) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

// uapiDiff returns the UAPI "set" body that turns running into the desired state,
// and the changes it makes. Like `wg syncconf` it never replaces peers or allowed
// IPs wholesale: it removes peers that went, adds new ones, and for the others
// touches only what changed (allowed_ip=-PREFIX removes one prefix), so sessions
// keep running. lastEndpoints holds the endpoints set before: an endpoint the
// device learned by roaming is not a change.
func uapiDiff(priv wgkey.Private, running NodeState, peers []desiredPeer, lastEndpoints map[wgkey.Key]netip.AddrPort) (string, []Change) {
	var b strings.Builder
	var changes []Change
	if running.PublicKey != priv.Public() {
		fmt.Fprintf(&b, "private_key=%s\n", priv.Hex())
		changes = append(changes, Change{What: "set private key"})
	}
	want := make(map[wgkey.Key]bool)
	for _, p := range peers {
		want[p.PublicKey] = true
	}
	for _, rp := range running.Peers {
		if !want[rp.PublicKey] {
			fmt.Fprintf(&b, "public_key=%s\nremove=true\n", rp.PublicKey.Hex())
			changes = append(changes, Change{Peer: rp.PublicKey, What: "remove peer"})
		}
	}
	for _, p := range peers {
		rp, exists := running.Peer(p.PublicKey)
		var lines []string
		var what []string
		if !exists {
			what = append(what, "add peer")
			if !p.PresharedKey.IsZero() {
				lines = append(lines, "preshared_key="+p.PresharedKey.Hex())
			}
			if p.endpoint.IsValid() {
				lines = append(lines, "endpoint="+p.endpoint.String())
			}
			if p.PersistentKeepalive != 0 {
				lines = append(lines, fmt.Sprintf("persistent_keepalive_interval=%d", p.PersistentKeepalive))
			}
			for _, a := range sortedPrefixes(maskedSet(p.AllowedIPs)) {
				lines = append(lines, "allowed_ip="+a.String())
			}
		} else {
			if p.PresharedKey != rp.psk {
				lines = append(lines, "preshared_key="+p.PresharedKey.Hex())
				what = append(what, "set preshared key")
			}
			if p.endpoint.IsValid() && p.endpoint != lastEndpoints[p.PublicKey] {
				lines = append(lines, "endpoint="+p.endpoint.String())
				what = append(what, "endpoint "+p.endpoint.String())
			}
			if p.PersistentKeepalive != rp.Keepalive {
				lines = append(lines, fmt.Sprintf("persistent_keepalive_interval=%d", p.PersistentKeepalive))
				what = append(what, fmt.Sprintf("keepalive %d", p.PersistentKeepalive))
			}
			have, wantIPs := maskedSet(rp.AllowedIPs), maskedSet(p.AllowedIPs)
			for _, a := range sortedPrefixes(have) {
				if !wantIPs[a] {
					lines = append(lines, "allowed_ip=-"+a.String())
					what = append(what, "-allowed ip "+a.String())
				}
			}
			for _, a := range sortedPrefixes(wantIPs) {
				if !have[a] {
					lines = append(lines, "allowed_ip="+a.String())
					what = append(what, "+allowed ip "+a.String())
				}
			}
			if len(lines) > 0 {
				lines = append([]string{"update_only=true"}, lines...)
			}
		}
		if len(what) == 0 {
			continue
		}
		fmt.Fprintf(&b, "public_key=%s\n", p.PublicKey.Hex())
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		for _, w := range what {
			changes = append(changes, Change{Peer: p.PublicKey, What: w})
		}
	}
	return b.String(), changes
}
