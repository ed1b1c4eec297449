package hostnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func ruleFamily(family int) (int, error) {
	switch family {
	case 4:
		return netlink.FAMILY_V4, nil
	case 6:
		return netlink.FAMILY_V6, nil
	}
	return 0, fmt.Errorf("rule family %d: want 4 or 6", family)
}

// Rules lists the family's policy routing rules in priority order.
func (l *Linux) Rules(family int) ([]Rule, error) {
	nf, err := ruleFamily(family)
	if err != nil {
		return nil, err
	}
	nrs, err := netlink.RuleList(nf)
	if err != nil {
		return nil, fmt.Errorf("ip -%d rule: %w", family, err)
	}
	out := make([]Rule, 0, len(nrs))
	for _, nr := range nrs {
		out = append(out, ruleOf(family, nr))
	}
	slices.SortStableFunc(out, func(a, b Rule) int { return a.Priority - b.Priority })
	return out, nil
}

// ruleOf describes a kernel rule; what Rule cannot say makes it Other.
func ruleOf(family int, nr netlink.Rule) Rule {
	r := Rule{Family: family, Priority: nr.Priority, Table: nr.Table, Mark: nr.Mark, Invert: nr.Invert,
		SuppressDefault: nr.SuppressPrefixlen == 0}
	r.Other = nr.Src != nil || nr.Dst != nil || nr.IifName != "" || nr.OifName != "" || nr.Tos != 0 ||
		nr.TunID != 0 || nr.Goto > 0 || nr.Flow > 0 || nr.Dport != nil || nr.Sport != nil || nr.IPProto != 0 ||
		nr.UIDRange != nil || nr.SuppressIfgroup >= 0 || nr.SuppressPrefixlen > 0 ||
		(nr.Mask != nil && *nr.Mask != 0xffffffff) || (nr.Type != 0 && nr.Type != unix.RTN_UNICAST)
	return r
}

func (l *Linux) netlinkRule(r Rule) (*netlink.Rule, error) {
	nf, err := ruleFamily(r.Family)
	if err != nil {
		return nil, err
	}
	if r.Other {
		return nil, fmt.Errorf("rule %s: has selectors wgnet does not write", r)
	}
	nr := netlink.NewRule()
	nr.Family, nr.Priority, nr.Table, nr.Invert = nf, r.Priority, r.Table, r.Invert
	if r.Mark != 0 {
		nr.Mark = r.Mark // the kernel's mask is all ones, as with `ip rule add fwmark M`
	}
	if r.SuppressDefault {
		nr.SuppressPrefixlen = 0
	}
	return nr, nil
}

// AddRule adds r, like `ip -F rule add ... pref P`.
func (l *Linux) AddRule(r Rule) error {
	nr, err := l.netlinkRule(r)
	if err != nil {
		return err
	}
	if err := netlink.RuleAdd(nr); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("ip rule add %s: %w", r, ErrExists)
		}
		return fmt.Errorf("ip rule add %s: %w", r, err)
	}
	return nil
}

// DelRule removes the rule equal to r. The kernel deletes the first rule that
// matches the attributes given, so the rule is looked up first: a rule that
// differs (a suppress_prefixlength of another tunnel at another priority) is
// never taken for r.
func (l *Linux) DelRule(r Rule) error {
	rs, err := l.Rules(r.Family)
	if err != nil {
		return err
	}
	if !slices.Contains(rs, r) {
		return fmt.Errorf("ip rule del %s: %w", r, ErrNotFound)
	}
	nr, err := l.netlinkRule(r)
	if err != nil {
		return err
	}
	if err := netlink.RuleDel(nr); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("ip rule del %s: %w", r, ErrNotFound)
		}
		return fmt.Errorf("ip rule del %s: %w", r, err)
	}
	return nil
}

// TableInUse reports whether the table holds a route of either family.
func (l *Linux) TableInUse(table int) (bool, error) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return false, fmt.Errorf("routes of table %d: %w", table, err)
	}
	return len(rs) > 0, nil
}

// The chains of a tunnel table, as wg-quick names them.
const (
	chainPreraw     = "preraw"
	chainPremangle  = "premangle"
	chainPostmangle = "postmangle"
)

func tunnelFamilies(tf TunnelFirewall) []nftables.TableFamily {
	var out []nftables.TableFamily
	if tf.V4 {
		out = append(out, nftables.TableFamilyIPv4)
	}
	if tf.V6 {
		out = append(out, nftables.TableFamilyIPv6)
	}
	return out
}

var bothFamilies = []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6}

// applyNftTunnel replaces the tunnel tables in one transaction; tf's
// addresses are complete (withLinkLocal).
func (l *Linux) applyNftTunnel(tf TunnelFirewall) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("tunnel firewall %s: %w", tf.Table, err)
	}
	for _, fam := range bothFamilies {
		if _, err := c.ListTableOfFamily(tf.Table, fam); err == nil {
			c.DelTable(&nftables.Table{Name: tf.Table, Family: fam})
		}
	}
	policy := nftables.ChainPolicyAccept
	for _, fam := range tunnelFamilies(tf) {
		t := c.AddTable(&nftables.Table{Name: tf.Table, Family: fam})
		chain := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
			return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: prio, Policy: &policy})
		}
		raw := chain(chainPreraw, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw)
		pre := chain(chainPremangle, nftables.ChainHookPrerouting, nftables.ChainPriorityMangle)
		post := chain(chainPostmangle, nftables.ChainHookPostrouting, nftables.ChainPriorityMangle)
		for _, a := range tf.Addrs {
			if a.Is6() == (fam == nftables.TableFamilyIPv6) {
				c.AddRule(&nftables.Rule{Table: t, Chain: raw, Exprs: dropToAddr(tf.Iface, a)})
			}
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: saveMark(tf.Mark)})
		c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: restoreMark()})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("tunnel firewall %s: %w", tf.Table, err)
	}
	return nil
}

// linkLocal returns the link's IPv6 link-local addresses.
func (l *Linux) linkLocal(name string) ([]netip.Addr, error) {
	lk, err := l.link(name)
	if err != nil {
		return nil, err
	}
	as, err := netlink.AddrList(lk, netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", name, err)
	}
	var out []netip.Addr
	for _, a := range as {
		if p, ok := fromIPNet(a.IPNet); ok && p.Addr().IsLinkLocalUnicast() {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}

// dropToAddr is `iifname != IFACE ip daddr A fib saddr type != local drop`
// (ip6 daddr for an IPv6 address).
func dropToAddr(iface string, a netip.Addr) []expr.Any {
	off := uint32(16) // daddr in the IPv4 header
	if a.Is6() {
		off = 24
	}
	local := make([]byte, 4)
	binary.NativeEndian.PutUint32(local, unix.RTN_LOCAL)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifnameData(iface)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(a.BitLen() / 8)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
		&expr.Fib{Register: 1, FlagSADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: local},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// saveMark is `meta l4proto udp mark M ct mark set mark`.
func saveMark(mark uint32) []expr.Any {
	m := make([]byte, 4)
	binary.NativeEndian.PutUint32(m, mark)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: m},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	}
}

// restoreMark is `meta l4proto udp meta mark set ct mark`.
func restoreMark() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
	}
}

// exprsText is a rule's expressions, for comparing a rule read back with one
// written. google/nftables v0.3.0 does not decode ct's source register when it
// reads a rule back (a ct set reads as a ct load to register 0), so a ct
// expression is compared by its key alone; its place in the rule tells load
// from set.
func exprsText(es []expr.Any) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		if ct, ok := e.(*expr.Ct); ok {
			out = append(out, fmt.Sprintf("ct key %d dir %d", ct.Key, ct.Direction))
			continue
		}
		out = append(out, fmt.Sprintf("%#v", e))
	}
	return out
}

func notFoundNft(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPROTONOSUPPORT)
}

// readNftTunnel reads back the tunnel tables; rules wgnet did not write are an
// error, so that a changed table is never mistaken for wgnet's.
func (l *Linux) readNftTunnel(table string) (TunnelFirewall, error) {
	c, err := nftables.New()
	if err != nil {
		return TunnelFirewall{}, fmt.Errorf("tunnel firewall %s: %w", table, err)
	}
	tf := TunnelFirewall{Table: table, Backend: TunnelNftables}
	foreign := func(fam nftables.TableFamily, chain string) error {
		return fmt.Errorf("tunnel firewall %s: family %d chain %s holds a rule wgnet did not write", table, fam, chain)
	}
	for _, fam := range bothFamilies {
		t, err := c.ListTableOfFamily(table, fam)
		if notFoundNft(err) {
			continue
		} else if err != nil {
			return TunnelFirewall{}, fmt.Errorf("tunnel firewall %s: %w", table, err)
		}
		if fam == nftables.TableFamilyIPv4 {
			tf.V4 = true
		} else {
			tf.V6 = true
		}
		rules := map[string][]*nftables.Rule{}
		for _, ch := range []string{chainPreraw, chainPremangle, chainPostmangle} {
			rs, err := c.GetRules(t, &nftables.Chain{Name: ch, Table: t})
			if err != nil && !notFoundNft(err) {
				return TunnelFirewall{}, fmt.Errorf("tunnel firewall %s: %w", table, err)
			}
			rules[ch] = rs
		}
		for _, r := range rules[chainPreraw] {
			iface, a, ok := matchDropToAddr(r.Exprs)
			if !ok || (tf.Iface != "" && iface != tf.Iface) {
				return TunnelFirewall{}, foreign(fam, chainPreraw)
			}
			tf.Iface = iface
			tf.Addrs = append(tf.Addrs, a)
		}
		if len(rules[chainPostmangle]) != 1 || len(rules[chainPremangle]) != 1 ||
			!slices.Equal(exprsText(rules[chainPremangle][0].Exprs), exprsText(restoreMark())) {
			return TunnelFirewall{}, foreign(fam, chainPremangle+" or "+chainPostmangle)
		}
		es := rules[chainPostmangle][0].Exprs
		mark, ok := uint32(0), len(es) > 3
		if cmp, isCmp := es[min(3, len(es)-1)].(*expr.Cmp); ok && isCmp && len(cmp.Data) == 4 {
			mark = binary.NativeEndian.Uint32(cmp.Data)
		}
		if !slices.Equal(exprsText(es), exprsText(saveMark(mark))) || (tf.Mark != 0 && mark != tf.Mark) {
			return TunnelFirewall{}, foreign(fam, chainPostmangle)
		}
		tf.Mark = mark
	}
	if !tf.V4 && !tf.V6 {
		return TunnelFirewall{}, fmt.Errorf("tunnel firewall %s: %w", table, ErrNotFound)
	}
	return tf, nil
}

// matchDropToAddr recognises a rule written by dropToAddr.
func matchDropToAddr(es []expr.Any) (string, netip.Addr, bool) {
	if len(es) < 4 {
		return "", netip.Addr{}, false
	}
	ifc, ok1 := es[1].(*expr.Cmp)
	ac, ok2 := es[3].(*expr.Cmp)
	if !ok1 || !ok2 {
		return "", netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ac.Data)
	if !ok {
		return "", netip.Addr{}, false
	}
	iface := string(bytes.TrimRight(ifc.Data, "\x00"))
	return iface, a, slices.Equal(exprsText(es), exprsText(dropToAddr(iface, a)))
}

// deleteNftTunnel removes the tunnel tables of both families.
func (l *Linux) deleteNftTunnel(table string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("delete tunnel firewall %s: %w", table, err)
	}
	found := false
	for _, fam := range bothFamilies {
		if _, err := c.ListTableOfFamily(table, fam); err == nil {
			c.DelTable(&nftables.Table{Name: table, Family: fam})
			found = true
		} else if !notFoundNft(err) {
			return fmt.Errorf("delete tunnel firewall %s: %w", table, err)
		}
	}
	if !found {
		return fmt.Errorf("delete tunnel firewall %s: %w", table, ErrNotFound)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete tunnel firewall %s: %w", table, err)
	}
	return nil
}
