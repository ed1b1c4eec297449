package importer

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// differences compiles the imported spec and compares every host's rendered
// config with its file, key by key and peer by peer: each difference that no
// note at its line explains yet gets one, so that nothing import changes
// passes silently. A spec that does not compile is left to its validation.
func (im *importing) differences() {
	hcs, err := compile.Compile(im.r.Spec, im.r.Secrets)
	if err != nil {
		return
	}
	byName := make(map[string]*wgconf.Config, len(hcs))
	for i := range hcs {
		byName[hcs[i].Name] = hcs[i].Config()
	}
	for _, h := range im.hosts {
		if got, ok := byName[h.name]; ok {
			d := differ{im: im, h: h, got: got}
			d.iface()
			d.hooks()
			d.peers()
		}
	}
}

// differ compares one host's file (h.cfg) with its rendered config (got).
type differ struct {
	im  *importing
	h   *host
	got *wgconf.Config
}

// say notes a difference at line unless a note there already names about
// (the key or the peer it is about).
func (d *differ) say(line int, about, format string, a ...any) {
	if !d.noted(line, about) {
		d.im.note(d.h.file, line, format, a...)
	}
}

// iface compares the [Interface] keys the rendered config writes.
func (d *differ) iface() {
	in, got := &d.h.cfg.Interface, &d.got.Interface
	line := func(key string) int { return in.Pos.KeyLine(key) }
	if a, b := prefixSet(in.Addresses), prefixSet(got.Addresses); a != b {
		d.say(line(wgconf.KeyAddress), "Address", "Address: the rendered config has %s instead of %s", orNone(b), orNone(a))
	}
	if a, b := portText(in.ListenPort), portText(got.ListenPort); a != b {
		d.say(line(wgconf.KeyListenPort), "ListenPort", "ListenPort: the rendered config has %s instead of %s", b, a)
	}
	if in.MTU != got.MTU {
		d.say(line(wgconf.KeyMTU), "MTU", "MTU: the rendered config has %s instead of %s", mtuText(got.MTU), mtuText(in.MTU))
	}
	if a, b := strings.Join(in.DNS, ", "), strings.Join(got.DNS, ", "); a != b {
		d.say(line(wgconf.KeyDNS), "DNS", "DNS: the rendered config has %s instead of %s", orNone(b), orNone(a))
	}
	if in.Table != got.Table {
		d.say(line(wgconf.KeyTable), "Table", "Table: the rendered config has %s instead of %s", orNone(got.Table), orNone(in.Table))
	}
	if in.FwMark != got.FwMark {
		d.say(line(wgconf.KeyFwMark), "FwMark", "FwMark: the rendered config has %#x instead of %#x", got.FwMark, in.FwMark)
	}
	if in.SaveConfig != got.SaveConfig {
		d.say(line(wgconf.KeySaveConfig), "SaveConfig", "SaveConfig: the rendered config has %t instead of %t", got.SaveConfig, in.SaveConfig)
	}
	if !in.PrivateKey.IsZero() && in.PrivateKey.Public() != got.PrivateKey.Public() {
		d.say(line(wgconf.KeyPrivateKey), "PrivateKey", "PrivateKey: the rendered config has another key")
	}
}

// hooks compares the user's own hooks and what the rendered config does for
// wgnet (forwarding, a key file), both read as intent does.
func (d *differ) hooks() {
	in, _ := intent.FromConfig(d.h.cfg)
	got, _ := intent.FromConfig(d.got)
	pos := &d.h.cfg.Interface.Pos
	for _, k := range []struct {
		key     string
		in, got []string
	}{
		{wgconf.KeyPreUp, in.Hooks.PreUp, got.Hooks.PreUp},
		{wgconf.KeyPostUp, in.Hooks.PostUp, got.Hooks.PostUp},
		{wgconf.KeyPreDown, in.Hooks.PreDown, got.Hooks.PreDown},
		{wgconf.KeyPostDown, in.Hooks.PostDown, got.Hooks.PostDown},
	} {
		if !slices.Equal(k.in, k.got) {
			d.say(pos.KeyLine(k.key), k.key, "%s: the rendered config runs %s instead of %s", k.key, hookList(k.got), hookList(k.in))
		}
	}
	if in.KeyFile != got.KeyFile && in.PrivateKey.IsZero() {
		d.say(pos.KeyLine(wgconf.KeyPostUp), "key", "the rendered config loads its private key from %s instead of %s", orNone(got.KeyFile), orNone(in.KeyFile))
	}
	var more []string
	if got.Forward.V4 && !in.Forward.V4 {
		more = append(more, "IPv4")
	}
	if got.Forward.V6 && !in.Forward.V6 {
		more = append(more, "IPv6")
	}
	if len(more) > 0 {
		already := ""
		if v4, v6 := intent.HooksForward(d.h.cfg.Interface.PostUp); (v4 || !got.Forward.V4) && (v6 || !got.Forward.V6) {
			already = "; the file's own PostUp already turns forwarding on, and still runs"
		}
		d.say(pos.Line, "forward", "the rendered config also turns on %s forwarding on the interface itself (a PostUp line wgnet writes for a hub or a host with routes, and undoes on down; with wgnet up, wgnet does it) and clamps the TCP MSS of what it forwards: its role in the spec needs it%s", strings.Join(more, " and "), already)
	}
}

// peers compares the peers, matched by public key.
func (d *differ) peers() {
	gotPeers := make(map[wgkey.Key]*wgconf.Peer, len(d.got.Peers))
	for i := range d.got.Peers {
		gotPeers[d.got.Peers[i].PublicKey] = &d.got.Peers[i]
	}
	seen := map[wgkey.Key]bool{}
	for j := range d.h.cfg.Peers {
		p := &d.h.cfg.Peers[j]
		if d.h.m.Peers[j].Self || seen[p.PublicKey] {
			continue // wg ignores a self-peer; a repeated key is one peer
		}
		seen[p.PublicKey] = true
		g, ok := gotPeers[p.PublicKey]
		if !ok {
			if !d.noted(p.Pos.Line, "peer") && !d.noted(p.Pos.KeyLine(wgconf.KeyPublicKey), "peer") {
				d.im.note(d.h.file, p.Pos.KeyLine(wgconf.KeyPublicKey), "peer %s (%s) is not in the rendered config", nameOr(*p), p.PublicKey)
			}
			continue
		}
		d.peer(p, g)
	}
	for _, g := range d.got.Peers {
		if !seen[g.PublicKey] {
			d.say(d.h.cfg.Interface.Pos.Line, "adds peer "+g.Name, "the rendered config adds peer %s (%s), which this file does not have", g.Name, g.PublicKey)
		}
	}
}

// noted reports whether a note at line of this host's file names about.
func (d *differ) noted(line int, about string) bool { return d.im.noted(d.h.file, line, about) }

// peer compares one peer of the file (p) with the rendered one (g).
func (d *differ) peer(p, g *wgconf.Peer) {
	line := func(key string) int { return p.Pos.KeyLine(key) }
	name := g.Name
	if add, drop := setDiff(g.AllowedIPs, p.AllowedIPs), setDiff(p.AllowedIPs, g.AllowedIPs); len(add)+len(drop) > 0 {
		var what []string
		if len(add) > 0 {
			what = append(what, "adds "+joinPrefixes(add))
		}
		if len(drop) > 0 {
			what = append(what, "leaves out "+joinPrefixes(drop))
		}
		d.say(line(wgconf.KeyAllowedIPs), "AllowedIPs", "peer %s: AllowedIPs: the rendered config %s", name, strings.Join(what, " and "))
	}
	if a, b := endpointText(p.Endpoint), endpointText(g.Endpoint); a != b {
		d.say(line(wgconf.KeyEndpoint), "Endpoint", "peer %s: Endpoint: the rendered config has %s instead of %s", name, b, a)
	}
	if p.PersistentKeepalive != g.PersistentKeepalive {
		d.say(line(wgconf.KeyPersistentKeepalive), "PersistentKeepalive", "peer %s: PersistentKeepalive: the rendered config has %s instead of %s (a spec host has one keepalive for all its peers)", name, keepaliveText(g.PersistentKeepalive), keepaliveText(p.PersistentKeepalive))
	}
	switch {
	case p.PresharedKey == g.PresharedKey:
	case g.PresharedKey.IsZero():
		d.say(line(wgconf.KeyPresharedKey), "PresharedKey", "peer %s: PresharedKey: the rendered config has none", name)
	case p.PresharedKey.IsZero():
		d.say(line(wgconf.KeyPresharedKey), "PresharedKey", "peer %s: PresharedKey: the rendered config has the pair's key from the other side's file; this file has none", name)
	default:
		d.say(line(wgconf.KeyPresharedKey), "PresharedKey", "peer %s: PresharedKey: the rendered config has the other side's key, not this file's", name)
	}
}

// setDiff returns what of a is not in b.
func setDiff(a, b []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range a {
		if !slices.Contains(b, p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// prefixSet writes prefixes sorted, as one comparable text.
func prefixSet(ps []netip.Prefix) string {
	s := slices.Clone(ps)
	slices.SortFunc(s, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return joinPrefixes(slices.Compact(s))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func portText(p *uint16) string {
	if p == nil {
		return "none (a random port)"
	}
	return strconv.Itoa(int(*p))
}

func mtuText(m int) string {
	if m == 0 {
		return "none (automatic)"
	}
	return strconv.Itoa(m)
}

func keepaliveText(k int) string {
	if k == 0 {
		return "none"
	}
	return strconv.Itoa(k)
}

func endpointText(e *wgconf.Endpoint) string {
	if e == nil {
		return "none"
	}
	return e.String()
}

func hookList(hooks []string) string {
	if len(hooks) == 0 {
		return "nothing"
	}
	return fmt.Sprintf("%q", hooks)
}
