package controller

import (
	"cmp"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgconf"
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
	whole bool     // no delta: the host is new, or its peers are not sorted by name
}

// step is what changed between two compiled revisions of a network: the
// hosts whose desired state changed (a host absent changed nothing).
type step struct {
	from, to uint64
	hosts    map[string]hostStep
}

// diffCompiled works out the step from old to cur, comparing every host's
// state once (work in proportion to the compiled network, once per
// revision, not once per agent), the hosts shared out among the cores as
// compile does: in a 1,000-host mesh that is a million peers compared.
func diffCompiled(old, cur *compiled) *step {
	st := &step{from: old.rev, to: cur.rev, hosts: map[string]hostStep{}}
	sameNet := old.net.Name == cur.net.Name && old.iface == cur.iface &&
		slices.Equal(old.net.Subnets, cur.net.Subnets) && slices.Equal(old.approved, cur.approved)
	names := slices.Collect(maps.Keys(cur.hosts))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(names)/64))
	found := make([]map[string]hostStep, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			out := map[string]hostStep{}
			for i := w; i < len(names); i += workers {
				if hs, changed := diffHost(old, cur, names[i], sameNet); changed {
					out[names[i]] = hs
				}
			}
			found[w] = out
		})
	}
	wg.Wait()
	for _, m := range found {
		maps.Copy(st.hosts, m)
	}
	return st
}

// diffHost is what changed for host name from old to cur, and whether
// anything did.
func diffHost(old, cur *compiled, name string, sameNet bool) (hostStep, bool) {
	nh := cur.hosts[name]
	oh, ok := old.hosts[name]
	if !ok {
		return hostStep{whole: true}, true
	}
	var hs hostStep
	if sameNet && sameHeadInputs(oh, nh) {
		cur.shareHead(old, oh, nh) // the same head: made once, not again
	} else {
		hs.head = !reflect.DeepEqual(old.head(oh), cur.head(nh))
	}
	var sorted bool
	hs.peers, sorted = peersChanged(oh.Peers, nh.Peers)
	hs.whole = !sorted
	return hs, hs.head || hs.whole || len(hs.peers) > 0
}

// peersChanged returns the names of the peers that differ between two lists
// sorted by name (a merge walk), and false when either is not sorted.
func peersChanged(old, cur []wgconf.Peer) ([]string, bool) {
	var out []string
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		if (i > 0 && i < len(old) && old[i-1].Name >= old[i].Name) || (j > 0 && j < len(cur) && cur[j-1].Name >= cur[j].Name) {
			return nil, false
		}
		switch {
		case j == len(cur) || (i < len(old) && old[i].Name < cur[j].Name):
			out = append(out, old[i].Name)
			i++
		case i == len(old) || cur[j].Name < old[i].Name:
			out = append(out, cur[j].Name)
			j++
		default:
			if !samePeer(&old[i], &cur[j]) {
				out = append(out, cur[j].Name)
			}
			i, j = i+1, j+1
		}
	}
	return out, true
}

// samePeer reports whether two peers have the same wire form (wirePeer
// reads exactly these fields).
func samePeer(a, b *wgconf.Peer) bool {
	if a.Name != b.Name || a.PublicKey != b.PublicKey || a.PersistentKeepalive != b.PersistentKeepalive {
		return false
	}
	if (a.Endpoint == nil) != (b.Endpoint == nil) || (a.Endpoint != nil && *a.Endpoint != *b.Endpoint) {
		return false
	}
	return slices.Equal(a.AllowedIPs, b.AllowedIPs)
}

// sameHeadInputs reports whether two hosts' intents agree on every field
// toAgentHead reads from a host (the network's fields are compared apart):
// then their heads are equal without making them. A difference here may still
// make equal heads; the heads are compared then.
func sameHeadInputs(a, b *intent.Host) bool {
	return a.Name == b.Name && a.MTU == b.MTU && a.Forward == b.Forward && a.Firewall.ClampMSS == b.Firewall.ClampMSS &&
		(a.ListenPort == nil) == (b.ListenPort == nil) && (a.ListenPort == nil || *a.ListenPort == *b.ListenPort) &&
		slices.Equal(a.Addresses, b.Addresses) && slices.Equal(a.Routes, b.Routes) &&
		reflect.DeepEqual(a.Firewall.Filter, b.Firewall.Filter)
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
		i, ok := slices.BinarySearchFunc(ih.Peers, n, func(p wgconf.Peer, n string) int { return cmp.Compare(p.Name, n) })
		if ok {
			d.Peers = append(d.Peers, wirePeer(&ih.Peers[i]))
		} else {
			d.Removed = append(d.Removed, n)
		}
	}
	slices.SortFunc(d.Peers, func(a, b api.Peer) int { return strings.Compare(a.Name, b.Name) })
	return d
}
