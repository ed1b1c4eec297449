package wgconf

import (
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
// cannot be written on one line (a hook with a newline in it) is not made safe
// here: the spec validator refuses it.
func (c *Config) WgQuick() []byte { return c.render(true) }

// Stripped renders what `wg-quick strip` prints for WgQuick(): only the keys
// wg(8) knows, ready for `wg setconf` or `wg syncconf`. Comments and peer names
// stay, as wg-quick strip keeps them.
func (c *Config) Stripped() []byte { return c.render(false) }

func (c *Config) render(quick bool) []byte {
	var b strings.Builder
	ic := &c.Interface
	b.WriteString("[Interface]\n")
	writeComments(&b, ic.Comments)
	if quick && len(ic.Addresses) > 0 {
		addrs := make([]string, len(ic.Addresses))
		for i, a := range ic.Addresses {
			addrs[i] = a.String()
		}
		writeKey(&b, KeyAddress, strings.Join(addrs, ", "))
	}
	if ic.ListenPort != nil {
		writeKey(&b, KeyListenPort, strconv.Itoa(int(*ic.ListenPort)))
	}
	if !ic.PrivateKey.IsZero() {
		writeKey(&b, KeyPrivateKey, ic.PrivateKey.Base64())
	}
	if ic.FwMark != 0 {
		writeKey(&b, KeyFwMark, "0x"+strconv.FormatUint(uint64(ic.FwMark), 16))
	}
	if quick {
		if ic.MTU != 0 {
			writeKey(&b, KeyMTU, strconv.Itoa(ic.MTU))
		}
		if len(ic.DNS) > 0 {
			writeKey(&b, KeyDNS, strings.Join(ic.DNS, ", "))
		}
		if ic.Table != "" {
			writeKey(&b, KeyTable, ic.Table)
		}
		for _, h := range []struct {
			key   string
			hooks []string
		}{{KeyPreUp, ic.PreUp}, {KeyPostUp, ic.PostUp}, {KeyPreDown, ic.PreDown}, {KeyPostDown, ic.PostDown}} {
			for _, hook := range h.hooks {
				writeKey(&b, h.key, hook)
			}
		}
		if ic.SaveConfig {
			writeKey(&b, KeySaveConfig, "true")
		}
	}

	for i := range c.Peers {
		p := &c.Peers[i]
		b.WriteString("\n")
		if p.Name != "" {
			writeComments(&b, []string{p.Name})
		}
		b.WriteString("[Peer]\n")
		if p.Name == "" && len(p.Comments) > 0 && isName(firstLine(p.Comments[0])) {
			// Right under the header it would read back as the peer's name.
			b.WriteString("\n")
		}
		writeComments(&b, p.Comments)
		if !p.PublicKey.IsZero() {
			writeKey(&b, KeyPublicKey, p.PublicKey.String())
		}
		if !p.PresharedKey.IsZero() {
			writeKey(&b, KeyPresharedKey, p.PresharedKey.String())
		}
		if len(p.AllowedIPs) > 0 {
			ips := make([]string, len(p.AllowedIPs))
			for i, a := range p.AllowedIPs {
				ips[i] = a.String()
			}
			writeKey(&b, KeyAllowedIPs, strings.Join(ips, ", "))
		}
		if p.Endpoint != nil {
			writeKey(&b, KeyEndpoint, p.Endpoint.String())
		}
		if p.PersistentKeepalive != 0 {
			writeKey(&b, KeyPersistentKeepalive, strconv.Itoa(p.PersistentKeepalive))
		}
	}
	return []byte(b.String())
}

func writeKey(b *strings.Builder, key, value string) {
	b.WriteString(key)
	b.WriteString(" = ")
	b.WriteString(value)
	b.WriteString("\n")
}

// writeComments writes one "# ..." line per line of each comment.
func writeComments(b *strings.Builder, comments []string) {
	for _, c := range comments {
		for _, line := range strings.Split(c, "\n") {
			line = trimSpaces(line)
			if line == "" {
				b.WriteString("#\n")
				continue
			}
			b.WriteString("# ")
			b.WriteString(line)
			b.WriteString("\n")
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return trimSpaces(line)
}
