package agent

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/wgnet/wgnet/internal/api"
)

// A desired state as the agent holds it (held): its head, every field but
// the peers, and the peers in a persistent list (peerList) of chunks that
// are never changed once made. The state made of a delta shares every chunk
// the delta does not touch with the state before it, which stays as it was
// (the safety window may roll back to it, the cache's journal compares with
// it): in a mesh of 1,000, a host added makes one chunk of some 32 peers and
// a directory of some 32 chunks, not a copy of 999 peers. Two lists are
// compared chunk by chunk, a chunk both share skipped whole (diffPeers):
// what changed between two states costs what changed, not every peer.
//
// The wire form (api.AgentState, its peers one slice) is made only where a
// whole state is needed (Flat: the cache's base, Agent.State), once per
// state. A state whose peers are not sorted by name (no controller sends
// one) or are nil is held only in its wire form, and everything made of it
// takes the slow path, with the same result.

// chunkPeers is the size a chunk of peers is split at (twice it), merged
// below (half of it).
const chunkPeers = 32

// held is a desired state. Its embedded AgentState is the head (its Peers
// always nil); Peers hides that field: the peers, or nil when only flat has
// them. A held is never changed once made, but for flat made once.
type held struct {
	api.AgentState
	Peers *peerList

	once sync.Once
	flat *api.AgentState
}

// hold is st as the agent holds it; st is not changed, and shared.
func hold(st *api.AgentState) *held {
	if st == nil {
		return nil
	}
	s := &held{AgentState: *st, flat: st}
	s.AgentState.Peers = nil
	if st.Peers != nil && sortedPeers(st.Peers) {
		s.Peers = newPeerList(st.Peers)
	}
	return s
}

// Flat is the state in its wire form (nil for nil), made once; not to be changed.
func (s *held) Flat() *api.AgentState {
	if s == nil {
		return nil
	}
	s.once.Do(func() {
		if s.flat != nil {
			return
		}
		f := s.AgentState
		f.Peers = make([]api.Peer, 0, s.Peers.n)
		for _, c := range s.Peers.chunks {
			f.Peers = append(f.Peers, c...)
		}
		s.flat = &f
	})
	return s.flat
}

// Len is the number of peers.
func (s *held) Len() int {
	if s.Peers != nil {
		return s.Peers.n
	}
	return len(s.flat.Peers)
}

// each calls fn with every peer, in order.
func (s *held) each(fn func(*api.Peer)) {
	if s.Peers == nil {
		for i := range s.flat.Peers {
			fn(&s.flat.Peers[i])
		}
		return
	}
	for _, c := range s.Peers.chunks {
		for i := range c {
			fn(&c[i])
		}
	}
}

// apply is api.ApplyDelta(s.Flat(), d), made sharing s's peers that d does
// not name; s is not changed. Its error is ApplyDelta's.
func (s *held) apply(d *api.AgentDelta) (*held, error) {
	if s == nil || s.Revision != d.From || s.Peers == nil || !sortedPeers(d.Peers) {
		st, err := api.ApplyDelta(s.Flat(), d)
		if err != nil {
			return nil, err
		}
		return hold(st), nil
	}
	out := &held{AgentState: s.AgentState}
	if d.Head != nil {
		out.AgentState = *d.Head
		out.AgentState.Peers = nil
	}
	out.Revision, out.URLs = d.Revision, d.URLs
	out.Peers = s.Peers.patch(d.Peers, d.Removed)
	return out, nil
}

// takeWhole takes a state received whole. When the agent speaks deltas, the
// state's digest (digest.go) is worked out first, whole, as the state was
// decoded whole: the first delta onto it then moves the digest by what
// changed, instead of working out every peer's on the path of a change (a
// thousand SHA-256 per agent, at the first add after each whole state, in
// a mesh of 1,000).
func (a *Agent) takeWhole(ctx context.Context, st *api.AgentState) error {
	h := hold(st)
	versions := a.opts.APIVersions
	if versions == nil {
		versions = api.Versions
	}
	if slices.Contains(versions, api.V2) {
		sum := heldDigest(h)
		a.mu.Lock()
		a.summed = summed{st: h, sum: sum}
		a.mu.Unlock()
	}
	return a.take(ctx, h)
}

// sameHeld reports whether two states differ only in their revision.
func sameHeld(a, b *held) bool {
	x, y := a.AgentState, b.AgentState
	x.Revision, y.Revision = 0, 0
	if !reflect.DeepEqual(x, y) {
		return false
	}
	if a.Peers == nil || b.Peers == nil {
		return reflect.DeepEqual(a.Flat().Peers, b.Flat().Peers)
	}
	same := true
	diffPeers(a.Peers, b.Peers, func(_, _ *api.Peer) bool { same = false; return false })
	return same
}

// peerList is a list of peers sorted by name (no name twice) in chunks,
// each non-empty and never changed once made: lists made by patch share
// the chunks they did not touch.
type peerList struct {
	chunks [][]api.Peer
	n      int
}

// newPeerList holds ps (sorted by name, no name twice) in chunks that are
// slices of ps itself, capped: ps must not be changed after.
func newPeerList(ps []api.Peer) *peerList {
	l := &peerList{n: len(ps)}
	for i := 0; i < len(ps); i += chunkPeers {
		j := min(i+chunkPeers, len(ps))
		l.chunks = append(l.chunks, ps[i:j:j])
	}
	return l
}

// patch is l with the peers of sent (sorted by name, no name twice) added
// or replacing their namesakes and those named by removed taken out (a peer
// both sent and removed is sent), as api.ApplyDelta does; l is not changed.
// Only the chunks an edit falls in (found by binary search) are read and
// made again (split when grown past twice chunkPeers, merged with the one
// before when shrunk below half); the others are shared, their place in
// the directory copied in runs.
func (l *peerList) patch(sent []api.Peer, removed []string) *peerList {
	gone := slices.Clone(removed)
	slices.Sort(gone)
	out := &peerList{chunks: make([][]api.Peer, 0, len(l.chunks)+1), n: l.n}
	if len(l.chunks) == 0 {
		out.add(slices.Clone(sent), true)
		return out
	}
	next, si, gi := 0, 0, 0 // the first chunk of l not yet in out; the next of sent and gone
	for si < len(sent) || gi < len(gone) {
		name := ""
		if gi == len(gone) || (si < len(sent) && sent[si].Name < gone[gi]) {
			name = sent[si].Name
		} else {
			name = gone[gi]
		}
		// The chunk name falls in: the last that starts at or before it
		// (the first, for a name before all).
		c := sort.Search(len(l.chunks), func(i int) bool { return l.chunks[i][0].Name > name })
		c = max(c-1, next)
		out.chunks = append(out.chunks, l.chunks[next:c]...)
		se, ge := len(sent), len(gone) // the edits that fall in c end here
		if c < len(l.chunks)-1 {
			limit := l.chunks[c+1][0].Name
			for se = si; se < len(sent) && sent[se].Name < limit; se++ {
			}
			for ge = gi; ge < len(gone) && gone[ge] < limit; ge++ {
			}
		}
		out.n -= len(l.chunks[c])
		out.add(mergePeers(l.chunks[c], sent[si:se], gone[gi:ge]), true)
		next, si, gi = c+1, se, ge
	}
	out.chunks = append(out.chunks, l.chunks[next:]...)
	return out
}

// add appends a chunk to l (made says it is new, not shared): an empty one
// is dropped, a large one split, a small new one merged with the one before.
func (l *peerList) add(chunk []api.Peer, made bool) {
	if len(chunk) == 0 {
		return
	}
	if made && len(chunk) < chunkPeers/2 && len(l.chunks) > 0 && len(l.chunks[len(l.chunks)-1])+len(chunk) <= 2*chunkPeers {
		prev := l.chunks[len(l.chunks)-1]
		l.n -= len(prev)
		chunk = append(slices.Clip(slices.Clone(prev)), chunk...)
		l.chunks = l.chunks[:len(l.chunks)-1]
	}
	for made && len(chunk) > 2*chunkPeers {
		l.chunks = append(l.chunks, chunk[:chunkPeers:chunkPeers])
		l.n += chunkPeers
		chunk = chunk[chunkPeers:]
	}
	l.chunks = append(l.chunks, slices.Clip(chunk))
	l.n += len(chunk)
}

// mergePeers is base with sent added or replacing their namesakes and the
// names of gone taken out, all three sorted by name; a new slice.
func mergePeers(base, sent []api.Peer, gone []string) []api.Peer {
	out := make([]api.Peer, 0, len(base)+len(sent))
	i, j := 0, 0
	for i < len(base) || j < len(sent) {
		switch {
		case j == len(sent) || (i < len(base) && base[i].Name < sent[j].Name):
			if _, found := slices.BinarySearch(gone, base[i].Name); !found {
				out = append(out, base[i])
			}
			i++
		case i == len(base) || sent[j].Name < base[i].Name:
			out = append(out, sent[j])
			j++
		default:
			out = append(out, sent[j])
			i, j = i+1, j+1
		}
	}
	return out
}

// diffPeers calls fn for each peer that differs between a and b, in name
// order: (old, nil) removed, (nil, new) added, (old, new) changed (in any
// field, nil allowed IPs apart from empty ones), until fn returns false.
// A chunk at the same place in both is skipped whole.
func diffPeers(a, b *peerList, fn func(old, new *api.Peer) bool) {
	ai, ak, bi, bk := 0, 0, 0, 0
	for ai < len(a.chunks) || bi < len(b.chunks) {
		if ak == 0 && bk == 0 && ai < len(a.chunks) && bi < len(b.chunks) && sameChunk(a.chunks[ai], b.chunks[bi]) {
			ai, bi = ai+1, bi+1
			continue
		}
		var x, y *api.Peer
		if ai < len(a.chunks) {
			x = &a.chunks[ai][ak]
		}
		if bi < len(b.chunks) {
			y = &b.chunks[bi][bk]
		}
		c := 0 // which side goes on: -1 a, 1 b, 0 both
		switch {
		case y == nil:
			c = -1
		case x == nil:
			c = 1
		default:
			c = strings.Compare(x.Name, y.Name)
		}
		switch {
		case c < 0 && !fn(x, nil), c > 0 && !fn(nil, y), c == 0 && !samePeerExactly(x, y) && !fn(x, y):
			return
		}
		if c <= 0 {
			if ak++; ak == len(a.chunks[ai]) {
				ai, ak = ai+1, 0
			}
		}
		if c >= 0 {
			if bk++; bk == len(b.chunks[bi]) {
				bi, bk = bi+1, 0
			}
		}
	}
}

// sameChunk reports whether x and y are the same chunk (both non-empty).
func sameChunk(x, y []api.Peer) bool {
	return len(x) == len(y) && &x[0] == &y[0]
}

// samePeerExactly is samePeer, nil allowed IPs apart from empty ones (the
// JSON differs: null or []).
func samePeerExactly(a, b *api.Peer) bool {
	return samePeer(a, b) && (a.AllowedIPs == nil) == (b.AllowedIPs == nil)
}

// carrierChanged reports whether the peer that carries traffic to addr
// (carrier) differs between two states. When no peer that differs between
// them (in either version) has a prefix holding addr, the peers that do are
// the same in both, in the same order, and so is the carrier: only the
// peers that differ are read.
func carrierChanged(prev, next *held, addr netip.Addr) bool {
	if prev.Peers != nil && next.Peers != nil {
		holds := func(p *api.Peer) bool {
			return p != nil && slices.ContainsFunc(p.AllowedIPs, func(s string) bool {
				q, err := netip.ParsePrefix(s)
				return err == nil && q.Contains(addr)
			})
		}
		touched := false
		diffPeers(prev.Peers, next.Peers, func(old, new *api.Peer) bool {
			touched = holds(old) || holds(new)
			return !touched
		})
		if !touched {
			return false
		}
	}
	return carrier(prev.Flat(), addr) != carrier(next.Flat(), addr)
}
