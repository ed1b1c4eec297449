package controller

import (
	"maps"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/intent"
)

// hostDigests are the digests of the hosts' desired states at one compiled
// revision (api.Digest, sent with every delta so that an agent finds a
// state of its own that differs at once): worked out whole the first time a
// host gets a delta (every peer of that host, once), then carried from one
// revision to the next by the step between them (carryDigests: what changed
// only). In a mesh of 1,000, a host added costs some 1,000 peer digests in
// all, not a million.
type hostDigests struct {
	mu sync.Mutex // guards m
	m  map[string]api.Digest
}

func (hd *hostDigests) get(name string) (api.Digest, bool) {
	hd.mu.Lock()
	defer hd.mu.Unlock()
	d, ok := hd.m[name]
	return d, ok
}

// put records ds, keeping a digest recorded meanwhile (the same).
func (hd *hostDigests) put(ds map[string]api.Digest) {
	hd.mu.Lock()
	defer hd.mu.Unlock()
	if hd.m == nil {
		hd.m = make(map[string]api.Digest, len(ds))
	}
	for name, d := range ds {
		if _, ok := hd.m[name]; !ok {
			hd.m[name] = d
		}
	}
}

// wholeDigests counts the digests worked out whole, for tests.
var wholeDigests atomic.Int64

// digest is the digest of ih's desired state at cp: carried, or worked
// out whole and kept.
func (cp *compiled) digest(ih *intent.Host) api.Digest {
	if d, ok := cp.sums.get(ih.Name); ok {
		return d
	}
	st := toAgentState(cp, ih, nil)
	d := api.StateDigest(&st)
	wholeDigests.Add(1)
	cp.sums.put(map[string]api.Digest{ih.Name: d})
	return d
}

// keepDigest records the digest of st, a host's whole state at cp just
// made for an agent that speaks v2 (which takes deltas next, each with a
// digest), unless cp has one: its first delta's digest is then this one
// carried by the steps, not worked out whole on the path of a change. After
// a controller starts, every agent takes a whole state first: without
// this, the first change after it worked out every host's digest whole (a
// million peer digests in a mesh of 1,000, 0.7-0.9 s of p99).
func (cp *compiled) keepDigest(r *http.Request, st *api.AgentState) {
	if !api.Includes(apiVersion(r), api.V2) {
		return
	}
	if _, ok := cp.sums.get(st.Host); !ok {
		cp.sums.put(map[string]api.Digest{st.Host: api.StateDigest(st)})
	}
}

// carryDigests gives cur the digests old has, moved by st, the step from
// old to cur: a host the step does not name keeps its digest; one it names
// has the digests of its old head and peers named taken out and those of
// cur put in. A host new in cur, or gone, has none.
func (cur *compiled) carryDigests(old *compiled, st *step) {
	old.sums.mu.Lock()
	was := maps.Clone(old.sums.m)
	old.sums.mu.Unlock()
	if len(was) == 0 {
		return
	}
	out := make(map[string]api.Digest, len(was))
	for name, d := range was {
		nh, ok := cur.host(name)
		if !ok {
			continue
		}
		if hs, changed := st.hosts[name]; changed {
			if hs.whole {
				continue
			}
			oh, _ := old.host(name)
			d = moveDigest(d, old, cur, oh, nh, hs)
		}
		out[name] = d
	}
	cur.sums.put(out)
}

// moveDigest is d, the digest of oh's state at old, moved by hs to nh's at cur.
func moveDigest(d api.Digest, old, cur *compiled, oh, nh *intent.Host, hs hostStep) api.Digest {
	if hs.head {
		d = d.Sub(api.HeadDigest(old.head(oh))).Add(api.HeadDigest(cur.head(nh)))
	}
	for _, n := range hs.peers {
		if p, ok := old.hosts.Peer(oh.Name, n); ok {
			wp := wirePeer(&p)
			d = d.Sub(api.PeerDigest(&wp))
		}
		if p, ok := cur.hosts.Peer(nh.Name, n); ok {
			wp := wirePeer(&p)
			d = d.Add(api.PeerDigest(&wp))
		}
	}
	return d
}
