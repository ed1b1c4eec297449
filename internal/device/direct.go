package device

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// Reading wireguard-go's configuration without formatting it.
//
// wireguard-go's only way to read its configuration, IpcGetOperation, formats
// every peer with fmt.Fprintf (about 3 µs a peer: 30 ms for 10,000) before it
// writes a byte, and gives no way to read one peer: the fields it reads are
// unexported. directState reads the same fields, under the same locks, taken
// in the same order, straight from wireguard-go's structs: a read of one peer
// costs a map lookup, and a read of 10,000 a walk over them with nothing
// formatted. The fields are found by name once (wgFields), each checked to
// have the type this package reads it as; when any is missing or has another
// type (a wireguard-go upgrade reshaped them), directState refuses
// (errDirectUnavailable) and its callers read through IpcGet as before.
// TestDirectStateMatchesIpcGet holds the two to the same answer.

// wgFields are the byte offsets of the fields directState reads, in
// wireguard-go's Device and Peer.
type wgFields struct {
	ipcMutex                 uintptr // Device.ipcMutex: sets hold it, gets share it
	netMu, port, fwmark      uintptr // Device.net
	identityMu, privateKey   uintptr // Device.staticIdentity
	peersMu, keyMap          uintptr // Device.peers
	allowedIPs               uintptr // Device.allowedips
	handshakeMu, psk, remote uintptr // Peer.handshake
	endpointMu, endpoint     uintptr // Peer.endpoint
	keepalive, lastHandshake uintptr // Peer.persistentKeepaliveInterval, lastHandshakeNano
	txBytes, rxBytes         uintptr // Peer.txBytes, rxBytes
}

var (
	directFields    wgFields
	directFieldsErr = findFields(&directFields)
)

// errDirectUnavailable says that this build's wireguard-go does not have the
// fields directState reads, by the names and types it expects.
var errDirectUnavailable = errors.New("wireguard-go's device fields are not as this build expects")

// findFields fills f from wireguard-go's types, or says which field is not
// where or what it should be.
func findFields(f *wgFields) error {
	dev := reflect.TypeFor[wgdevice.Device]()
	peer := reflect.TypeFor[wgdevice.Peer]()
	rw, mu := reflect.TypeFor[sync.RWMutex](), reflect.TypeFor[sync.Mutex]()
	key := reflect.TypeFor[wgdevice.NoisePublicKey]()
	for _, x := range []struct {
		off  *uintptr
		in   reflect.Type
		want reflect.Type
		path []string
	}{
		{&f.ipcMutex, dev, rw, []string{"ipcMutex"}},
		{&f.netMu, dev, rw, []string{"net", "RWMutex"}},
		{&f.port, dev, reflect.TypeFor[uint16](), []string{"net", "port"}},
		{&f.fwmark, dev, reflect.TypeFor[uint32](), []string{"net", "fwmark"}},
		{&f.identityMu, dev, rw, []string{"staticIdentity", "RWMutex"}},
		{&f.privateKey, dev, reflect.TypeFor[wgdevice.NoisePrivateKey](), []string{"staticIdentity", "privateKey"}},
		{&f.peersMu, dev, rw, []string{"peers", "RWMutex"}},
		{&f.keyMap, dev, reflect.TypeFor[map[wgdevice.NoisePublicKey]*wgdevice.Peer](), []string{"peers", "keyMap"}},
		{&f.allowedIPs, dev, reflect.TypeFor[wgdevice.AllowedIPs](), []string{"allowedips"}},
		{&f.handshakeMu, peer, rw, []string{"handshake", "mutex"}},
		{&f.psk, peer, reflect.TypeFor[wgdevice.NoisePresharedKey](), []string{"handshake", "presharedKey"}},
		{&f.remote, peer, key, []string{"handshake", "remoteStatic"}},
		{&f.endpointMu, peer, mu, []string{"endpoint", "Mutex"}},
		{&f.endpoint, peer, reflect.TypeFor[conn.Endpoint](), []string{"endpoint", "val"}},
		{&f.keepalive, peer, reflect.TypeFor[atomic.Uint32](), []string{"persistentKeepaliveInterval"}},
		{&f.lastHandshake, peer, reflect.TypeFor[atomic.Int64](), []string{"lastHandshakeNano"}},
		{&f.txBytes, peer, reflect.TypeFor[atomic.Uint64](), []string{"txBytes"}},
		{&f.rxBytes, peer, reflect.TypeFor[atomic.Uint64](), []string{"rxBytes"}},
	} {
		off, err := fieldOffset(x.in, x.want, x.path)
		if err != nil {
			return fmt.Errorf("%w: %w", errDirectUnavailable, err)
		}
		*x.off = off
	}
	return nil
}

// fieldOffset is the offset of the field at path (each name a field of the
// struct before it, not one promoted from an embedded struct) in t, which
// must have type want.
func fieldOffset(t, want reflect.Type, path []string) (uintptr, error) {
	var off uintptr
	where := t.String()
	for _, name := range path {
		if t.Kind() != reflect.Struct {
			return 0, fmt.Errorf("%s is not a struct", where)
		}
		f, ok := t.FieldByName(name)
		if !ok || len(f.Index) != 1 {
			return 0, fmt.Errorf("%s has no field %s", where, name)
		}
		off += f.Offset
		t, where = f.Type, where+"."+name
	}
	if t != want {
		return 0, fmt.Errorf("%s is a %s, not a %s", where, t, want)
	}
	return off, nil
}

func at[T any](base unsafe.Pointer, off uintptr) *T { return (*T)(unsafe.Add(base, off)) }

// directState reads dev's configuration as IpcGet reports it: the device's
// own fields and every peer (keys nil) or only the peers with these keys (a
// key dev has no peer for left out), in no particular order.
func directState(dev *wgdevice.Device, keys []wgkey.Key) (*State, error) {
	st := &State{}
	err := directRead(dev, keys, func(head *State, peers int) {
		*st = *head
		st.Peers = make([]PeerState, 0, peers)
	}, func(ps *PeerState) {
		p := *ps
		p.AllowedIPs = nil
		if len(ps.AllowedIPs) > 0 {
			p.AllowedIPs = slices.Clone(ps.AllowedIPs)
		}
		st.Peers = append(st.Peers, p)
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// directRead reads what directState does, under IpcGetOperation's locks,
// without keeping it: head gets the device's own fields and the number of
// peers that follow, then each gets every peer, one at a time, in a
// PeerState it is handed again for the next (its AllowedIPs reused), so
// that stateOp encodes 10,000 peers without an allocation for each.
func directRead(dev *wgdevice.Device, keys []wgkey.Key, head func(st *State, peers int), each func(*PeerState)) error {
	if directFieldsErr != nil {
		return directFieldsErr
	}
	f := &directFields
	d := unsafe.Pointer(dev)
	// IpcGetOperation's locks, in its order (released in reverse).
	for _, off := range []uintptr{f.ipcMutex, f.netMu, f.identityMu, f.peersMu} {
		mu := at[sync.RWMutex](d, off)
		mu.RLock()
		defer mu.RUnlock()
	}

	st := &State{ListenPort: int(*at[uint16](d, f.port)), FwMark: int(*at[uint32](d, f.fwmark))}
	if priv := *at[[32]byte](d, f.privateKey); priv != ([32]byte{}) {
		st.PrivateKey = wgkey.Private(priv)
		st.PublicKey = st.PrivateKey.Public()
	}
	keyMap := *at[map[wgdevice.NoisePublicKey]*wgdevice.Peer](d, f.keyMap)
	var peers []*wgdevice.Peer
	if keys == nil {
		peers = make([]*wgdevice.Peer, 0, len(keyMap))
		for _, p := range keyMap {
			peers = append(peers, p)
		}
	} else {
		for _, k := range keys {
			if p := keyMap[wgdevice.NoisePublicKey(k)]; p != nil {
				peers = append(peers, p)
			}
		}
	}
	head(st, len(peers))
	allowed := at[wgdevice.AllowedIPs](d, f.allowedIPs)
	var ps PeerState
	for _, p := range peers {
		f.peer(p, allowed, &ps)
		each(&ps)
	}
	return nil
}

// peer reads one peer into ps as IpcGetOperation reads it.
func (f *wgFields) peer(peer *wgdevice.Peer, allowed *wgdevice.AllowedIPs, ps *PeerState) {
	p := unsafe.Pointer(peer)
	*ps = PeerState{AllowedIPs: ps.AllowedIPs[:0]}
	hs := at[sync.RWMutex](p, f.handshakeMu)
	hs.RLock()
	ps.PublicKey = wgkey.Key(*at[[32]byte](p, f.remote))
	psk := *at[[32]byte](p, f.psk)
	hs.RUnlock()
	ps.HasPresharedKey = psk != [32]byte{}
	ps.PresharedKey = wgkey.Private(psk)

	epMu := at[sync.Mutex](p, f.endpointMu)
	epMu.Lock()
	if ep := *at[conn.Endpoint](p, f.endpoint); ep != nil {
		ps.Endpoint = endpointAddr(ep)
	}
	epMu.Unlock()

	if nano := at[atomic.Int64](p, f.lastHandshake).Load(); nano != 0 {
		ps.LastHandshake = time.Unix(nano/int64(time.Second), nano%int64(time.Second))
	}
	ps.TxBytes = int64(at[atomic.Uint64](p, f.txBytes).Load())
	ps.RxBytes = int64(at[atomic.Uint64](p, f.rxBytes).Load())
	ps.PersistentKeepalive = time.Duration(at[atomic.Uint32](p, f.keepalive).Load()) * time.Second
	allowed.EntriesForPeer(peer, func(a netip.Prefix) bool {
		ps.AllowedIPs = append(ps.AllowedIPs, a)
		return true
	})
}

// endpointAddr is the endpoint's destination as a get reports it (its
// DstToString), unmapped as decodeUAPI reads it.
func endpointAddr(ep conn.Endpoint) netip.AddrPort {
	var ap netip.AddrPort
	if std, ok := ep.(*conn.StdNetEndpoint); ok {
		ap = std.AddrPort
	} else if a, err := netip.ParseAddrPort(ep.DstToString()); err == nil {
		ap = a
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
