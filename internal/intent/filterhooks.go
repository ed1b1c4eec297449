package intent

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// A host's Filter renders, in a wg-quick file, as PostUp lines that plain
// wg-quick runs to build the same filter with nft(8) in a table of its own,
// inet wgnet-policy-IFACE (wgnet's data plane uses its own table, wgnet-IFACE,
// and never runs these lines), and a PreDown line that deletes that table:
//
//	PostUp = nft 'add table inet wgnet-policy-%i'
//	PostUp = nft 'flush table inet wgnet-policy-%i'
//	PostUp = nft 'add chain inet wgnet-policy-%i segment'
//	PostUp = nft 'add rule inet wgnet-policy-%i segment ct state established,related accept'
//	PostUp = nft 'add rule inet wgnet-policy-%i segment ip saddr { 10.0.11.0/24 } ip daddr { 10.0.21.0/24 } tcp dport { 5432 } accept comment "rule 0"'
//	PostUp = nft 'add rule inet wgnet-policy-%i segment drop comment "default"'
//	PostUp = nft 'add chain inet wgnet-policy-%i input { type filter hook input priority filter; policy accept; }'
//	PostUp = nft 'add rule inet wgnet-policy-%i input iifname "%i" jump segment'
//	PostUp = nft 'add chain inet wgnet-policy-%i forward { type filter hook forward priority filter; policy accept; }'
//	PostUp = nft 'add rule inet wgnet-policy-%i forward iifname "%i" jump segment'
//	PreDown = nft 'delete table inet wgnet-policy-%i'
//
// A rule becomes one line per IP family it matches. Every word of these lines
// comes from typed data (prefixes, ports, a protocol name, a rule number),
// never from text a person wrote; a rule's Origin goes into a comment line of
// the file ("# filter rule 0: ..."), which wg-quick never runs. FromConfig reads
// exactly these lines back into the Filter, all or nothing.

// FilterTable is the nft table (family inet) a wg-quick file's filter hooks
// build, %i standing for the interface.
const FilterTable = "wgnet-policy-%i"

const (
	nftPrefix      = "nft '"
	filterAdd      = "add rule inet " + FilterTable + " "
	filterOrigin   = "filter rule "
	filterDefault  = `drop comment "default"`
	filterPreDown  = "nft 'delete table inet " + FilterTable + "'"
	filterChainDef = "{ type filter hook %s priority filter; policy accept; }"
)

// filterHead and filterTail are the fixed lines around the rules.
var (
	filterHead = []string{
		"add table inet " + FilterTable,
		"flush table inet " + FilterTable,
		"add chain inet " + FilterTable + " segment",
		filterAdd + "segment ct state established,related accept",
	}
	filterTail = []string{
		"add chain inet " + FilterTable + " input " + fmt.Sprintf(filterChainDef, "input"),
		filterAdd + `input iifname "%i" jump segment`,
		"add chain inet " + FilterTable + " forward " + fmt.Sprintf(filterChainDef, "forward"),
		filterAdd + `forward iifname "%i" jump segment`,
	}
)

func nftLine(cmd string) string { return nftPrefix + cmd + "'" }

// filterHooks renders f as PostUp and PreDown lines and comment lines naming
// each rule's origin; nothing when f is not Enabled.
func filterHooks(f *Filter) (postUp, preDown, comments []string) {
	if !f.Enabled {
		return nil, nil, nil
	}
	for _, c := range filterHead {
		postUp = append(postUp, nftLine(c))
	}
	i := 0 // rules that match nothing (no family on both sides) are left out
	for _, r := range f.Rules {
		ms := ruleMatches(&r)
		if len(ms) == 0 {
			continue
		}
		for _, m := range ms {
			verdict := "drop"
			if r.Accept {
				verdict = "accept"
			}
			line := filterAdd + "segment " + m
			if m != "" {
				line += " "
			}
			postUp = append(postUp, nftLine(line+verdict+` comment "rule `+strconv.Itoa(i)+`"`))
		}
		if r.Origin != "" {
			comments = append(comments, filterOrigin+strconv.Itoa(i)+": "+oneLine(r.Origin))
		}
		i++
	}
	if !f.DefaultAccept {
		postUp = append(postUp, nftLine(filterAdd+"segment "+filterDefault))
	}
	for _, c := range filterTail {
		postUp = append(postUp, nftLine(c))
	}
	return postUp, []string{filterPreDown}, comments
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// ruleMatches returns the match expressions of r, one per IP family it
// matches ("" for a rule that matches every packet).
func ruleMatches(r *FilterRule) []string {
	fams := []int{4, 6}
	if len(r.Src) == 0 && len(r.Dst) == 0 {
		fams = []int{0} // both families in one line
	}
	var out []string
	for _, fam := range fams {
		src, dst := ofFamily(r.Src, fam), ofFamily(r.Dst, fam)
		if fam != 0 && (len(r.Src) > 0 && len(src) == 0 || len(r.Dst) > 0 && len(dst) == 0) {
			continue // a side has no prefix of this family: nothing of it matches
		}
		var w []string
		ip := map[int]string{0: "", 4: "ip", 6: "ip6"}[fam]
		if len(src) > 0 {
			w = append(w, ip+" saddr "+prefixSet(src))
		}
		if len(dst) > 0 {
			w = append(w, ip+" daddr "+prefixSet(dst))
		}
		switch {
		case r.Proto == "icmp" && fam == 0:
			w = append(w, "meta l4proto { icmp, ipv6-icmp }")
		case r.Proto == "icmp" && fam == 4:
			w = append(w, "meta l4proto icmp")
		case r.Proto == "icmp":
			w = append(w, "meta l4proto ipv6-icmp")
		case (r.Proto == "tcp" || r.Proto == "udp") && len(r.Ports) > 0:
			w = append(w, r.Proto+" dport "+portSet(r.Ports))
		case r.Proto == "tcp" || r.Proto == "udp":
			w = append(w, "meta l4proto "+r.Proto)
		}
		out = append(out, strings.Join(w, " "))
	}
	return out
}

func ofFamily(ps []netip.Prefix, fam int) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if fam == 0 || p.Addr().Is4() == (fam == 4) {
			out = append(out, p)
		}
	}
	return out
}

func prefixSet(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

func portSet(rs []PortRange) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = strconv.Itoa(int(r.From))
		if r.To != r.From {
			s[i] += "-" + strconv.Itoa(int(r.To))
		}
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// IsFilterHook reports whether line is one of the filter lines wgnet renders
// (or looks like one: an nft command on wgnet's policy table).
func IsFilterHook(line string) bool {
	l := strings.TrimSpace(line)
	return strings.HasPrefix(l, nftPrefix) && strings.Contains(l, " inet "+FilterTable)
}

// readFilter rebuilds a Filter from the filter lines of a file's PostUp and
// PreDown and its comments. ok is false unless the lines are exactly what
// filterHooks renders for some filter: then the caller keeps them as user
// hooks. used are the comments it took the rules' origins from.
func readFilter(postUp, preDown, comments []string) (f Filter, used []string, ok bool) {
	if len(postUp) < len(filterHead)+len(filterTail) || !slices.Equal(preDown, []string{filterPreDown}) {
		return Filter{}, nil, false
	}
	for i, c := range filterHead {
		if postUp[i] != nftLine(c) {
			return Filter{}, nil, false
		}
	}
	tail := postUp[len(postUp)-len(filterTail):]
	for i, c := range filterTail {
		if tail[i] != nftLine(c) {
			return Filter{}, nil, false
		}
	}
	f = Filter{Enabled: true, DefaultAccept: true}
	body := postUp[len(filterHead) : len(postUp)-len(filterTail)]
	if n := len(body); n > 0 && body[n-1] == nftLine(filterAdd+"segment "+filterDefault) {
		f.DefaultAccept = false
		body = body[:n-1]
	}
	last := -1
	for _, line := range body {
		i, r, ok := parseFilterLine(line)
		switch {
		case !ok:
			return Filter{}, nil, false
		case i == last:
			prev := &f.Rules[len(f.Rules)-1]
			if !sameRuleBut(prev, &r) {
				return Filter{}, nil, false
			}
			prev.Src = append(prev.Src, r.Src...)
			prev.Dst = append(prev.Dst, r.Dst...)
		case i == len(f.Rules):
			f.Rules = append(f.Rules, r)
			last = i
		default:
			return Filter{}, nil, false
		}
	}
	for _, c := range comments {
		n, origin, ok := strings.Cut(strings.TrimPrefix(c, filterOrigin), ": ")
		i, err := strconv.Atoi(n)
		if !strings.HasPrefix(c, filterOrigin) || !ok || err != nil || i < 0 || i >= len(f.Rules) {
			continue
		}
		f.Rules[i].Origin = origin
		used = append(used, c)
	}
	for i := range f.Rules {
		f.Rules[i].Src = sortedPrefixes(f.Rules[i].Src)
		f.Rules[i].Dst = sortedPrefixes(f.Rules[i].Dst)
	}
	return f, used, true
}

// sameRuleBut reports whether two family lines of one rule agree on all but
// their addresses.
func sameRuleBut(a, b *FilterRule) bool {
	return a.Accept == b.Accept && a.Proto == b.Proto && slices.Equal(a.Ports, b.Ports)
}

func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(ps)
}

// parseFilterLine reads one rule line: its rule number and what it matches.
func parseFilterLine(line string) (int, FilterRule, bool) {
	var r FilterRule
	s, ok := strings.CutPrefix(line, nftPrefix+filterAdd+"segment ")
	if !ok || !strings.HasSuffix(s, `"'`) {
		return 0, r, false
	}
	s = strings.TrimSuffix(s, `"'`)
	s, num, ok := strings.Cut(s, ` comment "rule `)
	i, err := strconv.Atoi(num)
	if !ok || err != nil || i < 0 || strconv.Itoa(i) != num {
		return 0, r, false
	}
	w := strings.Fields(s)
	if len(w) == 0 {
		return 0, r, false
	}
	switch w[len(w)-1] {
	case "accept":
		r.Accept = true
	case "drop":
	default:
		return 0, r, false
	}
	w = w[:len(w)-1]
	for len(w) > 0 {
		var ok bool
		if w, ok = r.parseMatch(w); !ok {
			return 0, r, false
		}
	}
	if m := ruleMatches(&r); len(m) != 1 || m[0] != strings.Join(strings.Fields(s)[:len(strings.Fields(s))-1], " ") {
		return 0, r, false // not in the exact form filterHooks writes
	}
	return i, r, true
}

// parseMatch reads one match expression from the front of w.
func (r *FilterRule) parseMatch(w []string) ([]string, bool) {
	switch {
	case len(w) >= 2 && (w[0] == "ip" || w[0] == "ip6") && (w[1] == "saddr" || w[1] == "daddr"):
		items, rest, ok := readSet(w[2:])
		if !ok {
			return nil, false
		}
		for _, it := range items {
			p, err := netip.ParsePrefix(it)
			if err != nil || p.Addr().Is4() != (w[0] == "ip") {
				return nil, false
			}
			if w[1] == "saddr" {
				r.Src = append(r.Src, p)
			} else {
				r.Dst = append(r.Dst, p)
			}
		}
		return rest, true
	case len(w) >= 2 && w[0] == "meta" && w[1] == "l4proto":
		if len(w) >= 3 && (w[2] == "tcp" || w[2] == "udp" || w[2] == "icmp" || w[2] == "ipv6-icmp") {
			r.Proto = strings.TrimPrefix(w[2], "ipv6-")
			return w[3:], true
		}
		items, rest, ok := readSet(w[2:])
		if !ok || !slices.Equal(items, []string{"icmp", "ipv6-icmp"}) {
			return nil, false
		}
		r.Proto = "icmp"
		return rest, true
	case len(w) >= 2 && (w[0] == "tcp" || w[0] == "udp") && w[1] == "dport":
		items, rest, ok := readSet(w[2:])
		if !ok {
			return nil, false
		}
		r.Proto = w[0]
		for _, it := range items {
			a, b, isRange := strings.Cut(it, "-")
			from, err1 := strconv.ParseUint(a, 10, 16)
			to, err2 := from, error(nil)
			if isRange {
				to, err2 = strconv.ParseUint(b, 10, 16)
			}
			if err1 != nil || err2 != nil || to < from {
				return nil, false
			}
			r.Ports = append(r.Ports, PortRange{uint16(from), uint16(to)})
		}
		return rest, true
	}
	return nil, false
}

// readSet reads `{ a, b, c }` from the front of w.
func readSet(w []string) (items, rest []string, ok bool) {
	if len(w) < 3 || w[0] != "{" {
		return nil, nil, false
	}
	for i := 1; i < len(w); i++ {
		if w[i] == "}" {
			return items, w[i+1:], len(items) > 0
		}
		it := strings.TrimSuffix(w[i], ",")
		if it == "" || strings.ContainsAny(it, ",{}") {
			return nil, nil, false
		}
		items = append(items, it)
	}
	return nil, nil, false
}
