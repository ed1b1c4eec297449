package hostnet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The table ApplyFirewall writes, as `nft list table inet wgnet-wg0` shows it:
//
//	table inet wgnet-wg0 {
//		chain forward {
//			type filter hook forward priority mangle; policy accept;
//			oifname "wg0" tcp flags syn / syn,rst tcp option maxseg size set rt mtu
//		}
//		chain output {
//			type filter hook output priority filter; policy accept;
//			oifname "wg0" icmp type redirect drop
//			oifname "wg0" icmpv6 type nd-redirect drop
//		}
//	}
//
// The redirects a forwarding host sends are its own packets, so they pass the
// output hook, not forward. A Filter adds its own chains and sets (filter_linux.go).
const (
	fwChain     = "forward"
	outputChain = "output"
)

// applyNftFirewall replaces the table fw.Table with exactly the rules fw
// describes, in one nf_tables transaction.
func (l *Linux) applyNftFirewall(fw Firewall) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("firewall %s: %w", fw.Table, err)
	}
	t := &nftables.Table{Name: fw.Table, Family: nftables.TableFamilyINet}
	if _, err := c.ListTableOfFamily(fw.Table, nftables.TableFamilyINet); err == nil {
		c.DelTable(t)
	}
	c.AddTable(t)
	policy := nftables.ChainPolicyAccept
	chain := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: prio, Policy: &policy})
	}
	for _, ifname := range append(slices.Clone(fw.ClampMSS), fw.DropRedirects...) {
		if len(ifname) >= unix.IFNAMSIZ {
			return fmt.Errorf("firewall %s: interface name %q too long", fw.Table, ifname)
		}
	}
	ch := chain(fwChain, nftables.ChainHookForward, nftables.ChainPriorityMangle)
	for _, ifname := range fw.ClampMSS {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: clampMSS(ifname)})
	}
	if len(fw.DropRedirects) > 0 {
		out := chain(outputChain, nftables.ChainHookOutput, nftables.ChainPriorityFilter)
		for _, ifname := range fw.DropRedirects {
			c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: dropRedirect(ifname, false)})
			c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: dropRedirect(ifname, true)})
		}
	}
	if fw.Filter != nil {
		if err := addFilter(c, t, fw.Filter); err != nil {
			return fmt.Errorf("firewall %s: %w", fw.Table, err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall %s: %w", fw.Table, err)
	}
	return nil
}

func ifnameData(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// clampMSS is `oifname NAME tcp flags syn / syn,rst tcp option maxseg size set rt mtu`.
func clampMSS(ifname string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(ifname)},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x06}, Xor: []byte{0x00}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x02}},
		&expr.Rt{Register: 1, Key: expr.RtTCPMSS},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 2, Size: 2},
		&expr.Exthdr{SourceRegister: 1, Type: 2, Offset: 2, Len: 2, Op: expr.ExthdrOpTcpopt},
	}
}

// dropRedirect is `oifname NAME icmp type redirect drop`, or with v6
// `oifname NAME icmpv6 type nd-redirect drop`.
func dropRedirect(ifname string, v6 bool) []expr.Any {
	family, proto, typ := byte(unix.NFPROTO_IPV4), byte(unix.IPPROTO_ICMP), byte(5) // ICMP_REDIRECT
	if v6 {
		family, proto, typ = unix.NFPROTO_IPV6, unix.IPPROTO_ICMPV6, 137 // ND_REDIRECT
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(ifname)},
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{family}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// matchDropRedirect recognises a rule written by dropRedirect and returns its
// interface and family.
func matchDropRedirect(es []expr.Any) (string, bool, bool) {
	if len(es) < 2 {
		return "", false, false
	}
	cmp, ok := es[1].(*expr.Cmp)
	if !ok {
		return "", false, false
	}
	name := string(bytes.TrimRight(cmp.Data, "\x00"))
	str := func(es []expr.Any) []string {
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%#v", e))
		}
		return out
	}
	for _, v6 := range []bool{false, true} {
		if slices.Equal(str(es), str(dropRedirect(name, v6))) {
			return name, v6, true
		}
	}
	return "", false, false
}

// readNftFirewall reads back a table written by applyNftFirewall. Rules it did not
// write are reported as an error, so that a caller never mistakes a changed table
// for its own.
func (l *Linux) readNftFirewall(table string) (Firewall, error) {
	c, err := nftables.New()
	if err != nil {
		return Firewall{}, fmt.Errorf("firewall %s: %w", table, err)
	}
	t, err := c.ListTableOfFamily(table, nftables.TableFamilyINet)
	if err != nil {
		// EPROTONOSUPPORT: nf_tables is not loaded (and can't be on demand), so
		// there is no table of ours either.
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPROTONOSUPPORT) {
			return Firewall{}, fmt.Errorf("firewall %s: %w", table, ErrNotFound)
		}
		return Firewall{}, fmt.Errorf("firewall %s: %w", table, err)
	}
	fw := Firewall{Table: table}
	if fw.Filter, err = readFilter(c, t); err != nil {
		return Firewall{}, fmt.Errorf("firewall %s: %w", table, err)
	}
	rules, err := c.GetRules(t, &nftables.Chain{Name: fwChain, Table: t})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) {
			return fw, nil
		}
		return Firewall{}, fmt.Errorf("firewall %s: %w", table, err)
	}
	for _, r := range rules {
		name, ok := matchClampMSS(r.Exprs)
		if !ok {
			return Firewall{}, fmt.Errorf("firewall %s: chain %s holds a rule wgnet did not write", table, fwChain)
		}
		fw.ClampMSS = append(fw.ClampMSS, name)
	}
	rules, err = c.GetRules(t, &nftables.Chain{Name: outputChain, Table: t})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) {
			return fw, nil
		}
		return Firewall{}, fmt.Errorf("firewall %s: %w", table, err)
	}
	// Each interface has a v4 rule then a v6 rule.
	for i, r := range rules {
		name, v6, ok := matchDropRedirect(r.Exprs)
		if !ok || v6 != (i%2 == 1) || v6 && name != fw.DropRedirects[len(fw.DropRedirects)-1] {
			return Firewall{}, fmt.Errorf("firewall %s: chain %s holds a rule wgnet did not write", table, outputChain)
		}
		if !v6 {
			fw.DropRedirects = append(fw.DropRedirects, name)
		}
	}
	if len(rules)%2 != 0 {
		return Firewall{}, fmt.Errorf("firewall %s: chain %s holds a rule wgnet did not write", table, outputChain)
	}
	return fw, nil
}

// matchClampMSS recognises a rule written by clampMSS and returns its interface.
// google/nftables v0.3.0 does not decode the rt and byteorder expressions when it
// reads rules back, so those two are left out of the comparison.
func matchClampMSS(es []expr.Any) (string, bool) {
	decoded := func(es []expr.Any) []string {
		var out []string
		for _, e := range es {
			switch e.(type) {
			case *expr.Rt, *expr.Byteorder:
			default:
				out = append(out, fmt.Sprintf("%#v", e))
			}
		}
		return out
	}
	if len(es) < 2 {
		return "", false
	}
	cmp, ok := es[1].(*expr.Cmp)
	if !ok {
		return "", false
	}
	name := string(bytes.TrimRight(cmp.Data, "\x00"))
	return name, slices.Equal(decoded(es), decoded(clampMSS(name)))
}

// deleteNftFirewall removes the nftables table.
func (l *Linux) deleteNftFirewall(table string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("delete firewall %s: %w", table, err)
	}
	if _, err := c.ListTableOfFamily(table, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete firewall %s: %w", table, ErrNotFound)
		}
		return fmt.Errorf("delete firewall %s: %w", table, err)
	}
	c.DelTable(&nftables.Table{Name: table, Family: nftables.TableFamilyINet})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete firewall %s: %w", table, err)
	}
	return nil
}
