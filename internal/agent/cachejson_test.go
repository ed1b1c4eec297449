package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
)

// TestMarshalCache: marshalCache writes what json.Marshal writes, byte for
// byte, for states with odd strings (quotes, HTML, control characters,
// non-ASCII, invalid UTF-8), empty and nil lists and zero values.
func TestMarshalCache(t *testing.T) {
	if n := reflect.TypeFor[api.Peer]().NumField(); n != 5 {
		t.Fatalf("api.Peer has %d fields, appendPeer writes 5: write the new ones in appendPeer too", n)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	odd := []string{"", "h1", `a"b`, `back\slash`, "<tag>&", "a<b", "a>b", "a&b", "tab\there", "é", "\xff\xfe", "\u2028", "10.0.0.1/32", "[fd00::1]:51820"}
	pick := func() string { return odd[rng.IntN(len(odd))] }
	for round := range 300 {
		c := Cache{Followed: rng.Uint64N(100), State: api.AgentState{Network: pick(), Host: pick(), Revision: uint64(round),
			Subnets: []string{"10.0.0.0/16"}, URLs: []string{pick()}, MTU: rng.IntN(2) * 1420}}
		switch rng.IntN(4) {
		case 0: // nil peers
		case 1:
			c.State.Peers = []api.Peer{}
		default:
			for i := range rng.IntN(6) {
				p := api.Peer{Name: pick() + fmt.Sprint(i), PublicKey: pick(), Endpoint: pick(), Keepalive: rng.IntN(3) * 25}
				switch rng.IntN(3) {
				case 0:
				case 1:
					p.AllowedIPs = []string{}
				default:
					p.AllowedIPs = []string{pick(), pick()}
				}
				c.State.Peers = append(c.State.Peers, p)
			}
		}
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalCache(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d:\n got %s\nwant %s", round, got, want)
		}
	}
}
