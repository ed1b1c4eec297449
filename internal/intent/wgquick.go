package intent

import (
	"regexp"
	"slices"
	"strings"

	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// The hook lines a wg-quick rendering carries for typed intent. wg-quick runs
// them on hosts that use the rendered file without wgnet; wgnet itself reads
// them back into typed fields (FromConfig) and never runs them.
const (
	// hookForwardV4 turns on IPv4 forwarding for packets arriving on the
	// WireGuard interface only (the narrowest switch the kernel has).
	hookForwardV4 = "sysctl -q -w net.ipv4.conf.%i.forwarding=1"
	// hookForwardV6 turns on IPv6 forwarding on the interface where the kernel
	// can (force_forwarding, Linux 6.17+), else globally; global v6 forwarding
	// makes the kernel ignore router advertisements on interfaces without
	// accept_ra=2.
	hookForwardV6 = "if [ -e /proc/sys/net/ipv6/conf/%i/force_forwarding ]; then sysctl -q -w net.ipv6.conf.%i.force_forwarding=1; else sysctl -q -w net.ipv6.conf.all.forwarding=1; fi"
	// hookKeyPrefix, followed by a path, loads a key the host keeps itself.
	hookKeyPrefix = "wg set %i private-key "
)

// Config renders h as a wg-quick configuration: typed intent becomes the hook
// lines wg-quick needs to do the same (key file, forwarding), before the user's
// own hooks. FromConfig reads it back. The result shares nothing with h.
func (h *Host) Config() *wgconf.Config {
	c := h.View()
	c.Peers = h.Clone().Peers
	return c
}

// WgQuick renders h as a wg-quick(8) file (see Config).
func (h *Host) WgQuick() []byte { return h.View().WgQuick() }

// Stripped renders what `wg-quick strip` prints for WgQuick: what wg(8) reads.
func (h *Host) Stripped() []byte { return h.View().Stripped() }

// View is Config sharing h's peers (their AllowedIPs, comments and endpoints)
// instead of copying them: for a reader that changes neither, such as rendering
// or check of a compiled network (a million peers in a 1,000-host mesh).
func (h *Host) View() *wgconf.Config {
	c := &wgconf.Config{Name: h.Name}
	ic := &c.Interface
	ic.Comments = slices.Clone(h.Comments)
	ic.PrivateKey = h.PrivateKey
	if h.ListenPort != nil {
		p := *h.ListenPort
		ic.ListenPort = &p
	}
	ic.FwMark = h.FwMark
	ic.Addresses = slices.Clone(h.Addresses)
	ic.DNS = slices.Clone(h.DNS)
	ic.MTU = h.MTU
	ic.Table = h.Table
	ic.SaveConfig = h.SaveConfig
	if h.KeyFile != "" {
		ic.PostUp = append(ic.PostUp, hookKeyPrefix+h.KeyFile)
	}
	if h.Forward.V4 {
		ic.PostUp = append(ic.PostUp, hookForwardV4)
	}
	if h.Forward.V6 {
		ic.PostUp = append(ic.PostUp, hookForwardV6)
	}
	postUp, preDown, comments := filterHooks(&h.Firewall.Filter)
	ic.PostUp = append(ic.PostUp, postUp...)
	ic.Comments = append(ic.Comments, comments...)
	ic.PreUp = slices.Clone(h.Hooks.PreUp)
	ic.PostUp = append(ic.PostUp, h.Hooks.PostUp...)
	ic.PreDown = append(preDown, h.Hooks.PreDown...)
	ic.PostDown = slices.Clone(h.Hooks.PostDown)
	c.Peers = h.Peers
	ic.Pos = h.Pos
	return c
}

// Read is what FromConfig made of a wg-quick file's hooks.
type Read struct {
	// Converted are the hook lines FromConfig turned into typed fields (in file
	// order): wgnet does their job itself and does not run them.
	Converted []string
}

// FromConfig reads a wg-quick configuration as intent. Hooks of exactly a form
// wgnet knows become typed fields:
//
//   - wgnet's own forwarding lines (hookForwardV4, hookForwardV6: what Config
//     writes for Forward), and any line that only turns on forwarding on the
//     interface itself (`sysctl -q -w net.ipv6.conf.%i.force_forwarding=1`),
//     become Forward again (and the MSS clamp that goes with forwarding): wgnet
//     does exactly that, and restores it on down. A forwarding line a person wrote (`sysctl -w
//     net.ipv4.ip_forward=1`) stays the user's hook and is run as written, as
//     wg-quick runs it: it means the whole host forwards, which a VPN server
//     that masquerades to its uplink needs (the replies come in on the uplink,
//     and per-interface forwarding on the tunnel would drop them);
//   - `wg set %i private-key PATH` with a PATH that wgkey.ValidPath accepts, in a
//     file without a PrivateKey, becomes KeyFile.
//
// Every other hook stays an opaque user hook. Routes is left empty: a wg-quick
// file does not say what is behind its host.
func FromConfig(c *wgconf.Config) (*Host, Read) {
	ic := &c.Interface
	h := &Host{
		Name:       c.Name,
		Comments:   slices.Clone(ic.Comments),
		PrivateKey: ic.PrivateKey,
		FwMark:     ic.FwMark,
		Addresses:  slices.Clone(ic.Addresses),
		DNS:        slices.Clone(ic.DNS),
		MTU:        ic.MTU,
		Table:      ic.Table,
		SaveConfig: ic.SaveConfig,
		Pos:        ic.Pos,
	}
	if ic.ListenPort != nil {
		p := *ic.ListenPort
		h.ListenPort = &p
	}
	h.Peers = (&Host{Peers: c.Peers}).Clone().Peers
	var r Read
	h.Hooks.PreUp = slices.Clone(ic.PreUp)
	postUp, preDown := h.readFilterHooks(ic, &r)
	h.Hooks.PreDown = preDown
	for _, line := range postUp {
		if path, ok := KeyHookPath(line); ok && h.PrivateKey.IsZero() && h.KeyFile == "" {
			h.KeyFile = path
			r.Converted = append(r.Converted, line)
			continue
		}
		if v4, v6, ok := forwardingHook(line); ok && narrowForwardingHook(line) {
			h.Forward.V4 = h.Forward.V4 || v4
			h.Forward.V6 = h.Forward.V6 || v6
			r.Converted = append(r.Converted, line)
			continue
		}
		h.Hooks.PostUp = append(h.Hooks.PostUp, line)
	}
	for _, line := range ic.PostDown {
		if narrowForwardingHook(line) {
			r.Converted = append(r.Converted, line)
			continue
		}
		h.Hooks.PostDown = append(h.Hooks.PostDown, line)
	}
	h.Firewall.ClampMSS = h.Forward.Any()
	return h, r
}

// readFilterHooks takes the filter lines out of ic's PostUp and PreDown into
// h.Firewall.Filter when they are exactly what Config renders (and the
// comments naming the rules' origins out of h.Comments), and returns the other
// lines. Filter lines of any other form stay user hooks.
func (h *Host) readFilterHooks(ic *wgconf.Interface, r *Read) (postUp, preDown []string) {
	var fUp, fDown []string
	for _, l := range ic.PostUp {
		if IsFilterHook(l) {
			fUp = append(fUp, l)
		} else {
			postUp = append(postUp, l)
		}
	}
	for _, l := range ic.PreDown {
		if IsFilterHook(l) {
			fDown = append(fDown, l)
		} else {
			preDown = append(preDown, l)
		}
	}
	if len(fUp) == 0 && len(fDown) == 0 {
		return ic.PostUp, slices.Clone(ic.PreDown)
	}
	f, used, ok := readFilter(fUp, fDown, h.Comments)
	if !ok {
		return ic.PostUp, slices.Clone(ic.PreDown)
	}
	h.Firewall.Filter = f
	h.Comments = slices.DeleteFunc(h.Comments, func(c string) bool { return slices.Contains(used, c) })
	r.Converted = append(append(r.Converted, fUp...), fDown...)
	return postUp, preDown
}

// KeyHookPath returns the PATH of a `wg set %i private-key PATH` hook and
// whether line is of that plain form with a PATH that wgkey.ValidPath accepts.
// Conversions into a spec (import) use it to refuse every other form.
func KeyHookPath(line string) (string, bool) {
	path, ok := strings.CutPrefix(strings.TrimSpace(line), hookKeyPrefix)
	if !ok || !wgkey.ValidPath(path) {
		return "", false
	}
	return path, true
}

// IsKeyHook reports whether line starts like a key-loading hook, safe or not,
// so that a conversion can say why it refuses one.
func IsKeyHook(line string) bool {
	return strings.HasPrefix(strings.TrimSpace(line), strings.TrimSpace(hookKeyPrefix))
}

// OwnForwardingHook reports whether line is one of the forwarding lines wgnet
// renders (Config), as opposed to one a person wrote: a conversion into a spec
// (import) drops wgnet's own, since the compiler derives forwarding again.
func OwnForwardingHook(line string) bool {
	l := strings.TrimSpace(line)
	return l == hookForwardV4 || l == hookForwardV6
}

// narrowForwardingHook reports whether line is one of wgnet's own forwarding
// lines, or only sets forwarding sysctls of the interface itself
// (net.ipv4.conf.%i.forwarding, net.ipv6.conf.%i.force_forwarding): what
// Forward does natively. A host-wide one (ip_forward, conf.all) is not.
func narrowForwardingHook(line string) bool {
	if OwnForwardingHook(line) {
		return true
	}
	if _, _, ok := forwardingHook(line); !ok {
		return false
	}
	for _, m := range forwardingKeyRE.FindAllString(line, -1) {
		if !narrowKeyRE.MatchString(m) {
			return false
		}
	}
	return true
}

var narrowKeyRE = regexp.MustCompile(`^net[./]ipv(4[./]conf[./]%i[./]forwarding|6[./]conf[./]%i[./]force_forwarding)=[01]$`)

// forwardingHookRE matches a hook that only sets IP forwarding sysctls, as wgnet
// writes them and as people write them by hand:
// `sysctl -q -w net.ipv4.conf.%i.forwarding=1`, `sysctl -w net.ipv4.ip_forward=1`,
// `sysctl -w net.ipv6.conf.all.forwarding=1`, with either separator.
var forwardingHookRE = regexp.MustCompile(`^sysctl((\s+-[qw]+)*)((\s+net[./]ipv[46][./](ip_forward|conf[./][^\s=]+[./](forwarding|force_forwarding))=[01])+)\s*(#.*)?$`)

var forwardingKeyRE = regexp.MustCompile(`net[./]ipv([46])[./]\S+=([01])`)

// forwardingHook reports whether line only sets forwarding sysctls (wgnet's
// own v6 line included), and which families it turns on.
func forwardingHook(line string) (v4, v6, ok bool) {
	h := strings.TrimSpace(line)
	switch h {
	case hookForwardV4:
		return true, false, true
	case hookForwardV6:
		return false, true, true
	}
	if !forwardingHookRE.MatchString(h) {
		return false, false, false
	}
	for _, m := range forwardingKeyRE.FindAllStringSubmatch(h, -1) {
		if m[2] == "1" {
			if m[1] == "4" {
				v4 = true
			} else {
				v6 = true
			}
		}
	}
	return v4, v6, true
}

// HooksForward reports whether some of hooks (PostUp lines, which may be any
// shell) turn on IP forwarding for packets that arrive on the WireGuard
// interface, per family. It is looser than FromConfig: it looks inside compound
// commands, for linters that ask "is forwarding seen at all". It understands
// sysctl(8) settings (`sysctl -w KEY=1`, dotted or slashed) and writes to /proc
// (`echo 1 > /proc/sys/...`) of these keys:
//
//	v4: net.ipv4.ip_forward, net.ipv4.conf.all.forwarding, net.ipv4.conf.%i.forwarding
//	v6: net.ipv6.conf.all.forwarding, net.ipv6.conf.%i.force_forwarding
//
// Other interfaces (eth0, "default") don't forward what comes from the tunnel, and
// net.ipv6.conf.%i.forwarding does not forward at all before Linux 6.17: it only
// makes that interface behave as a router towards its neighbours. Anything else (a
// script) reports false: a linter that uses this should say "not seen", not "off".
func HooksForward(hooks []string) (v4, v6 bool) {
	for _, hook := range hooks {
		for _, cmd := range strings.FieldsFunc(hook, func(r rune) bool { return strings.ContainsRune(";&|\n", r) }) {
			for _, key := range enabledSysctls(cmd) {
				switch key {
				case "net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.%i.forwarding":
					v4 = true
				case "net.ipv6.conf.all.forwarding", "net.ipv6.conf.%i.force_forwarding":
					v6 = true
				}
			}
		}
	}
	return v4, v6
}

// ConfigForwards is HooksForward of c's PostUp lines.
func ConfigForwards(c *wgconf.Config) (v4, v6 bool) { return HooksForward(c.Interface.PostUp) }

// enabledSysctls returns the dotted sysctl keys that one shell command sets to 1.
func enabledSysctls(cmd string) []string {
	words := strings.FieldsFunc(cmd, func(r rune) bool { return strings.ContainsRune(" \t\r()`'\"", r) })
	dotted := func(k string) string {
		return strings.ReplaceAll(strings.TrimPrefix(k, "/proc/sys/"), "/", ".")
	}
	var keys []string
	for i, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok && v == "1" && strings.HasPrefix(dotted(k), "net.") {
			keys = append(keys, dotted(k))
		}
		// echo 1 > /proc/sys/KEY, or echo 1 >/proc/sys/KEY
		if p := strings.TrimPrefix(w, ">"); strings.HasPrefix(p, "/proc/sys/net/") && i >= 2 &&
			words[0] == "echo" && words[1] == "1" {
			keys = append(keys, dotted(p))
		}
	}
	return keys
}
