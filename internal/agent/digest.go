package agent

import (
	"github.com/wgnet/wgnet/internal/api"
)

// summed is a state held and its digest (api.Digest), so that the digest of
// the state a delta makes of it is worked out from what changed only.
type summed struct {
	st  *held
	sum api.Digest
}

// heldDigest is st's digest worked out whole: its head and every peer.
func heldDigest(st *held) api.Digest {
	d := api.HeadDigest(&st.AgentState)
	st.each(func(p *api.Peer) { d = d.Add(api.PeerDigest(p)) })
	return d
}

// movedDigest is the digest of st from prev's: prev's head and the peers
// that differ taken out, st's put in. The peers that differ are found chunk
// by chunk (diffPeers): what a delta changed, not every peer.
func movedDigest(prev summed, st *held) api.Digest {
	if prev.st.Peers == nil || st.Peers == nil {
		return heldDigest(st)
	}
	d := prev.sum.Sub(api.HeadDigest(&prev.st.AgentState)).Add(api.HeadDigest(&st.AgentState))
	diffPeers(prev.st.Peers, st.Peers, func(old, new *api.Peer) bool {
		if old != nil {
			d = d.Sub(api.PeerDigest(old))
		}
		if new != nil {
			d = d.Add(api.PeerDigest(new))
		}
		return true
	})
	return d
}

// digestMatches reports whether st, what delta d made of base, has the
// digest d carries (true when it carries none: a controller of an earlier
// release). A state that differs from the controller's (a bug, a record
// lost) is said and counted; the caller then asks for the whole state.
// Called by the follow loop only.
func (a *Agent) digestMatches(base, st *held, d *api.AgentDelta) bool {
	if d.Digest == "" {
		return true
	}
	want, err := api.ParseDigest(d.Digest)
	if err != nil {
		a.opts.Log.Warn("delta with an unreadable digest: asking for the whole state", "err", err)
		a.m.digestMismatches.Inc()
		return false
	}
	a.mu.Lock()
	prev := a.summed
	a.mu.Unlock()
	if prev.st != base {
		prev = summed{st: base, sum: heldDigest(base)}
	}
	got := movedDigest(prev, st)
	if got != want {
		a.opts.Log.Warn("the state this delta makes differs from the controller's (its digest): asking for the whole state",
			"from", d.From, "revision", d.Revision, "digest", got.String(), "controller", d.Digest)
		a.m.digestMismatches.Inc()
		return false
	}
	a.mu.Lock()
	a.summed = summed{st: st, sum: got}
	a.mu.Unlock()
	return true
}
