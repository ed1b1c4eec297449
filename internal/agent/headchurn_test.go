package agent

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// TestHeldIntentHeadChurn (written by this session's review): random deltas
// that change subnets, approved routes (some public, some that no tunnel
// routes, some wider than /8: not taken), own routes, addresses, MTU, DNS,
// the filter and peers together; heldIntent equals Intent (result and
// error) under several allowances; a refusal leaves the memo's intent as it
// was; deltaOf replays (through JSON, by api.ApplyDelta and held.apply, as
// the journal is read) byte for byte.
func TestHeldIntentHeadChurn(t *testing.T) {
	for _, al := range []Allowed{{}, {FullTunnel: true}, {PublicRoutes: true}, {DNS: true}} {
		rng := rand.New(rand.NewPCG(7, uint64(len(fmt.Sprint(al)))))
		var keys []wgkey.Key
		for range 41 {
			k, _ := wgkey.GeneratePrivate()
			keys = append(keys, k.Public())
		}
		own := keys[40]
		pfx := []string{"10.80.0.1/32", "10.80.1.0/24", "10.90.0.0/24", "10.91.0.0/24", "10.90.0.0/25", "10.90.1.0/24",
			"0.0.0.0/0", "fd00::1/128", "10.81.0.0/16", "8.8.8.0/24", "10.90.0.128/25", "169.254.169.254/32", "8.0.0.0/7", "8.8.8.8/32"}
		peer := func(i int) api.Peer {
			p := api.Peer{Name: fmt.Sprintf("p%02d", i), PublicKey: keys[i].String(), AllowedIPs: []string{fmt.Sprintf("10.80.0.%d/32", i+2)}}
			if rng.IntN(3) == 0 {
				p.AllowedIPs = append(p.AllowedIPs, pfx[rng.IntN(len(pfx))])
			}
			if rng.IntN(8) == 0 {
				p.AllowedIPs = []string{}
			}
			return p
		}
		heads := []func(h *api.AgentState){
			func(h *api.AgentState) {
				h.Subnets = [][]string{{"10.80.0.0/16"}, {"10.80.0.0/16", "fd00::/64"}, {"10.80.0.0/16", "10.81.0.0/16"}, {"10.80.0.0/16", "8.8.8.0/24"}}[rng.IntN(4)]
			},
			func(h *api.AgentState) {
				h.ApprovedRoutes = [][]string{nil, {}, {"10.90.0.0/24"}, {"10.90.0.0/23"}, {"10.90.0.0/24", "10.91.0.0/24"}, {"10.91.0.0/24"},
					{"10.90.0.0/23", "8.8.8.0/24"}, {"8.0.0.0/7", "10.91.0.0/24"}, {"10.90.0.0/24", "169.254.169.254/32"}}[rng.IntN(9)]
			},
			func(h *api.AgentState) {
				h.Routes = [][]string{nil, {}, {"10.90.0.0/24"}, {"10.90.0.0/25"}, {"10.91.0.0/24"}, {"10.90.1.0/24"}}[rng.IntN(6)]
			},
			func(h *api.AgentState) {
				h.Addresses = [][]string{{"10.80.255.1/16"}, {"10.80.255.1/24"}, {"10.80.255.1/16", "fd00::ff/64"}}[rng.IntN(3)]
			},
			func(h *api.AgentState) { h.MTU = []int{0, 1380, 100}[rng.IntN(3)] },
			func(h *api.AgentState) { h.DNS = [][]string{nil, {}, {"10.80.0.53"}}[rng.IntN(3)] },
			func(h *api.AgentState) {
				h.Filter = []*api.Filter{nil, {Rules: nil}, {Rules: []api.FilterRule{}}, {Rules: []api.FilterRule{{Accept: true, Src: []string{}}}}}[rng.IntN(4)]
			},
		}
		flat := &api.AgentState{Network: "n", Host: "me", Interface: "wg0", Revision: 1, Subnets: []string{"10.80.0.0/16", "10.81.0.0/16"},
			Addresses: []string{"10.80.255.1/16"}, ApprovedRoutes: []string{"10.90.0.0/23", "10.91.0.0/24"}, Peers: []api.Peer{}}
		for i := range 40 {
			flat.Peers = append(flat.Peers, peer(i))
		}
		s := hold(flat)
		var m memo
		ok, refused, rulesDiff, skipping := 0, 0, 0, 0
		for round := range 4000 {
			d := &api.AgentDelta{From: flat.Revision, Revision: flat.Revision + 1, URLs: []string{"https://x"}}
			if rng.IntN(2) == 0 {
				h := *flat
				h.Peers, h.Revision, h.URLs = nil, 0, nil
				for range 1 + rng.IntN(3) {
					heads[rng.IntN(len(heads))](&h)
				}
				d.Head = &h
			}
			used := map[int]bool{}
			for range rng.IntN(12) {
				i := rng.IntN(40)
				if used[i] {
					continue
				}
				used[i] = true
				if rng.IntN(4) == 0 {
					d.Removed = append(d.Removed, fmt.Sprintf("p%02d", i))
				} else {
					d.Peers = append(d.Peers, peer(i))
				}
			}
			slices.SortFunc(d.Peers, func(a, b api.Peer) int { return cmpNames(a.Name, b.Name) })
			want, err := api.ApplyDelta(flat, d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.apply(d)
			if err != nil {
				t.Fatal(err)
			}
			wb, _ := json.Marshal(want)
			// deltaOf, through JSON as the journal holds it, onto the base through JSON.
			if dd := deltaOf(s, got); dd != nil {
				jb, _ := json.Marshal(journalEntry{Followed: 1, Delta: *dd})
				var e journalEntry
				if err := json.Unmarshal(jb, &e); err != nil {
					t.Fatal(err)
				}
				bb, _ := json.Marshal(s.Flat())
				var base api.AgentState
				json.Unmarshal(bb, &base)
				again, err := api.ApplyDelta(&base, &e.Delta)
				ab, _ := json.Marshal(again)
				if err != nil || !slices.Equal(ab, wb) {
					t.Fatalf("%+v round %d: journal replay differs:\n got %s\nwant %s", al, round, ab, wb)
				}
				// and through held.apply (loadCache's path)
				hb := hold(&base)
				again2, err := hb.apply(&e.Delta)
				ab2, _ := json.Marshal(again2.Flat())
				if err != nil || !slices.Equal(ab2, wb) {
					t.Fatalf("%+v round %d: journal replay (held) differs:\n got %s\nwant %s", al, round, ab2, wb)
				}
			}
			wantH, wantErr := al.Intent(want, "/k", own)
			var keep []byte
			var keepH []byte
			if m.h != nil {
				keep = intentJSON(m.h)
				keepH, _ = json.Marshal(m.h)
			}
			if m.st != nil && !samePeerRules(&m.st.AgentState, &got.AgentState) {
				rulesDiff++
			}
			if skipsRoutes(&got.AgentState, al) {
				skipping++
			}
			h, err := heldIntent(m, got, "/k", own, al)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("%+v round %d: heldIntent err %v, want %v", al, round, err, wantErr)
			}
			if err != nil {
				refused++
				if m.h != nil {
					kh, _ := json.Marshal(m.h)
					if !slices.Equal(intentJSON(m.h), keep) || !slices.Equal(kh, keepH) {
						t.Fatalf("%+v round %d: refusal changed the memo", al, round)
					}
				}
			} else {
				ok++
				if !reflect.DeepEqual(h, wantH) {
					t.Fatalf("%+v round %d: differs\n got %+v\nwant %+v", al, round, h, wantH)
				}
				m = memo{got, h}
			}
			flat, s = want, got
			// keep the state mostly acceptable: reset a refused state now and then
			if err != nil && rng.IntN(3) == 0 {
				w := &api.AgentState{Network: "n", Host: "me", Interface: "wg0", Revision: flat.Revision + 1, Subnets: []string{"10.80.0.0/16", "10.81.0.0/16"},
					Addresses: []string{"10.80.255.1/16"}, ApprovedRoutes: []string{"10.90.0.0/23", "10.91.0.0/24"}, Peers: []api.Peer{}}
				for i := range 40 {
					p := peer(i)
					p.AllowedIPs = p.AllowedIPs[:0:0]
					p.AllowedIPs = append(p.AllowedIPs, fmt.Sprintf("10.80.0.%d/32", i+2))
					w.Peers = append(w.Peers, p)
				}
				flat, s = w, hold(w)
			}
		}
		t.Logf("%+v: %d ok, %d refused, %d under other peer rules, %d with routes not taken", al, ok, refused, rulesDiff, skipping)
		if ok < 500 || refused < 100 || rulesDiff < 500 || skipping < 200 {
			t.Errorf("%+v: the test did not exercise every path", al)
		}
	}
}
