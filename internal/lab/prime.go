package lab

import (
	"context"
	"net/netip"
	"time"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// prime starts one handshake per peering before the probes, from one side only.
// Probes from both sides at once would make both hosts initiate at the same
// moment; WireGuard then drops both handshakes and retries only after
// REKEY_TIMEOUT (5 s), far beyond a probe's timeout. So for each pair of hosts
// that list each other the lab picks one that has an Endpoint for the other (the
// first by name) and sends one packet from it into the tunnel, as a host that
// talks first would. It then waits up to a probe timeout for those sessions,
// reporting EventHandshakes as they come.
func (l *Lab) prime(ctx context.Context) {
	type pending struct {
		node *Node
		peer wgkey.Key
	}
	var waits []pending
	l.mu.Lock()
	done := make(map[[2]string]bool)
	for _, a := range l.hosts {
		for _, p := range a.hc.Peers {
			var b *labHost
			for _, h := range l.hosts {
				if h.key == p.PublicKey && h != a {
					b = h
				}
			}
			if b == nil {
				continue
			}
			pair := [2]string{a.hc.Name, b.hc.Name}
			if pair[1] < pair[0] {
				pair[0], pair[1] = pair[1], pair[0]
			}
			if done[pair] {
				continue
			}
			// a comes first by name or b could not dial a: a initiates if it can.
			if _, ok := l.resolve(p); !ok {
				continue // b may still initiate when its turn comes
			}
			if _, ok := peerFor(&b.hc, a.key); !ok || len(p.AllowedIPs) == 0 {
				continue // no session can come of it
			}
			done[pair] = true
			dst := primeTarget(p.AllowedIPs, b)
			if err := sendEcho(a.node.stack, dst); err == nil {
				waits = append(waits, pending{a.node, b.key})
			}
		}
	}
	l.mu.Unlock()

	deadline := time.Now().Add(l.opts.ProbeTimeout)
	for len(waits) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		rest := waits[:0]
		for _, w := range waits {
			st, err := w.node.State()
			if err != nil {
				continue
			}
			if ps, ok := st.Peer(w.peer); !ok || ps.LastHandshake.IsZero() {
				rest = append(rest, w)
			}
		}
		waits = rest
		if l.opts.Progress != nil {
			done, total := l.sessions()
			l.progress(Event{Kind: EventHandshakes, Done: done, Total: total})
		}
		if len(waits) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// primeTarget picks an address the initiator routes to the peer: the peer's own
// overlay address when its AllowedIPs cover it, else an address in the first entry.
func primeTarget(allowed []netip.Prefix, peer *labHost) netip.Addr {
	for _, a := range peer.hc.Addresses {
		for _, p := range allowed {
			if p.Contains(a.Addr()) {
				return a.Addr()
			}
		}
	}
	return firstUsable(allowed[0])
}
