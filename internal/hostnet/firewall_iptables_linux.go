package hostnet

import (
	"errors"
	"fmt"

	"github.com/wgnet/wgnet/internal/iptables"
)

// FirewallBackend says what ApplyFirewall writes wgnet's table with:
// l.TableBackend when it names one, else nftables when the kernel's
// nf_tables answers over netlink, else iptables (the full tunnel's rule,
// TunnelFirewallBackend).
func (l *Linux) FirewallBackend() (string, error) {
	return chooseBackend(FirewallBackendEnv, l.TableBackend, ParseFirewallBackend)
}

// ApplyFirewall implements HostNet: the table in the host's backend
// (FirewallBackend), what the other backend held of it removed.
func (l *Linux) ApplyFirewall(fw Firewall) error {
	backend, err := l.FirewallBackend()
	if err != nil {
		return fmt.Errorf("firewall %s: %w", fw.Table, err)
	}
	if backend == TunnelNftables {
		if iptablesMayHold(false) || iptablesMayHold(true) {
			if err := deleteIptablesFirewall(fw.Table); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		return l.applyNftFirewall(fw)
	}
	if err := checkIptablesFirewall(fw); err != nil {
		return err
	}
	if nftUsable() {
		if err := l.deleteNftFirewall(fw.Table); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return applyIptablesFirewall(fw)
}

// Firewall implements HostNet: the table as the host's backend holds it.
func (l *Linux) Firewall(table string) (Firewall, error) {
	backend, err := l.FirewallBackend()
	if err != nil {
		return Firewall{}, fmt.Errorf("firewall %s: %w", table, err)
	}
	if backend == TunnelNftables {
		return l.readNftFirewall(table)
	}
	return readIptablesFirewallHost(table)
}

// DeleteFirewall implements HostNet: the table in either backend.
func (l *Linux) DeleteFirewall(table string) error {
	nerr := error(ErrNotFound)
	if nftUsable() {
		nerr = l.deleteNftFirewall(table)
	}
	ierr := error(ErrNotFound)
	if iptablesMayHold(false) || iptablesMayHold(true) {
		ierr = deleteIptablesFirewall(table)
	}
	for _, err := range []error{nerr, ierr} {
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if nerr != nil && ierr != nil {
		return fmt.Errorf("delete firewall %s: %w", table, ErrNotFound)
	}
	return nil
}

// savedTables is one family's iptables-save output, read; nil when the
// programs are not installed.
func savedTables(six bool) ([]*iptables.Table, error) {
	out, err := runIptables("", iptables.Save(six))
	if errors.Is(err, errNoProgram) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return iptables.ParseSave(out), nil
}

// applyIptablesFirewall writes fw in both families, one iptables-restore -w -n
// each (-w: wait for iptables-legacy's lock, not fail while Docker or another
// wgnet holds it), replacing what was there of the table.
func applyIptablesFirewall(fw Firewall) error {
	for _, six := range []bool{false, true} {
		saved, err := savedTables(six)
		if err != nil {
			return fmt.Errorf("firewall %s: %w", fw.Table, err)
		}
		input, _ := iptablesFirewallInput(saved, fw.Table, iptablesFirewall(fw, six))
		if _, err := runIptables(input, iptables.Restore(six), "-w", "-n"); err != nil {
			return fmt.Errorf("firewall %s: %w", fw.Table, err)
		}
	}
	return nil
}

// readIptablesFirewallHost reads the table back from both families.
func readIptablesFirewallHost(table string) (Firewall, error) {
	var fams [2]iptFamily
	for i, six := range []bool{false, true} {
		saved, err := savedTables(six)
		if err != nil {
			return Firewall{}, fmt.Errorf("firewall %s: %w", table, err)
		}
		fams[i] = ourIptables(saved, table)
	}
	fw, found, err := readIptablesFirewall(table, fams[0], fams[1])
	if err != nil {
		return Firewall{}, err
	}
	if !found {
		return Firewall{}, fmt.Errorf("firewall %s: iptables: %w", table, ErrNotFound)
	}
	return fw, nil
}

// deleteIptablesFirewall removes the table's chains and the jumps to them
// from both families; ErrNotFound when neither had any.
func deleteIptablesFirewall(table string) error {
	found := false
	for _, six := range []bool{false, true} {
		saved, err := savedTables(six)
		if err != nil {
			return fmt.Errorf("delete firewall %s: %w", table, err)
		}
		input, had := iptablesFirewallInput(saved, table, nil)
		if !had {
			continue
		}
		if _, err := runIptables(input, iptables.Restore(six), "-w", "-n"); err != nil {
			return fmt.Errorf("delete firewall %s: %w", table, err)
		}
		found = true
	}
	if !found {
		return fmt.Errorf("delete firewall %s: iptables: %w", table, ErrNotFound)
	}
	return nil
}
