package wgconf

import "strings"

// Forwards reports whether the config's PostUp hooks turn on IP forwarding for
// packets that arrive on the WireGuard interface, per family. It understands
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
func (c *Config) Forwards() (v4, v6 bool) {
	for _, hook := range c.Interface.PostUp {
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
