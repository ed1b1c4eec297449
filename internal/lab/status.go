package lab

import (
	"net/netip"
	"time"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// HostStatus is one running host as its device reports it, with peers by name.
type HostStatus struct {
	Host      string         `json:"host"`
	Listen    netip.AddrPort `json:"listen"`   // its UDP socket on loopback
	Endpoint  string         `json:"endpoint"` // what the configs call it ("" if none)
	PublicKey wgkey.Key      `json:"public_key"`
	Addresses []netip.Prefix `json:"addresses"`
	Subnets   []Target       `json:"subnets,omitempty"`
	Forwards  bool           `json:"forwards"`
	Peers     []PeerStatus   `json:"peers"`
}

// PeerStatus is one peer of a running host.
type PeerStatus struct {
	Peer          string         `json:"peer"` // host name, or "key XXXX…"
	PublicKey     wgkey.Key      `json:"public_key"`
	Endpoint      netip.AddrPort `json:"endpoint,omitzero"` // current, on loopback
	LastHandshake time.Time      `json:"last_handshake,omitzero"`
	// Handshakes counts handshakes completed with the peer (seen on the wire).
	Handshakes int   `json:"handshakes"`
	RxBytes    int64 `json:"rx_bytes"`
	TxBytes    int64 `json:"tx_bytes"`
}

// Status reads every device's state.
func (l *Lab) Status() ([]HostStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	advertised := make(map[string]string)
	for _, h := range l.hosts {
		for _, p := range h.hc.Peers {
			if p.Endpoint == nil {
				continue
			}
			for _, t := range l.hosts {
				if t.key == p.PublicKey {
					advertised[t.hc.Name] = p.Endpoint.String()
				}
			}
		}
	}
	var out []HostStatus
	for _, h := range l.hosts {
		st, err := h.node.State()
		if err != nil {
			return nil, err
		}
		v4, v6 := h.hc.Forward.V4, h.hc.Forward.V6
		hs := HostStatus{
			Host:      h.hc.Name,
			Listen:    h.node.Addr(),
			Endpoint:  advertised[h.hc.Name],
			PublicKey: st.PublicKey,
			Addresses: h.hc.Addresses,
			Subnets:   h.subnets,
			Forwards:  v4 || v6,
		}
		for _, p := range h.hc.Peers { // config order
			ps, ok := st.Peer(p.PublicKey)
			if !ok {
				continue
			}
			if hasPeerStatus(hs.Peers, p.PublicKey) {
				continue
			}
			hs.Peers = append(hs.Peers, PeerStatus{
				Peer:          l.peerNameLocked(p.PublicKey),
				PublicKey:     p.PublicKey,
				Endpoint:      ps.Endpoint,
				LastHandshake: ps.LastHandshake,
				Handshakes:    h.node.Handshakes(ps.Endpoint),
				RxBytes:       ps.RxBytes,
				TxBytes:       ps.TxBytes,
			})
		}
		out = append(out, hs)
	}
	return out, nil
}

func hasPeerStatus(ps []PeerStatus, k wgkey.Key) bool {
	for _, p := range ps {
		if p.PublicKey == k {
			return true
		}
	}
	return false
}
