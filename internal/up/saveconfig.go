package up

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// SaveConfig = true, as wg-quick's save_config does it on down: the running
// interface is written back to its config file (atomically, 0600), so that
// what `wg set` changed survives. The [Interface] section is made of the
// interface's addresses, the DNS servers, MTU (the link's, when the file sets
// one), Table, SaveConfig and the hooks of the file as it is at down (wg-quick
// reads the file again at down), then `wg showconf`'s ListenPort, FwMark and
// PrivateKey, and every peer as the device has it (endpoints as they roamed).

// saveConfigPath is where a config with SaveConfig = true is written back: the
// file it came from, symlinks resolved (wg-quick's readlink -f).
func saveConfigPath(file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	return abs, nil
}

// saveConfig writes interface name back to st.SaveConfig, as wg-quick's
// save_config: the file as it is now gives MTU (set or not), Table and the
// hooks; the system gives the rest.
func saveConfig(st *State, o *Options) error {
	path := st.SaveConfig
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("SaveConfig: %w", err)
	}
	file, err := wgconf.Parse(path, src)
	if err != nil {
		return fmt.Errorf("SaveConfig: %s no longer parses, so it is not overwritten: %w", path, err)
	}
	open := o.OpenDevice
	if open == nil {
		open = device.OpenState
	}
	d, ds, err := open(st.Name)
	if err != nil {
		return fmt.Errorf("SaveConfig: %w", err)
	}
	defer d.Close()
	if ds == nil {
		if ds, err = d.State(); err != nil {
			return fmt.Errorf("SaveConfig: %w", err)
		}
	}
	addrs, err := o.Host.Addrs(st.Name)
	if err != nil {
		return fmt.Errorf("SaveConfig: %w", err)
	}
	mtu := 0
	if file.Interface.MTU != 0 {
		l, err := o.Host.Link(st.Name)
		if err != nil {
			return fmt.Errorf("SaveConfig: %w", err)
		}
		mtu = l.MTU
	}
	text := savedInterface(addrs, st.DNS, mtu, &file.Interface) + showconf(ds)
	o.logf("wg showconf %s > %s (SaveConfig)", st.Name, path)
	if err := atomicfile.Write(path, []byte(text), 0o600, 0o700); err != nil {
		return fmt.Errorf("SaveConfig: %w", err)
	}
	return nil
}

// savedInterface is wg-quick's new_config: the [Interface] lines wg-quick keeps
// for itself. DNS holds only servers (wg-quick reads back the nameserver lines
// of the resolvconf record, not the search domains).
func savedInterface(addrs []netip.Prefix, dns []string, mtu int, ic *wgconf.Interface) string {
	var b strings.Builder
	b.WriteString("[Interface]\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "Address = %s\n", a)
	}
	for _, d := range dns {
		if _, err := netip.ParseAddr(d); err == nil {
			fmt.Fprintf(&b, "DNS = %s\n", d)
		}
	}
	if mtu != 0 {
		fmt.Fprintf(&b, "MTU = %d\n", mtu)
	}
	if ic.Table != "" {
		fmt.Fprintf(&b, "Table = %s\n", ic.Table)
	}
	if ic.SaveConfig {
		b.WriteString("SaveConfig = true\n")
	}
	for _, h := range []struct {
		key   string
		hooks []string
	}{{"PreUp", ic.PreUp}, {"PostUp", ic.PostUp}, {"PreDown", ic.PreDown}, {"PostDown", ic.PostDown}} {
		for _, hook := range h.hooks {
			fmt.Fprintf(&b, "%s = %s\n", h.key, hook)
		}
	}
	return b.String()
}

// showconf is `wg showconf` after its "[Interface]" line, as wg-quick pastes it
// under its own lines: ListenPort, FwMark, PrivateKey, a blank line, then each
// peer, separated by blank lines, ending in one newline.
func showconf(ds *device.State) string {
	var b strings.Builder
	if ds.ListenPort != 0 {
		fmt.Fprintf(&b, "ListenPort = %d\n", ds.ListenPort)
	}
	if ds.FwMark != 0 {
		fmt.Fprintf(&b, "FwMark = 0x%x\n", ds.FwMark)
	}
	if !ds.PrivateKey.IsZero() {
		fmt.Fprintf(&b, "PrivateKey = %s\n", ds.PrivateKey.Base64())
	}
	b.WriteString("\n")
	for i, p := range ds.Peers {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "[Peer]\nPublicKey = %s\n", p.PublicKey)
		if !p.PresharedKey.IsZero() {
			fmt.Fprintf(&b, "PresharedKey = %s\n", p.PresharedKey.Base64())
		}
		if len(p.AllowedIPs) > 0 {
			ips := make([]string, len(p.AllowedIPs))
			for j, a := range p.AllowedIPs {
				ips[j] = a.String()
			}
			fmt.Fprintf(&b, "AllowedIPs = %s\n", strings.Join(ips, ", "))
		}
		if p.Endpoint.IsValid() {
			fmt.Fprintf(&b, "Endpoint = %s\n", p.Endpoint)
		}
		if p.PersistentKeepalive > 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %s\n", strconv.Itoa(int(p.PersistentKeepalive.Seconds())))
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}
