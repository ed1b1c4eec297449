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
//	}
const fwChain = "forward"

// ApplyFirewall replaces the table fw.Table with exactly the rules fw describes, in
// one nf_tables transaction.
func (l *Linux) ApplyFirewall(fw Firewall) error {
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
	ch := c.AddChain(&nftables.Chain{
		Name:     fwChain,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookForward,
		Priority: nftables.ChainPriorityMangle,
		Policy:   &policy,
	})
	for _, ifname := range fw.ClampMSS {
		if len(ifname) >= unix.IFNAMSIZ {
			return fmt.Errorf("firewall %s: interface name %q too long", fw.Table, ifname)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: clampMSS(ifname)})
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

// Firewall reads back a table written by ApplyFirewall. Rules it did not write are
// reported as an error, so that a caller never mistakes a changed table for its own.
func (l *Linux) Firewall(table string) (Firewall, error) {
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

// DeleteFirewall removes the table.
func (l *Linux) DeleteFirewall(table string) error {
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
