package up

import (
	"net/netip"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// readBackDevice returns the device after the plan's device changes, for the
// read-back that verifies them, when the device can read single peers back
// (device.PeerReader: wgnet's own daemon): the device's own fields and every
// peer the changes may have touched, read back, the rest as read before the
// change (the diff found them equal to the target, and nothing was sent
// about them). A peer may have been touched without being named: one that
// held a prefix the changes give another peer loses it (WireGuard moves an
// allowed IP to the last peer given it), so those are read back too. It
// returns nil when the device cannot read single peers, when the change
// touched more than half of them (the up of a new device), or when the read
// failed: then the whole device is read, as before.
//
// A one-peer change on 10,000 peers so reads back one peer, not 10,000.
func readBackDevice(d device.Device, before *device.State, p *Plan) *device.State {
	r, ok := d.(device.PeerReader)
	if !ok || before == nil || p.dev == nil {
		return nil
	}
	touched := map[wgkey.Key]bool{}
	given := map[netip.Prefix]bool{}
	for _, c := range p.dev.Peers {
		touched[c.PublicKey] = true
		for _, a := range c.AllowedIPs {
			given[a.Masked()] = true
		}
		for _, a := range c.AddAllowedIPs {
			given[a.Masked()] = true
		}
	}
	for _, ps := range before.Peers {
		for _, a := range ps.AllowedIPs {
			if given[a.Masked()] {
				touched[ps.PublicKey] = true
				break
			}
		}
	}
	if 2*len(touched) > len(before.Peers) {
		return nil // most of the device: one full read is as cheap (up of a new one)
	}
	keys := make([]wgkey.Key, 0, len(touched))
	for k := range touched {
		keys = append(keys, k)
	}
	got, err := r.PeerStates(keys)
	if err != nil {
		return nil
	}
	st := *got
	st.Peers = make([]device.PeerState, 0, len(before.Peers)+len(got.Peers))
	for _, ps := range before.Peers {
		if !touched[ps.PublicKey] {
			st.Peers = append(st.Peers, ps)
		}
	}
	st.Peers = append(st.Peers, got.Peers...)
	return &st
}
