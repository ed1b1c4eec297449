package wgconf

import (
	"net/netip"
	"strconv"
	"strings"
)

// WgQuick renders c as a wg-quick(8) file. The output is deterministic: keys in a
// fixed order, lists on one line, ListenPort whenever it is set (`wg setconf`
// picks a random port for a file without one), each peer preceded by a "# NAME"
// line when it has a Name, comments as "# ..." lines right after the section
// header. A zero PrivateKey, PresharedKey or FwMark is left out, as "not set".
//
// Parse(WgQuick(c)) gives back c, apart from Name and Pos, for every c that Parse
// returned without error, and for a built c whose comments are single lines
// without white space at either end (a comment of several lines comes back as
// one comment per line) and whose peer names are single words. A value that
// cannot be written on one line (a hook with a newline in it) or that wg-quick
// would cut (a hook with a "#" in it: wg-quick cuts every line there) is not
// made safe here; the spec validator refuses newlines.
func (c *Config) WgQuick() []byte { return c.render(true) }

// Stripped renders what `wg-quick strip` prints for WgQuick(): only the keys
// wg(8) knows, ready for `wg setconf` or `wg syncconf`. Comments and peer names
// stay, as wg-quick strip keeps them.
func (c *Config) Stripped() []byte { return c.render(false) }

func (c *Config) render(quick bool) []byte {
	// About 150 bytes a peer: grow once instead of doubling through a 100 MB file.
	b := make([]byte, 0, 512+150*len(c.Peers))
	ic := &c.Interface
	b = append(b, "[Interface]\n"...)
	b = writeComments(b, ic.Comments)
	if quick && len(ic.Addresses) > 0 {
		b = appendPrefixes(append(b, KeyAddress+" = "...), ic.Addresses)
	}
	if ic.ListenPort != nil {
		b = writeKey(b, KeyListenPort, strconv.Itoa(int(*ic.ListenPort)))
	}
	if !ic.PrivateKey.IsZero() {
		b = writeKey(b, KeyPrivateKey, ic.PrivateKey.Base64())
	}
	if ic.FwMark != 0 {
		b = writeKey(b, KeyFwMark, "0x"+strconv.FormatUint(uint64(ic.FwMark), 16))
	}
	if quick {
		if ic.MTU != 0 {
			b = writeKey(b, KeyMTU, strconv.Itoa(ic.MTU))
		}
		if len(ic.DNS) > 0 {
			b = writeKey(b, KeyDNS, strings.Join(ic.DNS, ", "))
		}
		if ic.Table != "" {
			b = writeKey(b, KeyTable, ic.Table)
		}
		for _, h := range []struct {
			key   string
			hooks []string
		}{{KeyPreUp, ic.PreUp}, {KeyPostUp, ic.PostUp}, {KeyPreDown, ic.PreDown}, {KeyPostDown, ic.PostDown}} {
			for _, hook := range h.hooks {
				b = writeKey(b, h.key, hook)
			}
		}
		if ic.SaveConfig {
			b = writeKey(b, KeySaveConfig, "true")
		}
	}

	for i := range c.Peers {
		p := &c.Peers[i]
		b = append(b, '\n')
		if p.Name != "" {
			b = writeComments(b, []string{p.Name})
		}
		b = append(b, "[Peer]\n"...)
		if p.Name == "" && len(p.Comments) > 0 && isName(firstLine(p.Comments[0])) {
			// Right under the header it would read back as the peer's name.
			b = append(b, '\n')
		}
		b = writeComments(b, p.Comments)
		if !p.PublicKey.IsZero() {
			b = writeKey(b, KeyPublicKey, p.PublicKey.String())
		}
		if !p.PresharedKey.IsZero() {
			b = writeKey(b, KeyPresharedKey, p.PresharedKey.String())
		}
		if len(p.AllowedIPs) > 0 {
			b = appendPrefixes(append(b, KeyAllowedIPs+" = "...), p.AllowedIPs)
		}
		if p.Endpoint != nil {
			b = writeKey(b, KeyEndpoint, p.Endpoint.String())
		}
		if p.PersistentKeepalive != 0 {
			b = writeKey(b, KeyPersistentKeepalive, strconv.Itoa(p.PersistentKeepalive))
		}
	}
	return b
}

// appendPrefixes appends "P1, P2, ...\n".
func appendPrefixes(b []byte, ps []netip.Prefix) []byte {
	for i, a := range ps {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = a.AppendTo(b)
	}
	return append(b, '\n')
}

func writeKey(b []byte, key, value string) []byte {
	b = append(b, key...)
	b = append(b, " = "...)
	b = append(b, value...)
	return append(b, '\n')
}

// writeComments writes one "# ..." line per line of each comment.
func writeComments(b []byte, comments []string) []byte {
	for _, c := range comments {
		for _, line := range strings.Split(c, "\n") {
			line = trimSpaces(line)
			if line == "" {
				b = append(b, "#\n"...)
				continue
			}
			b = append(b, "# "...)
			b = append(b, line...)
			b = append(b, '\n')
		}
	}
	return b
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return trimSpaces(line)
}
