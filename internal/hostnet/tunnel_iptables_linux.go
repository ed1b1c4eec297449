package hostnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/wgnet/wgnet/internal/iptables"
)

// The tunnel firewall in either backend: nftables tables written over netlink
// (tunnel_linux.go), or, where nf_tables is not there or when asked, the same
// rules written with iptables-restore as wg-quick writes them without nft. An
// apply or a delete clears both backends, as wg-quick's down does, so that a
// switch of backend (or the other tool) never leaves rules behind.

// iptablesTimeout bounds one run of an iptables program.
const iptablesTimeout = 20 * time.Second

// errNoProgram: the iptables program is not installed.
var errNoProgram = iptables.ErrNoProgram

// TunnelFirewallBackend implements HostNet: l.TunnelBackend when it names
// one, else nftables when the kernel's nf_tables answers, else iptables.
func (l *Linux) TunnelFirewallBackend() (string, error) {
	return chooseBackend(TunnelBackendEnv, l.TunnelBackend, ParseTunnelBackend)
}

// chooseBackend is the backend setting (read from env) names, else
// nftables when nf_tables answers, else iptables.
func chooseBackend(env, setting string, parse func(string) (string, error)) (string, error) {
	b, err := parse(setting)
	if err != nil {
		return "", fmt.Errorf("%s: %w", env, err)
	}
	if b != "" {
		return b, nil
	}
	if nftUsable() {
		return TunnelNftables, nil
	}
	return TunnelIptables, nil
}

// nftUsable reports whether nf_tables answers over netlink (the module is
// there and the namespace may use it).
func nftUsable() bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	_, err = c.ListTables()
	return err == nil
}

// ApplyTunnelFirewall implements HostNet.
func (l *Linux) ApplyTunnelFirewall(tf TunnelFirewall) error {
	if len(tf.Iface) >= unix.IFNAMSIZ {
		return fmt.Errorf("tunnel firewall %s: interface name %q too long", tf.Table, tf.Iface)
	}
	backend := tf.Backend
	if backend != TunnelNftables && backend != TunnelIptables {
		var err error
		if backend, err = l.TunnelFirewallBackend(); err != nil {
			return fmt.Errorf("tunnel firewall %s: %w", tf.Table, err)
		}
	}
	if tf.V6 && tf.Iface != "" {
		ll, err := l.linkLocal(tf.Iface)
		if err != nil {
			return fmt.Errorf("tunnel firewall %s: %w", tf.Table, err)
		}
		tf.Addrs = append(slices.DeleteFunc(slices.Clone(tf.Addrs), netip.Addr.IsLinkLocalUnicast), ll...)
	}
	if backend == TunnelNftables {
		// The nftables tables are replaced in one transaction; iptables rules
		// of an earlier apply go first.
		if err := deleteIptablesTunnel(tf.Table); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return l.applyNftTunnel(tf)
	}
	if err := l.DeleteTunnelFirewall(tf.Table); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return applyIptablesTunnel(tf)
}

// TunnelFirewall implements HostNet: the tables in nftables (when nf_tables is
// there) or the rules in iptables (when it is installed).
func (l *Linux) TunnelFirewall(table string) (TunnelFirewall, error) {
	var nft, ipt TunnelFirewall
	var nerr error = ErrNotFound
	if nftUsable() {
		nft, nerr = l.readNftTunnel(table)
	}
	ipt, ierr := readIptablesTunnel(table)
	switch {
	case nerr != nil && !errors.Is(nerr, ErrNotFound):
		return TunnelFirewall{}, nerr
	case ierr != nil && !errors.Is(ierr, ErrNotFound):
		return TunnelFirewall{}, ierr
	case nerr == nil && ierr == nil:
		nft.Backend = TunnelMixed
		return nft, nil
	case nerr == nil:
		return nft, nil
	case ierr == nil:
		return ipt, nil
	}
	return TunnelFirewall{}, fmt.Errorf("tunnel firewall %s: %w", table, ErrNotFound)
}

// DeleteTunnelFirewall implements HostNet.
func (l *Linux) DeleteTunnelFirewall(table string) error {
	nerr := error(ErrNotFound)
	if nftUsable() {
		nerr = l.deleteNftTunnel(table)
	}
	ierr := deleteIptablesTunnel(table)
	for _, err := range []error{nerr, ierr} {
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if nerr != nil && ierr != nil {
		return fmt.Errorf("delete tunnel firewall %s: %w", table, ErrNotFound)
	}
	return nil
}

// iptablesPrograms are the family's restore and save programs.
func iptablesPrograms(six bool) (restore, save string) {
	return iptables.Restore(six), iptables.Save(six)
}

// runIptables runs prog with args and input on its standard input.
func runIptables(input string, prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), iptablesTimeout)
	defer cancel()
	out, err := iptables.Run(ctx, prog, args, input)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// checkComment refuses a table whose comment iptables-restore could not read
// back as one word.
func checkComment(table string) (string, error) {
	c := IptablesComment(table)
	if strings.ContainsFunc(c, func(r rune) bool { return r == '"' || r == '\\' || r < ' ' || r > '~' }) || len(c) > 255 {
		return "", fmt.Errorf("tunnel firewall %s: the name cannot be an iptables comment", table)
	}
	return c, nil
}

// iptablesRestoreInput is wg-quick's add_default input to iptables-restore
// -n for one family, character for character.
func iptablesRestoreInput(tf TunnelFirewall, comment string, six bool) string {
	marker := iptables.Comment(comment)
	var in iptables.Input
	in.Table("raw")
	for _, a := range tf.Addrs {
		if a.Is6() == six {
			in.Rule("-I", "PREROUTING", slices.Concat([]string{"!", "-i", tf.Iface, "-d", a.String(), "-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "DROP"}, marker)...)
		}
	}
	in.Table("mangle")
	in.Rule("-I", "POSTROUTING", slices.Concat([]string{"-m", "mark", "--mark", strconv.FormatUint(uint64(tf.Mark), 10), "-p", "udp", "-j", "CONNMARK", "--save-mark"}, marker)...)
	in.Rule("-I", "PREROUTING", slices.Concat([]string{"-p", "udp", "-j", "CONNMARK", "--restore-mark"}, marker)...)
	return in.String()
}

// applyIptablesTunnel writes tf's rules, one iptables-restore -n per family
// (the rules of other tools stay); tf's addresses are complete.
func applyIptablesTunnel(tf TunnelFirewall) error {
	comment, err := checkComment(tf.Table)
	if err != nil {
		return err
	}
	if tf.Iface == "" && len(tf.Addrs) > 0 {
		return fmt.Errorf("tunnel firewall %s: addresses without an interface", tf.Table)
	}
	for _, six := range []bool{false, true} {
		if (six && !tf.V6) || (!six && !tf.V4) {
			continue
		}
		restore, _ := iptablesPrograms(six)
		if _, err := runIptables(iptablesRestoreInput(tf, comment, six), restore, "-n"); err != nil {
			return fmt.Errorf("tunnel firewall %s: %w", tf.Table, err)
		}
	}
	return nil
}

// The rules of iptablesRestoreInput as iptables-save prints them (legacy and
// nf_tables backends alike).
var (
	iptDropRE    = regexp.MustCompile(`^-A PREROUTING -d (\S+) ! -i (\S+) -m addrtype ! --src-type LOCAL -m comment --comment "(.*)" -j DROP$`)
	iptSaveRE    = regexp.MustCompile(`^-A POSTROUTING -p udp -m mark --mark (0x[0-9a-f]+) -m comment --comment "(.*)" -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff$`)
	iptRestoreRE = regexp.MustCompile(`^-A PREROUTING -p udp -m comment --comment "(.*)" -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff$`)
)

// ourIptablesRules returns the family's iptables-save output and, by table,
// the rules that carry comment.
func ourIptablesRules(comment string, six bool) (string, map[string][]string, error) {
	if !iptablesMayHold(six) {
		return "", nil, nil
	}
	_, save := iptablesPrograms(six)
	out, err := runIptables("", save)
	if err != nil {
		return "", nil, err
	}
	rules := map[string][]string{}
	for _, t := range iptables.ParseSave(out) {
		for _, r := range t.Rules {
			if isOurs(r.Line, comment) {
				rules[t.Name] = append(rules[t.Name], r.Line)
			}
		}
	}
	return out, rules, nil
}

// isOurs reports whether an iptables-save line is a rule with the comment:
// wg-quick's test (`-A *-m comment --comment "COMMENT"*`).
func isOurs(line, comment string) bool {
	return strings.HasPrefix(line, "-A ") && strings.Contains(line, `-m comment --comment "`+comment+`"`)
}

// iptablesMayHold reports whether the family has a raw or mangle table in
// either iptables backend: iptables-legacy's (/proc/net/ip_tables_names) or
// iptables-nft's (nftables tables "raw" and "mangle" of family ip or ip6). It
// is read over netlink and procfs, so that an interface without a full
// tunnel costs no iptables-save run per read.
func iptablesMayHold(six bool) bool {
	names, fam := "/proc/net/ip_tables_names", nftables.TableFamilyIPv4
	if six {
		names, fam = "/proc/net/ip6_tables_names", nftables.TableFamilyIPv6
	}
	if b, err := os.ReadFile(names); err == nil {
		for _, t := range strings.Fields(string(b)) {
			if t == "raw" || t == "mangle" {
				return true
			}
		}
	}
	c, err := nftables.New()
	if err != nil {
		return false
	}
	ts, err := c.ListTablesOfFamily(fam)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(ts, func(t *nftables.Table) bool { return t.Name == "raw" || t.Name == "mangle" })
}

// readIptablesTunnel reads back the rules applyIptablesTunnel wrote (or
// wg-quick without nft). A rule with the comment that is not one of them is
// an error, so that a changed rule is never mistaken for wgnet's.
func readIptablesTunnel(table string) (TunnelFirewall, error) {
	comment, err := checkComment(table)
	if err != nil {
		return TunnelFirewall{}, err
	}
	tf := TunnelFirewall{Table: table, Backend: TunnelIptables}
	for _, six := range []bool{false, true} {
		_, rules, err := ourIptablesRules(comment, six)
		if errors.Is(err, errNoProgram) {
			continue
		} else if err != nil {
			return TunnelFirewall{}, fmt.Errorf("tunnel firewall %s: %w", table, err)
		}
		if len(rules) == 0 {
			continue
		}
		if err := readIptablesFamily(&tf, rules, comment, six); err != nil {
			return TunnelFirewall{}, fmt.Errorf("tunnel firewall %s: %w", table, err)
		}
	}
	if !tf.V4 && !tf.V6 {
		return TunnelFirewall{}, fmt.Errorf("tunnel firewall %s: %w", table, ErrNotFound)
	}
	return tf, nil
}

// readIptablesFamily adds one family's rules (by table) to tf.
func readIptablesFamily(tf *TunnelFirewall, rules map[string][]string, comment string, six bool) error {
	prog, _ := iptablesPrograms(six)
	prog = strings.TrimSuffix(prog, "-restore")
	foreign := func(line string) error {
		return fmt.Errorf("%s holds a rule with the comment %q that wgnet did not write: %s", prog, comment, line)
	}
	if six {
		tf.V6 = true
	} else {
		tf.V4 = true
	}
	var addrs []netip.Addr
	for _, line := range rules["raw"] {
		m := iptDropRE.FindStringSubmatch(line)
		if m == nil || m[3] != comment || (tf.Iface != "" && m[2] != tf.Iface) {
			return foreign(line)
		}
		p, err := netip.ParsePrefix(m[1])
		if err != nil || !p.IsSingleIP() || p.Addr().Is6() != six {
			return foreign(line)
		}
		tf.Iface = m[2]
		addrs = append(addrs, p.Addr())
	}
	// -I put each rule first: the chain holds them in the reverse order.
	slices.Reverse(addrs)
	tf.Addrs = append(tf.Addrs, addrs...)
	var saves, restores int
	for _, line := range rules["mangle"] {
		if m := iptRestoreRE.FindStringSubmatch(line); m != nil && m[1] == comment {
			restores++
			continue
		}
		m := iptSaveRE.FindStringSubmatch(line)
		if m == nil || m[2] != comment {
			return foreign(line)
		}
		mark, err := strconv.ParseUint(m[1], 0, 32)
		if err != nil || (tf.Mark != 0 && uint32(mark) != tf.Mark) {
			return foreign(line)
		}
		tf.Mark = uint32(mark)
		saves++
	}
	for t, lines := range rules {
		if t != "raw" && t != "mangle" {
			return foreign(lines[0])
		}
	}
	if saves != 1 || restores != 1 {
		return fmt.Errorf("%s: %d save-mark and %d restore-mark rules with the comment %q, want one each", prog, saves, restores, comment)
	}
	return nil
}

// deleteIptablesTunnel deletes every rule with the table's comment, both
// families, as wg-quick's remove_firewall does: the tables' headers and
// COMMITs of iptables-save, each of the rules with -A turned into -D, into
// iptables-restore -n. A family whose programs are not installed is skipped.
func deleteIptablesTunnel(table string) error {
	comment, err := checkComment(table)
	if err != nil {
		return err
	}
	found := false
	for _, six := range []bool{false, true} {
		out, rules, err := ourIptablesRules(comment, six)
		if errors.Is(err, errNoProgram) {
			continue
		} else if err != nil {
			return fmt.Errorf("delete tunnel firewall %s: %w", table, err)
		}
		if len(rules) == 0 {
			continue
		}
		restore, _ := iptablesPrograms(six)
		if _, err := runIptables(iptablesDeleteInput(out, comment), restore, "-n"); err != nil {
			return fmt.Errorf("delete tunnel firewall %s: %w", table, err)
		}
		found = true
	}
	if !found {
		return fmt.Errorf("delete tunnel firewall %s: iptables: %w", table, ErrNotFound)
	}
	return nil
}

// iptablesDeleteInput is the iptables-restore -n input that deletes the rules
// with comment from iptables-save output out: each table's header and COMMIT,
// and each of the rules with -A turned into -D.
func iptablesDeleteInput(out, comment string) string {
	var in iptables.Input
	for _, t := range iptables.ParseSave(out) {
		in.Table(t.Name)
		for _, r := range t.Rules {
			if isOurs(r.Line, comment) {
				in.Line("-D" + strings.TrimPrefix(r.Line, "-A"))
			}
		}
	}
	return in.String()
}
