package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// heldRand makes random states and deltas over a pool of peer names:
// mostly a few peers added, changed or removed, now and then many, a head
// changed, a peer the guardrails refuse, peers out of order, nil allowed
// IPs, a peer both sent and removed, a name removed that is not there, a
// delta from another revision.
type heldRand struct {
	rng  *rand.Rand
	own  wgkey.Key
	keys []wgkey.Key
	bads map[int]bool // peers sent bad, sent good again by a delta soon
	// headBad: the head's approved routes were taken away (peers routing
	// them refused); the next delta gives them back.
	headBad bool
}

func newHeldRand(seed uint64, pool int) *heldRand {
	r := &heldRand{rng: rand.New(rand.NewPCG(seed, seed+1)), bads: map[int]bool{}}
	for range pool + 1 {
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			panic(err)
		}
		r.keys = append(r.keys, k.Public())
	}
	r.own = r.keys[pool]
	return r
}

func (r *heldRand) peer(i int) api.Peer {
	p := api.Peer{Name: fmt.Sprintf("p%03d", i), PublicKey: r.keys[i].String(),
		AllowedIPs: []string{fmt.Sprintf("10.80.%d.%d/32", i/250, i%250+1)}}
	switch r.rng.IntN(6) {
	case 0:
		p.Endpoint = fmt.Sprintf("192.0.2.%d:51820", i%250+1)
	case 1:
		p.Keepalive = 25
	case 2:
		p.AllowedIPs = append(p.AllowedIPs, fmt.Sprintf("10.90.0.%d/32", r.rng.IntN(250)+1))
	}
	return p
}

// bad is peer i as the guardrails refuse it (or can't read it).
func (r *heldRand) bad(i int) api.Peer {
	p := r.peer(i)
	r.bads[i] = true
	switch r.rng.IntN(4) {
	case 0:
		p.AllowedIPs = []string{"10.81.0.1/32"}
	case 1:
		p.PublicKey = "nonsense"
	case 2:
		p.PublicKey = r.own.String()
	case 3:
		p.Endpoint = "no port"
	}
	return p
}

func (r *heldRand) state(n int) *api.AgentState {
	st := &api.AgentState{Network: "n", Host: "me", Interface: "wg0", Revision: 1, Subnets: []string{"10.80.0.0/16"},
		Addresses: []string{"10.80.255.1/16"}, ApprovedRoutes: []string{"10.90.0.0/24"}, Peers: []api.Peer{}}
	for i := range n {
		st.Peers = append(st.Peers, r.peer(i))
	}
	return st
}

func (r *heldRand) delta(cur *api.AgentState) *api.AgentDelta {
	pool := len(r.keys) - 1
	d := &api.AgentDelta{From: cur.Revision, Revision: cur.Revision + 1, URLs: []string{"https://127.0.0.1:1"}}
	edits := 1 + r.rng.IntN(3)
	switch x := r.rng.IntN(20); {
	case x < 2: // many: chunks split and merged
		edits = 10 + r.rng.IntN(40)
	case x == 2 || r.headBad: // the head
		h := *cur
		h.Peers, h.Revision = nil, 0
		h.ApprovedRoutes = [][]string{{"10.90.0.0/24"}, {"10.90.0.0/24", "10.91.0.0/24"}, {}}[r.rng.IntN(3)]
		r.headBad = !r.headBad && len(h.ApprovedRoutes) == 0
		if !r.headBad && len(h.ApprovedRoutes) == 0 {
			h.ApprovedRoutes = []string{"10.90.0.0/24"}
		}
		d.Head = &h
	case x == 3: // another base
		d.From--
	case x == 4: // nothing but the revision
		edits = 0
	}
	if r.rng.IntN(2) == 0 {
		for i := range r.bads {
			d.Peers = append(d.Peers, r.peer(i))
			delete(r.bads, i)
		}
	}
	for range edits {
		i := r.rng.IntN(pool)
		if r.bads[i] {
			continue
		}
		switch y := r.rng.IntN(12); {
		case y < 5:
			d.Peers = append(d.Peers, r.peer(i))
		case y == 5 && edits < 10:
			d.Peers = append(d.Peers, r.bad(i))
		case y == 6:
			p := r.peer(i)
			p.AllowedIPs = [][]string{nil, {}}[r.rng.IntN(2)]
			d.Peers = append(d.Peers, p)
		default:
			d.Removed = append(d.Removed, fmt.Sprintf("p%03d", i))
		}
	}
	slices.SortFunc(d.Peers, func(a, b api.Peer) int { return cmpNames(a.Name, b.Name) })
	d.Peers = slices.CompactFunc(d.Peers, func(a, b api.Peer) bool { return a.Name == b.Name })
	if len(d.Peers) > 1 && r.rng.IntN(15) == 0 { // out of order
		d.Peers[0], d.Peers[1] = d.Peers[1], d.Peers[0]
	}
	return d
}

func cmpNames(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// flatten is s's wire form made again from its chunks (not Flat's, made once).
func flatten(s *held) []byte {
	f := s.AgentState
	if s.Peers == nil {
		f.Peers = s.flat.Peers
	} else {
		f.Peers = []api.Peer{}
		s.each(func(p *api.Peer) { f.Peers = append(f.Peers, *p) })
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return b
}

func checkChunks(t *testing.T, round int, l *peerList) {
	t.Helper()
	n, last := 0, ""
	for _, c := range l.chunks {
		if len(c) == 0 || len(c) > 2*chunkPeers {
			t.Fatalf("round %d: a chunk of %d peers", round, len(c))
		}
		for _, p := range c {
			if p.Name <= last && n > 0 {
				t.Fatalf("round %d: %s after %s", round, p.Name, last)
			}
			last = p.Name
			n++
		}
	}
	if n != l.n {
		t.Fatalf("round %d: %d peers counted %d", round, n, l.n)
	}
}

// TestHeldMatchesFlat checks the shared form against the wire form's slow
// obvious path on random chains of deltas: each state made by held.apply is
// api.ApplyDelta's, byte for byte (or the same error); the state before is
// untouched; deltaOf between them makes the later again; sameHeld and
// carrierChanged agree with comparing whole states; the intent patched in
// place (heldIntent) is Intent's of the whole state, peer for peer, or the
// same error, and a refused one leaves the last intent as it was.
func TestHeldMatchesFlat(t *testing.T) {
	r := newHeldRand(11, 300)
	flat := r.state(200)
	s := hold(flat)
	var m memo
	addrs := []netip.Addr{netip.MustParseAddr("10.80.0.7"), netip.MustParseAddr("10.90.0.9"), netip.MustParseAddr("10.80.0.200")}
	patched, refused, shared, whole, rulesChanged := 0, 0, 0, 0, 0
	for round := range 1500 {
		if round%100 == 99 { // a whole state now and then, sometimes out of order
			w := *flat
			w.Peers = slices.Clone(flat.Peers)
			if round%200 == 99 && len(w.Peers) > 1 {
				w.Peers[0], w.Peers[1] = w.Peers[1], w.Peers[0]
			}
			flat, s = &w, hold(&w)
			whole++
		}
		d := r.delta(flat)
		before := flatten(s)
		want, wantErr := api.ApplyDelta(flat, d)
		got, gotErr := s.apply(d)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("round %d: apply: %v, want %v", round, gotErr, wantErr)
		}
		if !slices.Equal(flatten(s), before) {
			t.Fatalf("round %d: the state before changed", round)
		}
		if wantErr != nil {
			continue
		}
		wb, _ := json.Marshal(want)
		if gb := flatten(got); !slices.Equal(gb, wb) {
			t.Fatalf("round %d: apply:\n got %s\nwant %s", round, gb, wb)
		}
		if fb, _ := json.Marshal(got.Flat()); !slices.Equal(fb, wb) {
			t.Fatalf("round %d: Flat:\n got %s\nwant %s", round, fb, wb)
		}
		if got.Peers != nil {
			checkChunks(t, round, got.Peers)
			if s.Peers != nil && len(d.Peers)+len(d.Removed) <= 1 {
				fresh := 0
				for _, c := range got.Peers.chunks {
					if !slices.ContainsFunc(s.Peers.chunks, func(o []api.Peer) bool { return sameChunk(o, c) }) {
						fresh++
					}
				}
				if fresh > 2 {
					t.Fatalf("round %d: a delta of one peer made %d chunks of %d", round, fresh, len(got.Peers.chunks))
				}
				shared++
			}
		}
		x, y := *flat, *want
		x.Revision, y.Revision = 0, 0
		if sameHeld(s, got) != reflect.DeepEqual(x, y) {
			t.Fatalf("round %d: sameHeld %v", round, sameHeld(s, got))
		}
		for _, a := range addrs {
			if c := carrierChanged(s, got, a); c != (carrier(flat, a) != carrier(want, a)) {
				t.Fatalf("round %d: carrierChanged(%s) %v", round, a, c)
			}
		}
		if dd := deltaOf(s, got); dd != nil {
			again, err := api.ApplyDelta(flat, dd)
			if ab, _ := json.Marshal(again); err != nil || !slices.Equal(ab, wb) {
				t.Fatalf("round %d: deltaOf: %v\n got %s\nwant %s", round, err, ab, wb)
			}
		}
		// The intent, patched in place from the last one made.
		wantH, wantHErr := Intent(want, "/k", r.own)
		var keep []byte
		if m.h != nil {
			keep = intentJSON(m.h)
		}
		h, err := heldIntent(m, got, "/k", r.own, Allowed{})
		if fmt.Sprint(err) != fmt.Sprint(wantHErr) {
			t.Fatalf("round %d: heldIntent: %v, want %v", round, err, wantHErr)
		}
		if err != nil {
			refused++
			if m.h != nil && !slices.Equal(intentJSON(m.h), keep) {
				t.Fatalf("round %d: a refused state changed the last intent", round)
			}
		} else {
			if !reflect.DeepEqual(h, wantH) {
				t.Fatalf("round %d: heldIntent differs from Intent:\n got %+v\nwant %+v", round, h, wantH)
			}
			if m.st != nil && m.st.Peers != nil && got.Peers != nil && sameHead(&m.st.AgentState, &got.AgentState) {
				patched++
			}
			if m.st != nil && m.st.Peers != nil && got.Peers != nil && !samePeerRules(&m.st.AgentState, &got.AgentState) {
				rulesChanged++ // patched too, its kept peers judged again
			}
			m = memo{got, h}
		}
		flat, s = want, got
	}
	t.Logf("%d intents patched, %d refused, %d one-peer deltas checked for sharing, %d whole states, %d intents made under another head's rules",
		patched, refused, shared, whole, rulesChanged)
	if patched < 500 || refused < 100 || shared < 300 || rulesChanged < 20 {
		t.Errorf("the test did not exercise every path: %d patched, %d refused, %d shared", patched, refused, shared)
	}
}

func intentJSON(h *intent.Host) []byte {
	b, err := json.Marshal(h.Peers)
	if err != nil {
		panic(err)
	}
	return b
}

// checkPlane is a data plane that records a copy of each intent applied
// and fails when told to.
type checkPlane struct {
	mu    sync.Mutex
	fail  bool
	calls int
	last  *intent.Host
}

func (p *checkPlane) Apply(_ context.Context, _ string, h *intent.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("plane fails")
	}
	p.last = h.Clone()
	p.calls++
	return nil
}
func (p *checkPlane) Peers(context.Context, string) ([]device.PeerState, error) { return nil, nil }
func (p *checkPlane) Remove(context.Context, string) error                      { return nil }

// TestAgentHeldChain drives an agent through random deltas as the long poll
// applies them, its data plane failing now and then, and a roll back to an
// older state now and then (as the safety window does): every intent the
// plane gets is Intent's of the whole state; a refused state or a failed
// apply leaves the state applied as it was, byte for byte.
func TestAgentHeldChain(t *testing.T) {
	ctx := context.Background()
	plane := &checkPlane{}
	a := testAgent(t, plane)
	r := newHeldRand(21, 150)
	if err := a.apply(ctx, hold(r.state(100)), true); err != nil {
		t.Fatal(err)
	}
	r.own = a.pub
	var older []*held
	applied, failed, refused, rolled := 0, 0, 0, 0
	for round := range 400 {
		cur := a.applied
		before := flatten(cur)
		if round%40 == 39 && len(older) > 0 { // a roll back, to a state some changes ago
			prev := older[r.rng.IntN(len(older))]
			plane.fail = false
			if err := a.applyHeld(ctx, prev, false); err != nil {
				t.Fatalf("round %d: roll back: %v", round, err)
			}
			rolled++
			checkApplied(t, round, a, plane, prev, cur)
			continue
		}
		d := r.delta(cur.Flat())
		d.From = cur.Revision
		next, err := cur.apply(d)
		if err != nil {
			t.Fatal(err)
		}
		plane.fail = r.rng.IntN(10) == 0
		err = a.apply(ctx, next, true)
		switch {
		case err == nil:
			applied++
			older = append(older, cur)
			checkApplied(t, round, a, plane, next, cur)
			continue
		case errors.Is(err, ErrRefused) || !plane.fail:
			refused++
			if _, werr := Intent(next.Flat(), "/nonexistent", a.pub); werr == nil {
				t.Fatalf("round %d: refused %v, which Intent takes", round, err)
			}
		default:
			failed++
		}
		if a.applied != cur || !slices.Equal(flatten(cur), before) {
			t.Fatalf("round %d: a state not applied (%v) changed the one applied", round, err)
		}
	}
	plane.fail = false
	t.Logf("%d applied, %d refused, %d failed in the plane, %d rolled back", applied, refused, failed, rolled)
	if applied < 200 || refused < 20 || failed < 10 || rolled < 5 {
		t.Errorf("the test did not exercise every path")
	}
}

// checkApplied checks that st, applied after prev, is the agent's state
// and its intent the plane's (not applied again when only the revision
// changed: the plane's then says the revision before).
func checkApplied(t *testing.T, round int, a *Agent, plane *checkPlane, st, prev *held) {
	t.Helper()
	want, err := Intent(st.Flat(), "/nonexistent", a.pub)
	if err != nil {
		t.Fatalf("round %d: applied a state Intent refuses: %v", round, err)
	}
	if !slices.Equal(plane.last.Comments, want.Comments) && sameHeld(prev, st) {
		want.Comments = plane.last.Comments
	}
	if a.applied != st || !reflect.DeepEqual(plane.last, want) {
		t.Fatalf("round %d: the plane got\n %+v\nwant %+v", round, plane.last, want)
	}
}
