package hostnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The filter's part of wgnet's table, as `nft list table inet wgnet-wg0` shows
// it (a rule's sets are named after its index):
//
//	set r0_saddr { type ipv4_addr; flags interval; elements = { 10.10.1.0/24 } }
//	set r0_daddr { type ipv4_addr; flags interval; elements = { 10.10.2.0/24 } }
//	set r0_dport { type inet_service; flags interval; elements = { 5432 } }
//	chain policy {
//		ct state established,related accept
//		ip saddr @r0_saddr ip daddr @r0_daddr tcp dport @r0_dport accept comment "..."
//		drop comment "default: deny"
//	}
//	chain policy_input {
//		type filter hook input priority filter; policy accept;
//		iifname "wg0" jump policy
//	}
//	chain policy_forward {
//		type filter hook forward priority filter; policy accept;
//		iifname "wg0" jump policy
//		oifname "wg0" ct state new tcp flags & (syn | rst) == 0x0 drop
//	}
//	chain policy_output {
//		type filter hook output priority filter; policy accept;
//		oifname "wg0" ct state new tcp flags & (syn | rst) == 0x0 drop
//	}
//
// Only packets entering through the interface jump to the policy chain; the
// host's other traffic never meets it. The second rule holds back a TCP
// connection that conntrack picks up mid-stream on its way into the tunnel (its
// entry deleted because the policy now denies it, or made before connection
// tracking ran): were it let through, the peer's packets would count as replies
// and pass. The peer's next packet is judged by the rules instead, and a
// connection they allow goes on.
const (
	policyChain        = "policy"
	policyInputChain   = "policy_input"
	policyForwardChain = "policy_forward"
	policyOutputChain  = "policy_output"
)

var policyHooks = []struct {
	chain string
	hook  *nftables.ChainHook
}{{policyInputChain, nftables.ChainHookInput}, {policyForwardChain, nftables.ChainHookForward}, {policyOutputChain, nftables.ChainHookOutput}}

// baseRules are the rules of a base chain of the filter for interface ifname.
func baseRules(chain, ifname string) [][]expr.Any {
	switch chain {
	case policyInputChain:
		return [][]expr.Any{jumpFrom(ifname)}
	case policyForwardChain:
		return [][]expr.Any{jumpFrom(ifname), midStream(ifname)}
	}
	return [][]expr.Any{midStream(ifname)}
}

// midStream is `oifname NAME ct state new tcp flags & (syn | rst) == 0 drop`.
func midStream(ifname string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(ifname)},
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x06}, Xor: []byte{0x00}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x00}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// addFilter adds f's sets, chains and rules to table t in c's batch.
func addFilter(c *nftables.Conn, t *nftables.Table, f *Filter) error {
	if err := f.Validate(); err != nil {
		return err
	}
	pc := c.AddChain(&nftables.Chain{Name: policyChain, Table: t})
	c.AddRule(&nftables.Rule{Table: t, Chain: pc, Exprs: ctEstablished()})
	for i, r := range f.Rules {
		ids := map[string]uint32{}
		for _, s := range ruleSets(i, r) {
			set := &nftables.Set{Table: t, Name: s.name, KeyType: s.keyType, Interval: true}
			if err := c.AddSet(set, s.elems); err != nil {
				return fmt.Errorf("filter rule %d: set %s: %w", i, s.name, err)
			}
			ids[s.name] = set.ID
		}
		es := ruleExprs(i, r)
		for _, e := range es {
			if l, ok := e.(*expr.Lookup); ok {
				l.SetID = ids[l.SetName]
			}
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: pc, Exprs: es, UserData: comment(r.Comment)})
	}
	if !f.DefaultAccept {
		c.AddRule(&nftables.Rule{Table: t, Chain: pc, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, UserData: comment(defaultDenyComment)})
	}
	policy := nftables.ChainPolicyAccept
	for _, h := range policyHooks {
		ch := c.AddChain(&nftables.Chain{Name: h.chain, Table: t, Type: nftables.ChainTypeFilter, Hooknum: h.hook, Priority: nftables.ChainPriorityFilter, Policy: &policy})
		for _, es := range baseRules(h.chain, f.Iface) {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: es})
		}
	}
	return nil
}

func comment(s string) []byte {
	if s == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, s)
}

// ctEstablished is `ct state established,related accept`.
func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// jumpFrom is `iifname NAME jump policy`.
func jumpFrom(ifname string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(ifname)},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: policyChain},
	}
}

// filterSet is one named set of a rule.
type filterSet struct {
	name    string
	keyType nftables.SetDatatype
	elems   []nftables.SetElement
}

func setName(rule int, what string) string { return fmt.Sprintf("r%d_%s", rule, what) }

// ruleSets returns the sets rule i of r needs: its sources, destinations and
// ports, as intervals (an end element is the first key past the interval, left
// out when the interval runs to the top).
func ruleSets(i int, r FilterRule) []filterSet {
	addrType := nftables.TypeIPAddr
	if r.V6 {
		addrType = nftables.TypeIP6Addr
	}
	var out []filterSet
	for _, x := range []struct {
		what string
		ps   []netip.Prefix
	}{{"saddr", r.Src}, {"daddr", r.Dst}} {
		if len(x.ps) == 0 {
			continue
		}
		s := filterSet{name: setName(i, x.what), keyType: addrType}
		for _, p := range x.ps {
			s.elems = append(s.elems, interval(p.Addr().AsSlice(), LastAddr(p).AsSlice())...)
		}
		out = append(out, s)
	}
	if len(r.Ports) > 0 {
		s := filterSet{name: setName(i, "dport"), keyType: nftables.TypeInetService}
		for _, p := range r.Ports {
			s.elems = append(s.elems, interval(binary.BigEndian.AppendUint16(nil, p.From), binary.BigEndian.AppendUint16(nil, p.To))...)
		}
		out = append(out, s)
	}
	return out
}

// interval returns the set elements of the big-endian range [first, last].
func interval(first, last []byte) []nftables.SetElement {
	out := []nftables.SetElement{{Key: first}}
	if end, ok := increment(last); ok {
		out = append(out, nftables.SetElement{Key: end, IntervalEnd: true})
	}
	return out
}

// increment returns b+1 (big-endian), false when it overflows.
func increment(b []byte) ([]byte, bool) {
	out := slices.Clone(b)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out, true
		}
	}
	return nil, false
}

// ruleExprs is rule i of r: `meta nfproto F [F saddr @ri_saddr] [F daddr
// @ri_daddr] [meta l4proto P [th dport @ri_dport]] accept|drop`.
func ruleExprs(i int, r FilterRule) []expr.Any {
	nfproto, src, dst, alen := byte(unix.NFPROTO_IPV4), uint32(12), uint32(16), uint32(4)
	if r.V6 {
		nfproto, src, dst, alen = unix.NFPROTO_IPV6, 8, 24, 16
	}
	es := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
	}
	lookup := func(base expr.PayloadBase, off, n uint32, set string) {
		es = append(es,
			&expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n},
			&expr.Lookup{SourceRegister: 1, SetName: set})
	}
	if len(r.Src) > 0 {
		lookup(expr.PayloadBaseNetworkHeader, src, alen, setName(i, "saddr"))
	}
	if len(r.Dst) > 0 {
		lookup(expr.PayloadBaseNetworkHeader, dst, alen, setName(i, "daddr"))
	}
	if r.Proto != "" {
		es = append(es,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumber(r.Proto, r.V6)}})
	}
	if len(r.Ports) > 0 {
		lookup(expr.PayloadBaseTransportHeader, 2, 2, setName(i, "dport"))
	}
	kind := expr.VerdictDrop
	if r.Accept {
		kind = expr.VerdictAccept
	}
	return append(es, &expr.Verdict{Kind: kind})
}

func protoNumber(proto string, v6 bool) byte {
	switch proto {
	case "tcp":
		return unix.IPPROTO_TCP
	case "udp":
		return unix.IPPROTO_UDP
	case "icmp":
		if v6 {
			return unix.IPPROTO_ICMPV6
		}
		return unix.IPPROTO_ICMP
	}
	return 0
}

// errForeign: a table's chain holds what addFilter did not write.
var errForeign = errors.New("holds a rule wgnet did not write")

// readFilter reads back the filter addFilter wrote into t; nil when there is none.
func readFilter(c *nftables.Conn, t *nftables.Table) (*Filter, error) {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, err
	}
	byName := map[string]*nftables.Chain{}
	for _, ch := range chains {
		if ch.Table.Name == t.Name {
			byName[ch.Name] = ch
		}
	}
	if byName[policyChain] == nil && byName[policyInputChain] == nil && byName[policyForwardChain] == nil && byName[policyOutputChain] == nil {
		return nil, nil
	}
	f := &Filter{}
	for _, h := range policyHooks {
		ch := byName[h.chain]
		if ch == nil || ch.Hooknum == nil || *ch.Hooknum != *h.hook || ch.Priority == nil || *ch.Priority != *nftables.ChainPriorityFilter ||
			ch.Policy == nil || *ch.Policy != nftables.ChainPolicyAccept || ch.Type != nftables.ChainTypeFilter {
			return nil, fmt.Errorf("chain %s: missing or not as wgnet makes it", h.chain)
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return nil, err
		}
		name := ""
		if len(rules) > 0 && len(rules[0].Exprs) > 1 {
			if cmp, ok := rules[0].Exprs[1].(*expr.Cmp); ok {
				name = string(bytes.TrimRight(cmp.Data, "\x00"))
			}
		}
		want := baseRules(h.chain, name)
		if len(rules) != len(want) || (f.Iface != "" && f.Iface != name) {
			return nil, fmt.Errorf("chain %s %w", h.chain, errForeign)
		}
		for i, r := range rules {
			if !sameExprs(r.Exprs, want[i]) {
				return nil, fmt.Errorf("chain %s %w", h.chain, errForeign)
			}
		}
		f.Iface = name
	}
	if byName[policyChain] == nil {
		return nil, fmt.Errorf("chain %s: missing", policyChain)
	}
	rules, err := c.GetRules(t, byName[policyChain])
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 || !sameExprs(rules[0].Exprs, ctEstablished()) {
		return nil, fmt.Errorf("chain %s %w", policyChain, errForeign)
	}
	rules = rules[1:]
	f.DefaultAccept = true
	if n := len(rules); n > 0 && sameExprs(rules[n-1].Exprs, []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}) {
		f.DefaultAccept, rules = false, rules[:n-1]
	}
	for i, r := range rules {
		fr, err := readRule(c, t, i, r)
		if err != nil {
			return nil, fmt.Errorf("chain %s rule %d: %w", policyChain, i, err)
		}
		f.Rules = append(f.Rules, fr)
	}
	return f, nil
}

// sameExprs compares expressions as read back with those written; a lookup's
// set ID is the kernel's business.
func sameExprs(got, want []expr.Any) bool {
	str := func(es []expr.Any) []string {
		out := make([]string, len(es))
		for i, e := range es {
			if l, ok := e.(*expr.Lookup); ok {
				cp := *l
				cp.SetID = 0
				e = &cp
			}
			out[i] = fmt.Sprintf("%#v", e)
		}
		return out
	}
	return slices.Equal(str(got), str(want))
}

// readRule decodes rule i of the policy chain: which of its sets exist says
// what it matches; the expressions must then be exactly ruleExprs' and the
// sets hold the rule's prefixes and ports.
func readRule(c *nftables.Conn, t *nftables.Table, i int, rule *nftables.Rule) (FilterRule, error) {
	es := rule.Exprs
	var r FilterRule
	if len(es) < 3 {
		return r, errForeign
	}
	if cmp, ok := es[1].(*expr.Cmp); ok && len(cmp.Data) == 1 {
		r.V6 = cmp.Data[0] == unix.NFPROTO_IPV6
	}
	for _, e := range es {
		switch e := e.(type) {
		case *expr.Cmp:
			if len(e.Data) == 1 && e != es[1] {
				r.Proto = map[byte]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp", unix.IPPROTO_ICMP: "icmp", unix.IPPROTO_ICMPV6: "icmp"}[e.Data[0]]
			}
		case *expr.Verdict:
			r.Accept = e.Kind == expr.VerdictAccept
		}
	}
	var err error
	if r.Src, err = readPrefixes(c, t, setName(i, "saddr"), r.V6); err != nil {
		return r, err
	}
	if r.Dst, err = readPrefixes(c, t, setName(i, "daddr"), r.V6); err != nil {
		return r, err
	}
	if r.Ports, err = readPorts(c, t, setName(i, "dport")); err != nil {
		return r, err
	}
	if s, ok := userdata.GetString(rule.UserData, userdata.TypeComment); ok {
		r.Comment = s
	}
	if !sameExprs(es, ruleExprs(i, r)) {
		return r, errForeign
	}
	return r, nil
}

// readSet returns the intervals [first, last] of a named interval set of keys
// n bytes long; nil when there is no such set.
func readSet(c *nftables.Conn, t *nftables.Table, name string, n uint32) ([][2][]byte, error) {
	s, err := c.GetSetByName(t, name)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("set %s: %w", name, err)
	}
	if !s.Interval || s.KeyType.Bytes != n {
		return nil, fmt.Errorf("set %s: not as wgnet makes it", name)
	}
	elems, err := c.GetSetElements(s)
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", name, err)
	}
	// Ascending, an end before a start of the same key (adjacent intervals).
	slices.SortFunc(elems, func(a, b nftables.SetElement) int {
		if c := bytes.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return map[bool]int{true: -1, false: 1}[a.IntervalEnd] - map[bool]int{true: -1, false: 1}[b.IntervalEnd]
	})
	var out [][2][]byte
	var start []byte
	for _, e := range elems {
		switch {
		case !e.IntervalEnd && start != nil:
			return nil, fmt.Errorf("set %s: interval without an end", name)
		case !e.IntervalEnd:
			start = e.Key
		case start != nil: // an end with no start is the kernel's leading marker
			last := slices.Clone(e.Key)
			for i := len(last) - 1; i >= 0; i-- {
				last[i]--
				if last[i] != 0xff {
					break
				}
			}
			out = append(out, [2][]byte{start, last})
			start = nil
		}
	}
	if start != nil {
		out = append(out, [2][]byte{start, bytes.Repeat([]byte{0xff}, len(start))})
	}
	return out, nil
}

func readPrefixes(c *nftables.Conn, t *nftables.Table, name string, v6 bool) ([]netip.Prefix, error) {
	n := uint32(4)
	if v6 {
		n = 16
	}
	ivs, err := readSet(c, t, name, n)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, iv := range ivs {
		first, _ := netip.AddrFromSlice(iv[0])
		last, _ := netip.AddrFromSlice(iv[1])
		found := false
		for bits := 0; bits <= first.BitLen(); bits++ {
			if p := netip.PrefixFrom(first, bits); p.Masked().Addr() == first && LastAddr(p) == last {
				out, found = append(out, p), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("set %s: %s-%s is not a prefix", name, first, last)
		}
	}
	return out, nil
}

func readPorts(c *nftables.Conn, t *nftables.Table, name string) ([]PortRange, error) {
	ivs, err := readSet(c, t, name, 2)
	if err != nil {
		return nil, err
	}
	var out []PortRange
	for _, iv := range ivs {
		out = append(out, PortRange{From: binary.BigEndian.Uint16(iv[0]), To: binary.BigEndian.Uint16(iv[1])})
	}
	return out, nil
}

// ForgetFlows deletes the conntrack entries match selects, in both families.
func (l *Linux) ForgetFlows(match func(Flow) bool) (int, error) {
	total := 0
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, fam, flowMatcher(match))
		total += int(n)
		if err != nil {
			return total, fmt.Errorf("conntrack: %w", err)
		}
	}
	return total, nil
}

type flowMatcher func(Flow) bool

func (m flowMatcher) MatchConntrackFlow(f *netlink.ConntrackFlow) bool {
	addr := func(ip net.IP) netip.Addr {
		a, _ := netip.AddrFromSlice(ip)
		return a.Unmap()
	}
	return m(Flow{Proto: f.Forward.Protocol, Src: addr(f.Forward.SrcIP), Dst: addr(f.Forward.DstIP), SrcPort: f.Forward.SrcPort, DstPort: f.Forward.DstPort})
}
