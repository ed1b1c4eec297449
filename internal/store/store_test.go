package store

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/wgnet/wgnet/internal/ipam"
)

// TestAllocateFromMatchesIpamNext checks the probing allocation against
// ipam.Next on random used sets and every valid floor: the same address, or
// both full.
func TestAllocateFromMatchesIpamNext(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sub := range []netip.Prefix{netip.MustParsePrefix("10.0.0.0/27"), netip.MustParsePrefix("10.0.0.0/31"), netip.MustParsePrefix("fd00::/123")} {
		for iter := 0; iter < 300; iter++ {
			var all []netip.Addr
			for a := sub.Addr(); sub.Contains(a); a = a.Next() {
				all = append(all, a)
			}
			used := map[netip.Addr]bool{}
			var usedList []netip.Addr
			density := r.Float64()
			for _, a := range all {
				if r.Float64() < density && ipam.Check(sub, a) == nil {
					used[a] = true
					usedList = append(usedList, a)
				}
			}
			want, wantErr := ipam.Next(sub, usedList)
			// Every floor from the start up to the lowest free address is valid.
			for _, floor := range append([]netip.Addr{{}}, all...) {
				if wantErr == nil && want.Less(floor) {
					break
				}
				floors := map[netip.Prefix]netip.Addr{sub: floor}
				h := Host{}
				err := AllocateFrom([]netip.Prefix{sub}, floors, func(a netip.Addr) (bool, error) { return used[a], nil }, &h)
				switch {
				case wantErr != nil && err == nil:
					t.Fatalf("%s used %v floor %v: got %v, ipam.Next says full", sub, usedList, floor, h.Addresses)
				case wantErr == nil && (err != nil || h.Addresses[0] != want):
					t.Fatalf("%s used %v floor %v: got %v, %v; ipam.Next says %v", sub, usedList, floor, h.Addresses, err, want)
				case err == nil && floors[sub] != want.Next():
					t.Fatalf("floor after allocating %v = %v", want, floors[sub])
				}
			}
		}
	}
}
