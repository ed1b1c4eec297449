package wgconf

import "strings"

// Forwards reports whether the config's PostUp hooks turn on IP forwarding, per
// family. It recognises the sysctl settings, as words of a hook, in either the
// dotted or the slashed form:
//
//	v4: net.ipv4.ip_forward=1, net.ipv4.conf.IFACE.forwarding=1
//	v6: net.ipv6.conf.IFACE.forwarding=1, net.ipv6.conf.IFACE.force_forwarding=1
//
// where IFACE is any interface, "all" or wg-quick's "%i" (as the compiler writes
// them: `sysctl -q -w net.ipv4.conf.%i.forwarding=1`). Anything else (a script,
// `echo 1 > /proc/...`) is not understood and reports false: a linter that uses
// this should say "not seen", not "off".
func (c *Config) Forwards() (v4, v6 bool) {
	for _, hook := range c.Interface.PostUp {
		words := strings.FieldsFunc(hook, func(r rune) bool {
			return strings.ContainsRune(" \t\r\n;&|()`'\"", r)
		})
		for _, w := range words {
			w = strings.ReplaceAll(w, "/", ".")
			switch {
			case w == "net.ipv4.ip_forward=1":
				v4 = true
			case strings.HasPrefix(w, "net.ipv4.conf.") && strings.HasSuffix(w, ".forwarding=1"):
				v4 = true
			case strings.HasPrefix(w, "net.ipv6.conf.") &&
				(strings.HasSuffix(w, ".forwarding=1") || strings.HasSuffix(w, ".force_forwarding=1")):
				v6 = true
			}
		}
	}
	return v4, v6
}
