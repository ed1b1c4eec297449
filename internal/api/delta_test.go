package api

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestApplyDelta checks the merge walk against the obvious version (drop
// what went or was sent, add what was sent, sort) on random states and
// deltas, and that a delta from another revision does not apply.
func TestApplyDelta(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	name := func(i int) string { return fmt.Sprintf("p%03d", i) }
	for round := range 500 {
		base := &AgentState{Host: "h", Revision: 7, Subnets: []string{"10.0.0.0/24"}, Peers: []Peer{}}
		for i := range 40 {
			if rng.IntN(2) == 0 {
				base.Peers = append(base.Peers, Peer{Name: name(i), PublicKey: "old", AllowedIPs: []string{}})
			}
		}
		d := &AgentDelta{From: 7, Revision: 9, URLs: []string{"https://c"}}
		for i := range 40 {
			switch rng.IntN(4) {
			case 0:
				d.Peers = append(d.Peers, Peer{Name: name(i), PublicKey: fmt.Sprint("new", round), AllowedIPs: []string{}})
			case 1:
				d.Removed = append(d.Removed, name(i))
			}
		}
		if rng.IntN(3) == 0 {
			d.Head = &AgentState{Host: "h", Subnets: []string{"10.1.0.0/24"}}
		}
		got, err := ApplyDelta(base, d)
		if err != nil {
			t.Fatal(err)
		}
		want := *base
		if d.Head != nil {
			want = *d.Head
		}
		want.Revision, want.URLs, want.Peers = 9, d.URLs, []Peer{}
		gone := map[string]bool{}
		for _, n := range d.Removed {
			gone[n] = true
		}
		for _, p := range d.Peers {
			gone[p.Name] = true
		}
		for _, p := range base.Peers {
			if !gone[p.Name] {
				want.Peers = append(want.Peers, p)
			}
		}
		want.Peers = append(want.Peers, d.Peers...)
		slices.SortFunc(want.Peers, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("round %d: got %+v\nwant %+v", round, *got, want)
		}
		if base.Revision != 7 || base.URLs != nil {
			t.Fatal("the base changed")
		}
	}
	if _, err := ApplyDelta(&AgentState{Revision: 6}, &AgentDelta{From: 7, Revision: 9}); !errors.Is(err, ErrDeltaBase) {
		t.Errorf("a delta from 7 onto 6: %v, want ErrDeltaBase", err)
	}
	if _, err := ApplyDelta(nil, &AgentDelta{From: 7, Revision: 9}); !errors.Is(err, ErrDeltaBase) {
		t.Errorf("a delta onto nothing: %v, want ErrDeltaBase", err)
	}
}
