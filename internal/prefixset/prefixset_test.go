package prefixset

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// slowSet is the obvious version every answer of Set is checked against, as
// wireguard-go checks its trie against SlowRouter: a list, scanned whole.
type slowSet struct {
	items []slowItem
}

type slowItem struct {
	p netip.Prefix
	v int
}

func (s *slowSet) add(p netip.Prefix, v int) { s.items = append(s.items, slowItem{p.Masked(), v}) }

// lookup returns the longest prefix containing a and its values in order.
func (s *slowSet) lookup(a netip.Addr) (netip.Prefix, []int) {
	var best netip.Prefix
	for _, it := range s.items {
		if it.p.Contains(a) && (!best.IsValid() || it.p.Bits() > best.Bits()) {
			best = it.p
		}
	}
	return best, s.values(best)
}

func (s *slowSet) values(p netip.Prefix) []int {
	var vs []int
	for _, it := range s.items {
		if it.p == p {
			vs = append(vs, it.v)
		}
	}
	return vs
}

// containing returns the distinct prefixes that contain p (p excluded), longest first.
func (s *slowSet) containing(p netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, it := range s.items {
		if it.p != p && it.p.Bits() <= p.Bits() && it.p.Contains(p.Addr()) && !slices.Contains(out, it.p) {
			out = append(out, it.p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return b.Bits() - a.Bits() })
	return out
}

// within returns the distinct prefixes inside p (p included), sorted.
func (s *slowSet) within(p netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, it := range s.items {
		if it.p.Bits() >= p.Bits() && p.Masked().Contains(it.p.Addr()) && !slices.Contains(out, it.p) {
			out = append(out, it.p)
		}
	}
	slices.SortFunc(out, Compare)
	return out
}

// randPrefix returns a prefix from a small space, so that random ones nest,
// repeat and overlap often: IPv4 10.0.0.0/12 and IPv6 fd00::/116 share the
// low bits.
func randPrefix(r *rand.Rand) netip.Prefix {
	low := r.Uint32() & 0xfffff
	if r.IntN(4) == 0 {
		var b [16]byte
		b[0] = 0xfd
		b[13], b[14], b[15] = byte(low>>16), byte(low>>8), byte(low)
		bits := 108 + r.IntN(21)
		switch r.IntN(10) {
		case 0:
			bits = r.IntN(108) // a wide one, either half of the address, /0 included
			b[1], b[7], b[8] = byte(low), byte(low>>4), byte(low>>8)
		case 1:
			b[0], b[10], b[11] = 0, 0xff, 0xff // IPv4-mapped: IPv6 all the same
			bits = 96 + r.IntN(33)
		}
		return netip.PrefixFrom(netip.AddrFrom16(b), bits)
	}
	a := netip.AddrFrom4([4]byte{10, byte(low >> 16), byte(low >> 8), byte(low)})
	bits := 12 + r.IntN(21)
	if r.IntN(20) == 0 {
		bits = r.IntN(12) // now and then a wide one, /0 included
	}
	return netip.PrefixFrom(a, bits)
}

func randAddr(r *rand.Rand) netip.Addr {
	p := randPrefix(r)
	a := p.Addr().AsSlice()
	a[len(a)-1] ^= byte(r.IntN(256))
	a[len(a)-2] ^= byte(r.IntN(16))
	addr, _ := netip.AddrFromSlice(a)
	return addr
}

// TestAgainstSlow compares every answer of Set with slowSet's on random sets.
func TestAgainstSlow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var b Builder[int]
		var slow slowSet
		n := r.IntN(300)
		for i := 0; i < n; i++ {
			p := randPrefix(r)
			b.Add(p, i)
			slow.add(p, i)
		}
		s := b.Set()

		var all []netip.Prefix
		for _, it := range slow.items {
			if !slices.Contains(all, it.p) {
				all = append(all, it.p)
			}
		}
		slices.SortFunc(all, Compare)
		got := make([]netip.Prefix, s.Len())
		for i := range got {
			got[i] = s.Prefix(i)
		}
		if diff := cmp.Diff(all, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Fatalf("round %d: prefixes (-want +got):\n%s", round, diff)
		}
		for i := range s.Len() {
			p := s.Prefix(i)
			if diff := cmp.Diff(slow.values(p), s.Values(i)); diff != "" {
				t.Fatalf("round %d: Values(%s) (-want +got):\n%s", round, p, diff)
			}
			var chain []netip.Prefix
			for j := s.Parent(i); j >= 0; j = s.Parent(j) {
				chain = append(chain, s.Prefix(j))
			}
			if want := slow.containing(p); !slices.Equal(want, chain) {
				t.Fatalf("round %d: prefixes containing %s: got %v, want %v", round, p, chain, want)
			}
			if j, ok := s.Find(p); !ok || j != i {
				t.Fatalf("round %d: Find(%s) = %d, %v; want %d", round, p, j, ok, i)
			}
		}
		for k := 0; k < 200; k++ {
			a := randAddr(r)
			wantP, wantV := slow.lookup(a)
			i, ok := s.Lookup(a)
			if ok != wantP.IsValid() || ok && (s.Prefix(i) != wantP || !slices.Equal(s.Values(i), wantV)) {
				t.Fatalf("round %d: Lookup(%s) = %d, %v; want %s %v", round, a, i, ok, wantP, wantV)
			}
			q := randPrefix(r)
			lo, hi := s.Within(q)
			var in []netip.Prefix
			for j := lo; j < hi; j++ {
				in = append(in, s.Prefix(j))
			}
			if want := slow.within(q); !slices.Equal(want, in) {
				t.Fatalf("round %d: Within(%s) = %v, want %v", round, q, in, want)
			}
			if _, ok := s.Find(q); ok != slices.Contains(all, q.Masked()) {
				t.Fatalf("round %d: Find(%s) = %v", round, q, ok)
			}
		}
	}
}

func TestEmptyAndInvalid(t *testing.T) {
	var b Builder[string]
	b.Add(netip.Prefix{}, "invalid")
	s := b.Set()
	if s.Len() != 0 {
		t.Fatalf("Len = %d, want 0", s.Len())
	}
	if _, ok := s.Lookup(netip.MustParseAddr("10.0.0.1")); ok {
		t.Error("Lookup in an empty set found something")
	}
	if lo, hi := s.Within(netip.MustParsePrefix("0.0.0.0/0")); lo != hi {
		t.Errorf("Within in an empty set = %d, %d", lo, hi)
	}
}

// BenchmarkLookup routes addresses through 65,536 prefixes, the size of the
// one-peer case of issue 12, against the linear scan as a baseline.
func BenchmarkLookup(b *testing.B) {
	var bl Builder[int]
	var slow slowSet
	for i := 0; i < 1<<16; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		bl.Add(p, i)
		slow.add(p, i)
	}
	s := bl.Set()
	a := netip.MustParseAddr("10.200.7.9")
	b.Run("set", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Lookup(a)
		}
	})
	b.Run("linear-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			slow.lookup(a)
		}
	})
}

// TestBuilderReset: a Builder after Reset builds a set as a new one does, and
// the sets it built before stay as they were.
func TestBuilderReset(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var reused Builder[int]
	var sets []*Set[int]
	var wants []*Set[int]
	for round := 0; round < 20; round++ {
		reused.Reset()
		var fresh Builder[int]
		for i := range r.IntN(300) {
			p := randPrefix(r)
			reused.Add(p, i)
			fresh.Add(p, i)
		}
		sets, wants = append(sets, reused.Set()), append(wants, fresh.Set())
	}
	for round, s := range sets {
		want := wants[round]
		if s.Len() != want.Len() {
			t.Fatalf("round %d: Len %d, want %d", round, s.Len(), want.Len())
		}
		for i := range s.Len() {
			if s.Prefix(i) != want.Prefix(i) || !slices.Equal(s.Values(i), want.Values(i)) || s.Parent(i) != want.Parent(i) {
				t.Fatalf("round %d: prefix %d: %s %v, want %s %v", round, i, s.Prefix(i), s.Values(i), want.Prefix(i), want.Values(i))
			}
		}
	}
}

// TestBuilderReused: a Builder stays usable after Set; values added later come
// after the earlier ones of the same prefix, as in one long build.
func TestBuilderReused(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 50; round++ {
		var b, once Builder[int]
		var slow slowSet
		for i := 0; i < 200; i++ {
			p := randPrefix(r)
			if i == 100 {
				b.Set()
			}
			b.Add(p, i)
			once.Add(p, i)
			slow.add(p, i)
		}
		s, want := b.Set(), once.Set()
		if s.Len() != want.Len() {
			t.Fatalf("round %d: Len %d, want %d", round, s.Len(), want.Len())
		}
		for i := range s.Len() {
			if s.Prefix(i) != want.Prefix(i) || !slices.Equal(s.Values(i), slow.values(s.Prefix(i))) {
				t.Fatalf("round %d: prefix %d: %s %v, want %s %v", round, i, s.Prefix(i), s.Values(i), want.Prefix(i), slow.values(s.Prefix(i)))
			}
		}
	}
}

// BenchmarkSet builds the table of one host of a 1,000-host mesh: 999 host
// routes, added in file order (by host name, not by address).
func BenchmarkSet(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	ps := make([]netip.Prefix, 999)
	for i := range ps {
		ps[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 64, byte(i >> 8), byte(i)}), 32)
	}
	r.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	b.ReportAllocs()
	for b.Loop() {
		var bl Builder[[3]int]
		bl.Grow(len(ps))
		for i, p := range ps {
			bl.Add(p, [3]int{i, 0, i})
		}
		bl.Set()
	}
}

// TestHolding compares Holding with Within, prefix by prefix, on random sets.
func TestHolding(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for round := 0; round < 200; round++ {
		var a, b Builder[int]
		for i := range r.IntN(200) {
			a.Add(randPrefix(r), i)
		}
		for i := range r.IntN(200) {
			p := randPrefix(r)
			if r.IntN(2) == 0 { // addresses, as netmodel asks it
				p = netip.PrefixFrom(p.Addr(), p.Addr().BitLen())
			}
			b.Add(p, i)
		}
		s, u := a.Set(), b.Set()
		got := Holding(s, u)
		for i := range s.Len() {
			lo, hi := u.Within(s.Prefix(i))
			if want := lo < hi; got[i] != want {
				t.Fatalf("round %d: Holding[%d] (%s) = %v, Within says %v", round, i, s.Prefix(i), got[i], want)
			}
		}
	}
}
