// Package prefixset owns a sorted set of IP prefixes, each carrying values, and
// the questions routing asks of one: the longest prefix that holds an address
// (what wg's cryptokey routing does on the way out), the prefixes that contain
// a prefix, the prefixes inside one. Answers take time in the number of bits
// and of matches, never in the number of pairs: a config with 65,536
// AllowedIPs is checked in milliseconds, not by comparing every two.
//
// It imports only the standard library; it must not import wgconf, check or
// anything else of wgnet.
package prefixset

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// Set is an immutable set of masked prefixes, IPv4 and IPv6 apart, each with
// the values it was added with, in the order they were added. Build one with a
// Builder. Prefixes are addressed by index, 0 to Len()-1, in sorted order
// (IPv4 first, then by address, a shorter prefix before the longer ones that
// start at the same address).
//
// A set holds no pointers of its own (its prefixes are kept as keys, and made
// into netip.Prefix values when asked for): a million-entry set of a big mesh
// costs the garbage collector nothing to scan when its values hold none.
type Set[V any] struct {
	keys   []key   // the prefixes, sorted
	first  []int32 // values[first[i]:first[i+1]] are prefix i's
	values []V
	parent []int32 // the index of the longest other prefix containing i; -1 if none
}

// Builder collects prefixes and values for a Set. The zero value is ready to use.
type Builder[V any] struct {
	items []item[V]
	order []sortKey // Set's scratch, kept for the next Set
}

type item[V any] struct {
	k key // the masked prefix
	v V
}

// Add adds p, masked, with v. Adding the same prefix again adds another value
// to it. An invalid prefix is ignored.
func (b *Builder[V]) Add(p netip.Prefix, v V) {
	if !p.IsValid() {
		return
	}
	b.items = append(b.items, item[V]{keyOf(p.Masked()), v})
}

// Grow makes room for n more prefixes.
func (b *Builder[V]) Grow(n int) { b.items = slices.Grow(b.items, n) }

// Reset empties the builder and keeps its memory, to build another set: one
// builder can make the tables of a thousand hosts in turn.
func (b *Builder[V]) Reset() { b.items = b.items[:0] }

// Set returns the set of everything added so far.
func (b *Builder[V]) Set() *Set[V] {
	// The items are ordered by key and then by the order they were added (what
	// a stable sort by prefix gives: values of one prefix in the order added),
	// sorting pointer-free keys: no write barriers, word compares. The builder
	// keeps its items in the order added, so it stays usable: a later Set sorts
	// old and new items alike, later ones after.
	items := b.items
	order := slices.Grow(b.order[:0], len(items))[:len(items)]
	b.order = order
	for i, it := range items {
		order[i] = sortKey{it.k, int32(i)}
	}
	slices.SortFunc(order, func(x, y sortKey) int {
		if x.k != y.k {
			if x.k.less(y.k) {
				return -1
			}
			return 1
		}
		return cmp.Compare(x.i, y.i)
	})
	s := &Set[V]{
		values: make([]V, len(items)),
		keys:   make([]key, 0, len(items)),
		first:  make([]int32, 0, len(items)+1),
	}
	for i, o := range order {
		if i == 0 || o.k != order[i-1].k {
			s.keys = append(s.keys, o.k)
			s.first = append(s.first, int32(i))
		}
		s.values[i] = items[o.i].v
	}
	s.first = append(s.first, int32(len(items)))
	// Sorted so, the prefixes containing one are exactly those on the stack of
	// prefixes still open when it comes: each is a parent of the next.
	s.parent = make([]int32, len(s.keys))
	var stack []int32
	for i, k := range s.keys {
		for len(stack) > 0 && !s.keys[stack[len(stack)-1]].contains(k) {
			stack = stack[:len(stack)-1]
		}
		s.parent[i] = -1
		if len(stack) > 0 {
			s.parent[i] = stack[len(stack)-1]
		}
		stack = append(stack, int32(i))
	}
	return s
}

// key is a valid masked prefix as Compare orders it, without the pointer a
// netip.Addr holds (its zone, which a prefix never has): IPv6 or not, the 16
// bytes of the address (IPv4 mapped), the length.
type key struct {
	hi, lo uint64
	v6     bool
	bits   uint8
}

type sortKey struct {
	k key
	i int32 // the item's place in Builder.items
}

func keyOf(p netip.Prefix) key {
	a := p.Addr().As16()
	return key{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:]), p.Addr().Is6(), uint8(p.Bits())}
}

// prefix returns the prefix k stands for.
func (k key) prefix() netip.Prefix {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], k.hi)
	binary.BigEndian.PutUint64(a[8:], k.lo)
	if k.v6 {
		return netip.PrefixFrom(netip.AddrFrom16(a), int(k.bits))
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte(a[12:])), int(k.bits))
}

// less is Compare on keys: x before y.
func (x key) less(y key) bool {
	switch {
	case x.v6 != y.v6:
		return y.v6
	case x.hi != y.hi:
		return x.hi < y.hi
	case x.lo != y.lo:
		return x.lo < y.lo
	}
	return x.bits < y.bits
}

// contains is Contains on keys: x holds all of y (or is y).
func (x key) contains(y key) bool {
	if x.v6 != y.v6 || x.bits > y.bits {
		return false
	}
	bits := uint(x.bits)
	if !x.v6 {
		bits += 96 // an IPv4 address is the last 32 bits of its 16 bytes
	}
	hi, lo := y.hi, y.lo
	switch {
	case bits == 0:
		hi, lo = 0, 0
	case bits < 64:
		hi &= ^uint64(0) << (64 - bits)
		lo = 0
	case bits < 128:
		lo &= ^uint64(0) << (128 - bits)
	}
	return hi == x.hi && lo == x.lo
}

// search returns where k is or would be in s.keys: a binary search written
// out, with the comparison inlined (it runs a million times on a big mesh).
func (s *Set[V]) search(k key) (int, bool) {
	lo, hi := 0, len(s.keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.keys[m].less(k) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(s.keys) && s.keys[lo] == k
}

// Compare orders masked prefixes as a Set does: IPv4 before IPv6, then by
// address, then the shorter first.
func Compare(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// Contains reports whether prefix a contains all of prefix b (or is b).
func Contains(a, b netip.Prefix) bool {
	return a.Bits() <= b.Bits() && a.Contains(b.Addr())
}

// Len returns the number of distinct prefixes.
func (s *Set[V]) Len() int { return len(s.keys) }

// Prefix returns the i-th prefix.
func (s *Set[V]) Prefix(i int) netip.Prefix { return s.keys[i].prefix() }

// Values returns the values of the i-th prefix in the order they were added.
// The caller must not change the slice.
func (s *Set[V]) Values(i int) []V { return s.values[s.first[i]:s.first[i+1]] }

// Parent returns the index of the longest other prefix that contains the i-th,
// or -1. Following Parent from i visits every prefix that contains it, longest
// first.
func (s *Set[V]) Parent(i int) int { return int(s.parent[i]) }

// Find returns the index of p (masked), if it is in the set.
func (s *Set[V]) Find(p netip.Prefix) (int, bool) {
	if !p.IsValid() {
		return 0, false // before everything, as Compare puts it
	}
	return s.search(keyOf(p.Masked()))
}

// Lookup returns the index of the longest prefix that contains a: the route
// for a. ok is false when no prefix does.
func (s *Set[V]) Lookup(a netip.Addr) (i int, ok bool) {
	// The last prefix starting at or before a is the longest one containing a,
	// or inside it; the one containing a is then among its parents.
	if !a.IsValid() {
		return -1, false
	}
	k := keyOf(netip.PrefixFrom(a, a.BitLen()))
	i, found := s.search(k)
	if found {
		return i, true
	}
	for i--; i >= 0; i = int(s.parent[i]) {
		if s.keys[i].contains(k) {
			return i, true
		}
	}
	return -1, false
}

// Within returns the index range [lo, hi) of the prefixes inside p (p itself
// included, when it is in the set).
func (s *Set[V]) Within(p netip.Prefix) (lo, hi int) {
	if !p.IsValid() {
		return 0, 0
	}
	k := keyOf(p.Masked())
	lo, _ = s.search(k)
	hi = lo
	for hi < len(s.keys) && k.contains(s.keys[hi]) {
		hi++
	}
	return lo, hi
}

// Holding reports, by index of s, whether each prefix of s contains some
// prefix of t (or is one): what Within asks of one prefix, answered for all of
// s in one walk along both sorted sets instead of a search for each.
func Holding[V, W any](s *Set[V], t *Set[W]) []bool {
	out := make([]bool, len(s.keys))
	j := 0
	for i, k := range s.keys {
		for j < len(t.keys) && t.keys[j].less(k) {
			j++ // the first of t at or after k, as search finds it
		}
		out[i] = j < len(t.keys) && k.contains(t.keys[j])
	}
	return out
}
