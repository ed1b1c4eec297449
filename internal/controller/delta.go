package controller

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/intent"
)

// This file is the per-agent deltas of API v2 (issue 15): when a network is
// compiled at a new revision, what changed since the revision compiled
// before it is worked out once, for every host (a step); a long poll from an
// agent at revision r0 is answered with the steps from r0 to the current
// revision, for that host only, resolved against the current compilation.
// An agent whose revision is not the start of a chain of steps this
// controller knows gets its whole state, as before.

// MaxSteps is how many steps of each network a controller keeps: an agent
// further behind than that gets its whole state.
const MaxSteps = 64

// hostStep is what changed for one host between two compiled revisions.
type hostStep struct {
	head  bool     // a field other than the peers changed
	peers []string // the names of the peers added, changed or removed
	whole bool     // no delta: the host is new
}

// step is what changed between two compiled revisions of a network: the
// hosts whose desired state changed (a host absent changed nothing).
type step struct {
	from, to uint64
	hosts    map[string]hostStep
}

// diffCompiled works out the step from old to cur: what changed in each
// host's intent, from compile.Diff (a host added to a mesh of 1,000 is one
// peer more in every host's list, found without comparing the other 999 of
// each), then each head that may differ on the wire compared. Work in
// proportion to the hosts and what changed, once per revision, not once
// per agent; in proportion to the square of the hosts only for the changes
// compile.Diff does not work out incrementally (a mesh whose policy resolves
// otherwise, as when a rule names the host added; a new topology or hub;
// another preshared key between two hosts).
func diffCompiled(old, cur *compiled) *step {
	st := &step{from: old.rev, to: cur.rev, hosts: map[string]hostStep{}}
	sameNet := old.net.Name == cur.net.Name && old.iface == cur.iface &&
		slices.Equal(old.net.Subnets, cur.net.Subnets) && slices.Equal(old.approved, cur.approved)
	ch := compile.Diff(old.hosts, cur.hosts)
	for name, hc := range ch.Hosts {
		if hc.New {
			st.hosts[name] = hostStep{whole: true}
		} else if len(hc.Peers) > 0 {
			// A peer the compiler changed only in what the wire does not
			// carry (its comments: a host made external) is sent again,
			// equal: harmless, and rare (a controller has no preshared keys).
			st.hosts[name] = hostStep{peers: hc.Peers}
		}
	}
	for name := range cur.hosts.Names() {
		hc := ch.Hosts[name]
		if hc.New {
			continue
		}
		oh, _ := old.host(name)
		nh, _ := cur.host(name)
		if sameNet && !hc.Head {
			cur.shareHead(old, oh, nh) // the same head: made once, not again
		} else if !reflect.DeepEqual(old.head(oh), cur.head(nh)) {
			hs := st.hosts[name]
			hs.head = true
			st.hosts[name] = hs
		}
	}
	cur.carryDigests(old, st)
	return st
}

// shareHead gives cp's nh the head old made for oh, when it made one.
func (cp *compiled) shareHead(old *compiled, oh, nh *intent.Host) {
	old.headsMu.Lock()
	h, ok := old.heads[oh.Name]
	old.headsMu.Unlock()
	if !ok {
		return
	}
	cp.headsMu.Lock()
	defer cp.headsMu.Unlock()
	if cp.heads == nil {
		cp.heads = map[string]*api.AgentState{}
	}
	cp.heads[nh.Name] = h
}

// head is ih's desired state without peers, URLs or revision: what a
// delta's Head carries; computed once per compiled revision and host.
func (cp *compiled) head(ih *intent.Host) *api.AgentState {
	cp.headsMu.Lock()
	defer cp.headsMu.Unlock()
	if h, ok := cp.heads[ih.Name]; ok {
		return h
	}
	if cp.heads == nil {
		cp.heads = map[string]*api.AgentState{}
	}
	h := toAgentHead(cp, ih)
	cp.heads[ih.Name] = h
	return h
}

// steps is the chain of steps of one network, oldest first.
type steps []*step

// add appends a step, keeping the last MaxSteps.
func (ss steps) add(s *step) steps {
	ss = append(ss, s)
	if len(ss) > MaxSteps {
		ss = slices.Delete(ss, 0, len(ss)-MaxSteps)
	}
	return ss
}

// forHost folds what changed for host from revision since to revision to,
// walking the chain back from to; false when the chain does not reach since
// exactly, or some step has no delta for the host.
func (ss steps) forHost(host string, since, to uint64) (hostStep, bool) {
	var out hostStep
	names := map[string]bool{}
	rev := to
	for i := len(ss) - 1; i >= 0 && rev > since; i-- {
		s := ss[i]
		if s.to != rev {
			if s.to < rev {
				return out, false // a gap
			}
			continue // a step beyond to
		}
		hs := s.hosts[host]
		if hs.whole {
			return out, false
		}
		out.head = out.head || hs.head
		for _, n := range hs.peers {
			names[n] = true
		}
		rev = s.from
	}
	if rev != since {
		return out, false
	}
	out.peers = slices.Sorted(maps.Keys(names))
	return out, true
}

// delta is the AgentDelta of hs for ih, the host's state at cp, from since.
func (cp *compiled) delta(ih *intent.Host, hs hostStep, since uint64, urls []string) *api.AgentDelta {
	d := &api.AgentDelta{From: since, Revision: cp.rev, URLs: urls}
	if hs.head {
		h := *cp.head(ih)
		d.Head = &h
	}
	for _, n := range hs.peers {
		if p, ok := cp.hosts.Peer(ih.Name, n); ok {
			d.Peers = append(d.Peers, wirePeer(&p))
		} else {
			d.Removed = append(d.Removed, n)
		}
	}
	slices.SortFunc(d.Peers, func(a, b api.Peer) int { return strings.Compare(a.Name, b.Name) })
	d.Digest = cp.digest(ih).String()
	return d
}
