package device

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// The cross-platform userspace API (https://www.wireguard.com/xplatform/): a "set"
// is key=value lines, keys in hex; a "get" answers in the same form. wireguard-go's
// IpcSet/IpcGet take and give the body without the "set=1"/"get=1" line and the
// trailing "errno=" line.

// encodeUAPI renders a patch as the body of a UAPI set operation.
func encodeUAPI(c Config) string {
	var b strings.Builder
	kv := func(k, v string) { b.WriteString(k + "=" + v + "\n") }
	if c.PrivateKey != nil {
		kv("private_key", c.PrivateKey.Hex())
	}
	if c.ListenPort != nil {
		kv("listen_port", strconv.Itoa(*c.ListenPort))
	}
	if c.FwMark != nil {
		kv("fwmark", strconv.Itoa(*c.FwMark))
	}
	if c.ReplacePeers {
		kv("replace_peers", "true")
	}
	for _, p := range c.Peers {
		kv("public_key", p.PublicKey.Hex())
		if p.Remove {
			kv("remove", "true")
			continue
		}
		if p.UpdateOnly {
			kv("update_only", "true")
		}
		if p.PresharedKey != nil {
			kv("preshared_key", p.PresharedKey.Hex())
		}
		if p.Endpoint != nil {
			kv("endpoint", p.Endpoint.String())
		}
		if p.PersistentKeepalive != nil {
			kv("persistent_keepalive_interval", strconv.Itoa(int(*p.PersistentKeepalive/time.Second)))
		}
		if p.ReplaceAllowedIPs {
			kv("replace_allowed_ips", "true")
		}
		for _, a := range p.RemoveAllowedIPs {
			kv("allowed_ip", "-"+a.String())
		}
		for _, a := range p.AllowedIPs {
			kv("allowed_ip", a.String())
		}
	}
	return b.String()
}

// checkConfig refuses what a device would reject or silently truncate.
func checkConfig(c Config) error {
	if c.ListenPort != nil && (*c.ListenPort < 0 || *c.ListenPort > 65535) {
		return fmt.Errorf("listen port %d: must be 0-65535", *c.ListenPort)
	}
	if c.FwMark != nil && (*c.FwMark < 0 || int64(*c.FwMark) > 0xffffffff) {
		return fmt.Errorf("fwmark %d: must be 0-4294967295", *c.FwMark)
	}
	for _, p := range c.Peers {
		if p.PublicKey.IsZero() {
			return fmt.Errorf("peer with an all-zero public key")
		}
		if k := p.PersistentKeepalive; k != nil && (*k < 0 || *k > 65535*time.Second || *k%time.Second != 0) {
			return fmt.Errorf("peer %s: persistent keepalive %v: must be whole seconds, 0-65535", p.PublicKey, *k)
		}
		if e := p.Endpoint; e != nil && !e.IsValid() {
			return fmt.Errorf("peer %s: invalid endpoint", p.PublicKey)
		}
		for _, a := range append(p.AllowedIPs[:len(p.AllowedIPs):len(p.AllowedIPs)], p.RemoveAllowedIPs...) {
			if !a.IsValid() {
				return fmt.Errorf("peer %s: invalid allowed IP", p.PublicKey)
			}
		}
	}
	return nil
}

// decodeUAPI parses the body of a UAPI get answer. The UAPI does not report the
// public key; when the answer holds a private key, the public key is derived.
func decodeUAPI(s string) (*State, error) {
	var d uapiDecoder
	// Lines cut in place: an answer for 10,000 peers has 100,000 of them.
	for rest := s; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if err := d.line(line); err != nil {
			return nil, err
		}
	}
	return d.finish(), nil
}

// uapiDecoder parses a get answer a line at a time, so that a reader can
// parse while the daemon is still writing (uapiGet).
type uapiDecoder struct {
	st            *State
	p             *PeerState // the peer being read
	hsSec, hsNsec int64
	n             int // lines so far
}

// flush finishes the peer being read.
func (d *uapiDecoder) flush() {
	if d.p != nil && (d.hsSec != 0 || d.hsNsec != 0) {
		d.p.LastHandshake = time.Unix(d.hsSec, d.hsNsec)
	}
	d.hsSec, d.hsNsec = 0, 0
}

// finish returns the state read.
func (d *uapiDecoder) finish() *State {
	d.flush()
	if d.st == nil {
		d.st = &State{}
	}
	return d.st
}

// line reads one line, without its "\n"; a trailing "\r" is dropped as
// bufio.ScanLines drops it, and an empty line is skipped.
func (d *uapiDecoder) line(line string) error {
	d.n++
	if d.st == nil {
		d.st = &State{}
	}
	st, n := d.st, d.n
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return nil
	}
	k, v, ok := strings.Cut(line, "=")
	if !ok {
		return fmt.Errorf("uapi line %d: %q: no '='", n, line)
	}
	bad := func(err error) error { return fmt.Errorf("uapi line %d: %s: %w", n, k, err) }
	switch k {
	case "private_key":
		key, err := hexKey(v)
		if err != nil {
			return bad(err)
		}
		if key != (wgkey.Key{}) {
			st.PrivateKey = wgkey.Private(key)
			st.PublicKey = st.PrivateKey.Public()
		}
	case "listen_port":
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return bad(err)
		}
		st.ListenPort = int(n)
	case "fwmark":
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad(err)
		}
		st.FwMark = int(n)
	case "public_key":
		d.flush()
		key, err := hexKey(v)
		if err != nil {
			return bad(err)
		}
		st.Peers = append(st.Peers, PeerState{PublicKey: key})
		d.p = &st.Peers[len(st.Peers)-1]
	case "errno":
		if v != "0" {
			return fmt.Errorf("uapi: errno=%s", v)
		}
	default:
		if d.p == nil {
			return fmt.Errorf("uapi line %d: %q before any peer", n, k)
		}
		var err error
		switch k {
		case "preshared_key":
			var key wgkey.Key
			key, err = hexKey(v)
			d.p.HasPresharedKey = !key.IsZero()
			d.p.PresharedKey = wgkey.Private(key)
		case "endpoint":
			// Unmapped, as wgctrl's reading of the same answer gives it.
			d.p.Endpoint, err = netip.ParseAddrPort(v)
			d.p.Endpoint = netip.AddrPortFrom(d.p.Endpoint.Addr().Unmap(), d.p.Endpoint.Port())
		case "last_handshake_time_sec":
			d.hsSec, err = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			d.hsNsec, err = strconv.ParseInt(v, 10, 64)
		case "tx_bytes":
			d.p.TxBytes, err = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			d.p.RxBytes, err = strconv.ParseInt(v, 10, 64)
		case "persistent_keepalive_interval":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 16)
			d.p.PersistentKeepalive = time.Duration(n) * time.Second
		case "allowed_ip":
			var a netip.Prefix
			a, err = netip.ParsePrefix(v)
			d.p.AllowedIPs = append(d.p.AllowedIPs, a)
		case "protocol_version":
			if v != "1" {
				err = fmt.Errorf("unsupported protocol version %q", v)
			}
		default:
			// Newer daemons may add keys; ignoring them is what wg(8) does.
		}
		if err != nil {
			return bad(err)
		}
	}
	return nil
}

func hexKey(s string) (wgkey.Key, error) {
	var k wgkey.Key
	if len(s) != 2*wgkey.Len {
		return k, fmt.Errorf("key must be %d hex digits", 2*wgkey.Len)
	}
	for i := range k {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			_, err := hex.Decode(k[:], []byte(s)) // its error names the bad byte
			return wgkey.Key{}, err
		}
		k[i] = hi<<4 | lo
	}
	return k, nil
}

// fromHex is encoding/hex's reading of one digit, either case.
func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
