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
type Set[V any] struct {
	prefixes []netip.Prefix
	keys     []key   // keys[i] is prefixes[i] as a key, for searching
	first    []int32 // values[first[i]:first[i+1]] are prefix i's
	values   []V
	parent   []int32 // the index of the longest other prefix containing i; -1 if none
}

// Builder collects prefixes and values for a Set. The zero value is ready to use.
type Builder[V any] struct {
	items []item[V]
}

type item[V any] struct {
	p netip.Prefix
	v V
}

// Add adds p, masked, with v. Adding the same prefix again adds another value
// to it. An invalid prefix is ignored.
func (b *Builder[V]) Add(p netip.Prefix, v V) {
	if !p.IsValid() {
		return
	}
	b.items = append(b.items, item[V]{p.Masked(), v})
}

// Grow makes room for n more prefixes.
func (b *Builder[V]) Grow(n int) { b.items = slices.Grow(b.items, n) }

// Set returns the set of everything added so far.
func (b *Builder[V]) Set() *Set[V] {
	// The items are ordered by key and then by the order they were added (what
	// a stable sort by prefix gives: values of one prefix in the order added),
	// sorting pointer-free keys: no write barriers, word compares. The builder
	// keeps its items in the order added, so it stays usable: a later Set sorts
	// old and new items alike, later ones after.
	items := b.items
	order := make([]sortKey, len(items))
	for i, it := range items {
		order[i] = sortKey{keyOf(it.p), int32(i)}
	}
	slices.SortFunc(order, func(x, y sortKey) int {
		return cmp.Or(x.k.compare(y.k), cmp.Compare(x.i, y.i))
	})
	s := &Set[V]{
		values:   make([]V, len(items)),
		prefixes: make([]netip.Prefix, 0, len(items)),
		keys:     make([]key, 0, len(items)),
		first:    make([]int32, 0, len(items)+1),
	}
	for i, o := range order {
		if i == 0 || o.k != order[i-1].k {
			s.prefixes = append(s.prefixes, items[o.i].p)
			s.keys = append(s.keys, o.k)
			s.first = append(s.first, int32(i))
		}
		s.values[i] = items[o.i].v
	}
	s.first = append(s.first, int32(len(items)))
	// Sorted so, the prefixes containing one are exactly those on the stack of
	// prefixes still open when it comes: each is a parent of the next.
	s.parent = make([]int32, len(s.prefixes))
	var stack []int32
	for i, p := range s.prefixes {
		for len(stack) > 0 && !Contains(s.prefixes[stack[len(stack)-1]], p) {
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
// netip.Addr holds (its zone): IPv6 or not, the 16 bytes of the address (IPv4
// mapped), the length.
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

// compare is Compare on keys.
func (x key) compare(y key) int {
	if x.v6 != y.v6 {
		if y.v6 {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(x.hi, y.hi), cmp.Compare(x.lo, y.lo), cmp.Compare(x.bits, y.bits))
}

// search returns where p (valid, masked) is or would be in s.prefixes.
func (s *Set[V]) search(p netip.Prefix) (int, bool) {
	return slices.BinarySearchFunc(s.keys, keyOf(p), key.compare)
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
func (s *Set[V]) Len() int { return len(s.prefixes) }

// Prefix returns the i-th prefix.
func (s *Set[V]) Prefix(i int) netip.Prefix { return s.prefixes[i] }

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
	return s.search(p.Masked())
}

// Lookup returns the index of the longest prefix that contains a: the route
// for a. ok is false when no prefix does.
func (s *Set[V]) Lookup(a netip.Addr) (i int, ok bool) {
	// The last prefix starting at or before a is the longest one containing a,
	// or inside it; the one containing a is then among its parents.
	if !a.IsValid() {
		return -1, false
	}
	i, found := s.search(netip.PrefixFrom(a, a.BitLen()))
	if !found {
		i--
	}
	for ; i >= 0; i = int(s.parent[i]) {
		if s.prefixes[i].Contains(a) {
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
	p = p.Masked()
	lo, _ = s.search(p)
	hi = lo
	for hi < len(s.prefixes) && Contains(p, s.prefixes[hi]) {
		hi++
	}
	return lo, hi
}
