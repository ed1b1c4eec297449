package hostnettest

import (
	"fmt"
	"slices"

	"github.com/wgnet/wgnet/internal/hostnet"
)

// tunnelParts are the fake's policy routing rules and tunnel tables.
type tunnelParts struct {
	rules   map[int][]hostnet.Rule // by family, in priority order
	tfws    map[string]hostnet.TunnelFirewall
	backend string // "" is nftables
}

// newTunnelParts holds the kernel's default rules: local, main and (IPv4) default.
func newTunnelParts() tunnelParts {
	return tunnelParts{
		rules: map[int][]hostnet.Rule{
			4: {{Family: 4, Priority: 0, Table: 255}, {Family: 4, Priority: 32766, Table: 254}, {Family: 4, Priority: 32767, Table: 253}},
			6: {{Family: 6, Priority: 0, Table: 255}, {Family: 6, Priority: 32766, Table: 254}},
		},
		tfws: map[string]hostnet.TunnelFirewall{},
	}
}

func (tp *tunnelParts) snapshot() ([]hostnet.Rule, map[string]hostnet.TunnelFirewall) {
	rs := slices.Concat(tp.rules[4], tp.rules[6])
	tfws := map[string]hostnet.TunnelFirewall{}
	for n, tf := range tp.tfws {
		tf.Addrs = slices.Clone(tf.Addrs)
		tfws[n] = tf
	}
	return rs, tfws
}

func checkFamily(family int) error {
	if family != 4 && family != 6 {
		return fmt.Errorf("rule family %d: want 4 or 6", family)
	}
	return nil
}

func (f *Fake) Rules(family int) ([]hostnet.Rule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := checkFamily(family); err != nil {
		return nil, err
	}
	return slices.Clone(f.tunnel.rules[family]), nil
}

func (f *Fake) AddRule(r hostnet.Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("AddRule", r); err != nil {
		return err
	}
	if err := checkFamily(r.Family); err != nil {
		return err
	}
	rs := f.tunnel.rules[r.Family]
	if slices.Contains(rs, r) {
		return fmt.Errorf("ip rule add %s: %w", r, hostnet.ErrExists)
	}
	// Like the kernel: after the rules of a lower or equal priority.
	i := slices.IndexFunc(rs, func(x hostnet.Rule) bool { return x.Priority > r.Priority })
	if i < 0 {
		i = len(rs)
	}
	f.tunnel.rules[r.Family] = slices.Insert(rs, i, r)
	return nil
}

func (f *Fake) DelRule(r hostnet.Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("DelRule", r); err != nil {
		return err
	}
	if err := checkFamily(r.Family); err != nil {
		return err
	}
	i := slices.Index(f.tunnel.rules[r.Family], r)
	if i < 0 {
		return fmt.Errorf("ip rule del %s: %w", r, hostnet.ErrNotFound)
	}
	f.tunnel.rules[r.Family] = slices.Delete(f.tunnel.rules[r.Family], i, i+1)
	return nil
}

func (f *Fake) TableInUse(table int) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.routes, func(r hostnet.Route) bool { return r.Table == normTable(table) }), nil
}

// SetTunnelBackend makes the fake's tunnel firewall backend b
// (hostnet.TunnelNftables, the default, or hostnet.TunnelIptables).
func (f *Fake) SetTunnelBackend(b string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tunnel.backend = b
}

// FirewallBackend implements hostnet.HostNet: the fake keeps wgnet's table
// as nftables would.
func (f *Fake) FirewallBackend() (string, error) { return hostnet.TunnelNftables, nil }

func (f *Fake) TunnelFirewallBackend() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tunnel.backend == "" {
		return hostnet.TunnelNftables, nil
	}
	return f.tunnel.backend, nil
}

func (f *Fake) ApplyTunnelFirewall(tf hostnet.TunnelFirewall) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("ApplyTunnelFirewall", tf.Table, tf.Mark, tf.Addrs); err != nil {
		return err
	}
	if tf.Backend != hostnet.TunnelNftables && tf.Backend != hostnet.TunnelIptables {
		tf.Backend = f.tunnel.backend
		if tf.Backend == "" {
			tf.Backend = hostnet.TunnelNftables
		}
	}
	// As read back from nftables: only the families' tables, each address in
	// its family's, and no interface without a rule to name it.
	tf.Addrs = tf.FamilyAddrs()
	if len(tf.Addrs) == 0 {
		tf.Iface = ""
	}
	if !tf.V4 && !tf.V6 {
		delete(f.tunnel.tfws, tf.Table)
		return nil
	}
	f.tunnel.tfws[tf.Table] = tf
	return nil
}

func (f *Fake) TunnelFirewall(table string) (hostnet.TunnelFirewall, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tf, ok := f.tunnel.tfws[table]
	if !ok {
		return hostnet.TunnelFirewall{}, fmt.Errorf("tunnel firewall %s: %w", table, hostnet.ErrNotFound)
	}
	tf.Addrs = slices.Clone(tf.Addrs)
	return tf, nil
}

func (f *Fake) DeleteTunnelFirewall(table string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("DeleteTunnelFirewall", table); err != nil {
		return err
	}
	if _, ok := f.tunnel.tfws[table]; !ok {
		return fmt.Errorf("delete tunnel firewall %s: %w", table, hostnet.ErrNotFound)
	}
	delete(f.tunnel.tfws, table)
	return nil
}
