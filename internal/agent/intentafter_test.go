package agent_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/wgnet/wgnet/internal/agent"
	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/store/storetest"
)

// TestIntentAfter checks IntentAfter against Intent on random chains of
// states (peers added, removed and changed, some outside the subnets or
// with a bad key or endpoint, the head changed, peers out of order): the
// intent, or the error, is the same, every time.
func TestIntentAfter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	own := storetest.Key(0)
	peer := func(i int) api.Peer {
		p := api.Peer{Name: fmt.Sprintf("p%03d", i), PublicKey: storetest.Key(i + 1).String(),
			AllowedIPs: []string{fmt.Sprintf("10.80.%d.%d/32", i/250, i%250+1)}}
		if i%3 == 0 {
			p.Endpoint = fmt.Sprintf("192.0.2.%d:51820", i%250+1)
		}
		return p
	}
	st := &api.AgentState{Network: "n", Host: "me", Interface: "wg0", Revision: 1, Subnets: []string{"10.80.0.0/16"},
		Addresses: []string{"10.80.255.1/16"}, ApprovedRoutes: []string{"10.90.0.0/24"}}
	for i := range 50 {
		st.Peers = append(st.Peers, peer(i))
	}
	var prev *api.AgentState
	reused, refused := 0, 0
	for round := range 400 {
		next := *st
		next.Revision++
		next.Peers = slices.Clone(st.Peers)
		switch r := rng.IntN(20); {
		case r < 6: // a peer changed
			i := rng.IntN(len(next.Peers))
			p := next.Peers[i]
			p.AllowedIPs = []string{fmt.Sprintf("10.80.200.%d/32", rng.IntN(250)+1)}
			if rng.IntN(2) == 0 {
				p.AllowedIPs = append(p.AllowedIPs, "10.90.0.0/24")
			}
			next.Peers[i] = p
		case r < 9: // a peer added
			p := peer(100 + round)
			at, _ := slices.BinarySearchFunc(next.Peers, p.Name, func(a api.Peer, n string) int { return cmpStr(a.Name, n) })
			next.Peers = slices.Insert(next.Peers, at, p)
		case r < 12 && len(next.Peers) > 2: // a peer removed
			i := rng.IntN(len(next.Peers) - 1)
			next.Peers = slices.Delete(next.Peers, i, i+1+rng.IntN(2))
		case r == 12: // outside the subnets: refused
			i := rng.IntN(len(next.Peers))
			p := next.Peers[i]
			p.AllowedIPs = []string{"10.81.0.1/32"}
			next.Peers[i] = p
		case r == 13: // a bad key, or its own
			i := rng.IntN(len(next.Peers))
			p := next.Peers[i]
			p.PublicKey = []string{"nonsense", own.String()}[rng.IntN(2)]
			next.Peers[i] = p
		case r == 14: // an unreadable endpoint
			i := rng.IntN(len(next.Peers))
			p := next.Peers[i]
			p.Endpoint = "no port"
			next.Peers[i] = p
		case r == 15: // the head: approved routes
			next.ApprovedRoutes = [][]string{{"10.90.0.0/24"}, {}, {"10.90.0.0/24", "10.91.0.0/24"}}[rng.IntN(3)]
		case r == 16: // out of order
			i, j := rng.IntN(len(next.Peers)), rng.IntN(len(next.Peers))
			next.Peers[i], next.Peers[j] = next.Peers[j], next.Peers[i]
		case r == 17: // the own routes (a peer may not claim them)
			next.Routes = [][]string{nil, {"10.90.0.0/24"}}[rng.IntN(2)]
		}
		want, wantErr := agent.Intent(&next, "/k", own)
		var prevH any
		if prev != nil {
			prevH, _ = agent.Intent(prev, "/k", own)
		}
		h, _ := prevH.(*intent.Host)
		got, gotErr := agent.IntentAfter(prev, h, &next, "/k", own)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("round %d: error %v, want %v", round, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: IntentAfter differs from Intent:\n got %+v\nwant %+v", round, got, want)
		}
		if wantErr != nil {
			refused++
			continue // the agent keeps the state before
		}
		if prev != nil && h != nil {
			reused++
		}
		prev, st = &next, &next
	}
	if reused < 100 || refused < 10 {
		t.Errorf("%d states made after a previous one, %d refused: the test did not exercise both", reused, refused)
	}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
