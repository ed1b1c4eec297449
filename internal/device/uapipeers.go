package device

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// PeerReader is implemented by devices that can read back single peers: wgnet's
// own daemon (the UAPI operation stateOp) and an in-process device. Neither
// the UAPI's get nor the kernel's generic netlink can; reading one changed peer
// of ten thousand back is then a full read. A daemon that turns out not to
// understand it makes PeerStates fail with an error wrapping
// errors.ErrUnsupported: read the whole State instead.
type PeerReader interface {
	// PeerStates reads the device's own fields (key, port, fwmark) and the
	// peers with these keys; a key the device has no peer for is left out.
	// Counters and handshakes are as State gives them.
	PeerStates(keys []wgkey.Key) (*State, error)
}

// PeerStates reads back the peers with keys (see PeerReader), straight from
// wireguard-go's peers (directState).
func (e *Embedded) PeerStates(keys []wgkey.Key) (*State, error) {
	if keys == nil {
		keys = []wgkey.Key{} // nil asks directState for every peer
	}
	st, err := directState(e.dev, keys)
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w: %w", e.name, errors.ErrUnsupported, err)
	}
	st.Name, st.Backend = e.name, e.backend
	return st, nil
}

// stateOp is the UAPI operation wgnet's own daemon adds to get and set: it
// reads the device straight from wireguard-go's peers (directState) and
// answers in binary (appendState), nothing formatted as text: the device's
// own fields and every peer ("peers=all") or only the peers named by the
// public_key lines, up to a blank line. A full read of 10,000 peers costs the
// daemon a few milliseconds instead of the 30 ms its get spends formatting
// them. Other daemons close the connection on an operation they do not know
// (wireguard-go) or answer with an errno; stateGet reports either as
// errStateUnsupported, and the caller reads with a plain get.
const stateOp = "wgnet_state=1\n"

// stateMagic starts a successful stateOp answer; a refusal is "errno=N".
const stateMagic = "WGS1"

// errStateUnsupported is stateGet's error for a daemon without stateOp.
var errStateUnsupported = fmt.Errorf("uapi: the daemon does not answer %q: %w", stateOp[:len(stateOp)-1], errors.ErrUnsupported)

// appendState appends st in stateOp's binary answer form (after stateMagic
// and the body's length, which the caller writes): little-endian, a byte of
// length before each endpoint and prefix (net/netip's binary forms).
//
//	private key [32] | listen port u16 | fwmark u32 | peers u32 | peer...
//	peer: public key [32] | preshared key [32] | endpoint len u8 + bytes |
//	      keepalive seconds u32 | last handshake unix ns i64 (0: never) |
//	      tx u64 | rx u64 | allowed IPs u32 | prefix len u8 + bytes...
func appendState(b []byte, st *State) []byte {
	b = appendHead(b, st, len(st.Peers))
	for i := range st.Peers {
		b = appendPeer(b, &st.Peers[i])
	}
	return b
}

// appendHead appends the device's own fields and the number of peers.
func appendHead(b []byte, st *State, peers int) []byte {
	le := binary.LittleEndian
	b = append(b, st.PrivateKey[:]...)
	b = le.AppendUint16(b, uint16(st.ListenPort))
	b = le.AppendUint32(b, uint32(st.FwMark))
	return le.AppendUint32(b, uint32(peers))
}

// appendPeer appends one peer.
func appendPeer(b []byte, p *PeerState) []byte {
	le := binary.LittleEndian
	b = append(b, p.PublicKey[:]...)
	b = append(b, p.PresharedKey[:]...)
	b = appendSized(b, p.Endpoint.AppendBinary)
	b = le.AppendUint32(b, uint32(p.PersistentKeepalive/time.Second))
	var hs int64
	if !p.LastHandshake.IsZero() {
		hs = p.LastHandshake.UnixNano()
	}
	b = le.AppendUint64(b, uint64(hs))
	b = le.AppendUint64(b, uint64(p.TxBytes))
	b = le.AppendUint64(b, uint64(p.RxBytes))
	b = le.AppendUint32(b, uint32(len(p.AllowedIPs)))
	for _, a := range p.AllowedIPs {
		b = appendSized(b, a.AppendBinary)
	}
	return b
}

// appendSized appends what app appends, after a byte that says how long it is
// (every net/netip binary form is shorter than 256 bytes).
func appendSized(b []byte, app func([]byte) ([]byte, error)) []byte {
	n := len(b)
	b, _ = app(append(b, 0))
	b[n] = byte(len(b) - n - 1)
	return b
}

// stateDecoder reads appendState's form; the first error sticks.
type stateDecoder struct {
	b   []byte
	err error
}

func (d *stateDecoder) take(n int) []byte {
	if d.err != nil || n > len(d.b) {
		if d.err == nil {
			d.err = errors.New("uapi: state answer cut short")
		}
		return make([]byte, n)
	}
	x := d.b[:n]
	d.b = d.b[n:]
	return x
}

func (d *stateDecoder) u16() uint16 { return binary.LittleEndian.Uint16(d.take(2)) }
func (d *stateDecoder) u32() uint32 { return binary.LittleEndian.Uint32(d.take(4)) }
func (d *stateDecoder) u64() uint64 { return binary.LittleEndian.Uint64(d.take(8)) }

// sized reads a length byte and that many bytes into v.
func (d *stateDecoder) sized(v interface{ UnmarshalBinary([]byte) error }) {
	n := int(d.take(1)[0])
	if err := v.UnmarshalBinary(d.take(n)); err != nil && d.err == nil {
		d.err = fmt.Errorf("uapi: state answer: %w", err)
	}
}

// decodeState reads a body that appendState wrote.
func decodeState(body []byte) (*State, error) {
	d := &stateDecoder{b: body}
	st := &State{}
	if priv := [32]byte(d.take(32)); priv != ([32]byte{}) {
		st.PrivateKey = wgkey.Private(priv)
		st.PublicKey = st.PrivateKey.Public()
	}
	st.ListenPort, st.FwMark = int(d.u16()), int(d.u32())
	n := int(d.u32())
	if n > len(d.b)/64 { // a peer takes at least its two keys
		return nil, errors.New("uapi: state answer cut short")
	}
	st.Peers = make([]PeerState, n)
	for i := range st.Peers {
		p := &st.Peers[i]
		p.PublicKey = wgkey.Key(d.take(32))
		p.PresharedKey = wgkey.Private(d.take(32))
		p.HasPresharedKey = !p.PresharedKey.IsZero()
		var ep netip.AddrPort
		d.sized(&ep)
		p.Endpoint = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
		p.PersistentKeepalive = time.Duration(d.u32()) * time.Second
		if hs := int64(d.u64()); hs != 0 {
			p.LastHandshake = time.Unix(hs/int64(time.Second), hs%int64(time.Second))
		}
		p.TxBytes, p.RxBytes = int64(d.u64()), int64(d.u64())
		m := int(d.u32())
		if m > len(d.b) {
			return nil, errors.New("uapi: state answer cut short")
		}
		if m > 0 {
			p.AllowedIPs = make([]netip.Prefix, m)
			for j := range p.AllowedIPs {
				d.sized(&p.AllowedIPs[j])
			}
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("uapi: state answer: %d bytes too many", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return st, nil
}
