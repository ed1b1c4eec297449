package up

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// DNS = as wg-quick(8) does it: resolvconf -a PREFIXIFACE -m 0 -x at up, with a
// nameserver line per IP entry and one search line for the rest, and
// resolvconf -d PREFIXIFACE -f at down. Sync does not change it (wg-quick has no
// sync of DNS): a changed list is a note.

// DefaultInterfaceOrder is resolvconf's interface-order file, whose first
// "NAME*" line gives the prefix wg-quick puts before the interface name.
const DefaultInterfaceOrder = "/etc/resolvconf/interface-order"

// dnsServerRE is wg-quick's test of a DNS entry that is a server, not a search
// domain.
var dnsServerRE = regexp.MustCompile(`(^[0-9.]+$)|(^.*:.*$)`)

// splitDNS splits DNS entries into servers and search domains, as wg-quick does.
func splitDNS(entries []string) (servers, search []string) {
	for _, e := range entries {
		if dnsServerRE.MatchString(e) {
			servers = append(servers, e)
		} else {
			search = append(search, e)
		}
	}
	return servers, search
}

// orderRE is wg-quick's resolvconf_iface_prefix test of an interface-order line.
var orderRE = regexp.MustCompile(`^([A-Za-z0-9-]+)\*$`)

// resolvconfPrefix is wg-quick's resolvconf_iface_prefix: the name of the first
// line of the interface-order file path that is NAME*, and a dot; "" when the
// file is absent or has no such line.
func resolvconfPrefix(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// bash's `read -r` trims blanks at both ends.
		if m := orderRE.FindStringSubmatch(strings.Trim(sc.Text(), " \t")); m != nil {
			return m[1] + "."
		}
	}
	return ""
}

// resolvconf returns the resolvconf command to run: Options.Resolvconf, or
// resolvconf on PATH. Its absence is an error before anything is touched.
func (o *Options) resolvconf() (string, error) {
	if o.Resolvconf != "" {
		return o.Resolvconf, nil
	}
	p, err := exec.LookPath("resolvconf")
	if err != nil {
		return "", fmt.Errorf("DNS = needs resolvconf, as with wg-quick (install openresolv or systemd-resolved's resolvconf): %w", err)
	}
	return p, nil
}

// needResolvconf checks that a plan with DNS entries can set them.
func (p *plan) needResolvconf(o *Options) error {
	if len(p.dns) == 0 {
		return nil
	}
	if _, err := o.resolvconf(); err != nil {
		return fmt.Errorf("up %s: %w", p.name, err)
	}
	return nil
}

// setDNS hands p's DNS entries to resolvconf, recording in st first that it
// did, so that down (or the undo of a failed up) removes them.
func setDNS(ctx context.Context, p *plan, st *State, o *Options) error {
	if len(p.dns) == 0 {
		return nil
	}
	cmd, err := o.resolvconf()
	if err != nil {
		return err
	}
	order := o.InterfaceOrder
	if order == "" {
		order = DefaultInterfaceOrder
	}
	st.DNS, st.DNSName = p.dns, resolvconfPrefix(order)+p.name
	if err := st.save(o.StateDir); err != nil {
		return err
	}
	servers, search := splitDNS(p.dns)
	var in strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&in, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&in, "search %s\n", strings.Join(search, " "))
	}
	o.logf("resolvconf -a %s -m 0 -x", st.DNSName)
	c := exec.CommandContext(ctx, cmd, "-a", st.DNSName, "-m", "0", "-x")
	c.Stdin = strings.NewReader(in.String())
	c.Stdout, c.Stderr = o.Log, o.Log
	if err := c.Run(); err != nil {
		return fmt.Errorf("resolvconf -a %s: %w", st.DNSName, err)
	}
	return nil
}

// unsetDNS removes the resolvconf record st lists. Like wg-quick's down it does
// not stop on a failure: it says so, and down goes on.
func unsetDNS(st *State, o *Options) {
	if st.DNSName == "" {
		return
	}
	o.logf("resolvconf -d %s -f", st.DNSName)
	cmd, err := o.resolvconf()
	if err == nil {
		c := exec.Command(cmd, "-d", st.DNSName, "-f")
		c.Stdout, c.Stderr = o.Log, o.Log
		err = c.Run()
	}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			err = fmt.Errorf("resolvconf -d %s: %w", st.DNSName, err)
		}
		o.logf("resolvconf -d %s failed (%v): its DNS servers may still be in /etc/resolv.conf", st.DNSName, err)
	}
	st.DNS, st.DNSName = nil, ""
}
