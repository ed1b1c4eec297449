// Package wgconf owns the wg(8) / wg-quick(8) configuration file format: the Config
// model, a strict line-numbered parser (as strict as `wg setconf` and wg-quick) and
// renderers for the wg-quick form and the stripped form `wg` reads.
// It imports only wgkey; it must not import spec, compile or any data plane.
//
// Format references: wg(8) "CONFIGURATION FILE FORMAT", wg-quick(8), and
// wireguard-tools src/config.c.
package wgconf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// Config is one interface's configuration: one [Interface] and its [Peer]s.
type Config struct {
	// Name is a label for the host this config belongs to (file name, host name).
	// It is not part of the file format.
	Name      string
	Interface Interface
	Peers     []Peer
}

// Interface is the [Interface] section. Zero values mean "not set".
type Interface struct {
	// PrivateKey is the interface key; zero means not set (e.g. supplied by a PostUp).
	PrivateKey wgkey.Private
	// ListenPort is nil when the file does not set one (wg then picks a random port).
	ListenPort *uint16
	// FwMark is 0 when unset or "off".
	FwMark uint32

	// wg-quick(8) keys below; `wg` itself does not know them.
	Addresses  []netip.Prefix // Address: an address with its prefix length (/32 if none)
	DNS        []string
	MTU        int    // 0 = automatic
	Table      string // "" = auto
	PreUp      []string
	PostUp     []string
	PreDown    []string
	PostDown   []string
	SaveConfig bool

	// Comments are the leading "# ..." lines of the section (without "#"), kept so
	// rendered files can explain themselves.
	Comments []string
	// Pos holds source positions; zero for configs not parsed from a file.
	Pos Pos
}

// Peer is one [Peer] section.
type Peer struct {
	// Name is the peer's host name, from a "# name" comment on the line before or
	// inside the section; not part of the format wg reads.
	Name                string
	PublicKey           wgkey.Key
	PresharedKey        wgkey.Key // zero = none
	AllowedIPs          []netip.Prefix
	Endpoint            *Endpoint // nil = none (the peer must dial us)
	PersistentKeepalive int       // seconds, 0 = off

	Comments []string
	// Pos holds source positions; zero for peers not parsed from a file. The
	// file is the Interface's Pos.File.
	Pos PeerPos
}

// Pos records where a section and its keys were in the source file (1-based lines).
type Pos struct {
	File string
	// Line is the line of the section header.
	Line int
	// Keys holds the line where each key first appeared (KeyLine reads it).
	Keys KeyLines
	// AllowedIPs holds the line of each AllowedIPs entry, parallel to Peer.AllowedIPs;
	// Address likewise for Interface.Addresses.
	AllowedIPs []int
	Address    []int
	// Bad maps a canonical key to the first line where a value for it did not
	// parse: that value is unknown, and the section holds only what the other
	// lines gave. Key "" marks a line whose key could not be read at all (an
	// unknown or misplaced key, a line without "="), so any value of the section
	// may be missing; for the [Interface], it also marks lines lost outside any
	// known section. Nil when every line parsed.
	Bad map[string]int
}

// Unknown reports whether a value of key may be missing from the section: a
// line for key, or a line whose key could not be read, did not parse.
func (p Pos) Unknown(key string) bool { return unknown(p.Bad, key) }

// KeyLine returns the line of key, or the section line when the key was not seen.
func (p Pos) KeyLine(key string) int { return orLine(p.Keys.Line(key), p.Line) }

// PeerPos records where a [Peer] section and its keys were, as Pos does for the
// [Interface], less what a peer has no use for: the file name (the config's,
// in Interface.Pos.File), the [Interface] keys' lines and Address lines. A
// 1,000-host mesh has a million [Peer] sections: their positions take 64 bytes
// each instead of Pos's 152.
type PeerPos struct {
	// Line is the line of the section header.
	Line int
	// Keys holds the line where each [Peer] key first appeared.
	Keys PeerKeyLines
	// AllowedIPs holds the line of each AllowedIPs entry, parallel to Peer.AllowedIPs.
	AllowedIPs []int
	// Bad is as in Pos: nil when every line of the section parsed.
	Bad map[string]int
}

// Unknown is Pos.Unknown for a [Peer] section.
func (p PeerPos) Unknown(key string) bool { return unknown(p.Bad, key) }

// KeyLine is Pos.KeyLine for a [Peer] section.
func (p PeerPos) KeyLine(key string) int { return orLine(p.Keys.Line(key), p.Line) }

func unknown(bad map[string]int, key string) bool {
	_, isBad := bad[key]
	_, lost := bad[""]
	return isBad || lost
}

// orLine returns keyLine, or the section line when it is 0 (the key was not seen).
func orLine(keyLine, section int) int {
	if keyLine != 0 {
		return keyLine
	}
	return section
}

// KeyLines holds a line per canonical key, by its place in keyNames: a fixed
// array, so that a section's positions cost no allocation (a 1,000-host mesh
// has a million [Peer] sections).
type KeyLines [len(keyNames)]int32

// keyNames are the canonical key names, in the order of KeyLines.
var keyNames = [...]string{
	KeyPrivateKey, KeyListenPort, KeyFwMark, KeyAddress, KeyDNS, KeyMTU, KeyTable,
	KeyPreUp, KeyPostUp, KeyPreDown, KeyPostDown, KeySaveConfig, KeyPublicKey,
	KeyPresharedKey, KeyAllowedIPs, KeyEndpoint, KeyPersistentKeepalive,
}

// keyIndex returns the place of canonical key name in keyNames, or -1.
func keyIndex(name string) int {
	for i, k := range keyNames {
		if k == name {
			return i
		}
	}
	return -1
}

// Line returns the line recorded for key; 0 when there is none.
func (k *KeyLines) Line(key string) int {
	if i := keyIndex(key); i >= 0 {
		return int(k[i])
	}
	return 0
}

// set records line n for key, a canonical name.
func (k *KeyLines) set(key string, n int) { k[keyIndex(key)] = int32(n) }

// firstPeerKey is the place in keyNames of the first [Peer] key; the [Peer]
// keys come last.
const firstPeerKey = 12

// PeerKeyLines holds a line per [Peer] key, by its place in keyNames less
// firstPeerKey.
type PeerKeyLines [len(keyNames) - firstPeerKey]int32

// Line returns the line recorded for key; 0 when there is none (or key is no
// [Peer] key).
func (k *PeerKeyLines) Line(key string) int {
	if i := keyIndex(key) - firstPeerKey; i >= 0 {
		return int(k[i])
	}
	return 0
}

// Canonical key names.
const (
	KeyPrivateKey          = "PrivateKey"
	KeyListenPort          = "ListenPort"
	KeyFwMark              = "FwMark"
	KeyAddress             = "Address"
	KeyDNS                 = "DNS"
	KeyMTU                 = "MTU"
	KeyTable               = "Table"
	KeyPreUp               = "PreUp"
	KeyPostUp              = "PostUp"
	KeyPreDown             = "PreDown"
	KeyPostDown            = "PostDown"
	KeySaveConfig          = "SaveConfig"
	KeyPublicKey           = "PublicKey"
	KeyPresharedKey        = "PresharedKey"
	KeyAllowedIPs          = "AllowedIPs"
	KeyEndpoint            = "Endpoint"
	KeyPersistentKeepalive = "PersistentKeepalive"
)

// Endpoint is a peer's underlay address: an IP or a host name, and a port.
type Endpoint struct {
	Host string // IP literal (without brackets) or DNS name
	Port uint16
}

// ParseEndpoint parses "host:port" or "[v6]:port" as wg does (split at the last
// colon; brackets required around an IPv6 literal). It rejects a missing port, a
// scheme ("udp://"), a CIDR, port 0 and a dotted number that is not an IPv4
// address ("1.2.3", which the C resolver would silently read as 1.2.0.3).
func ParseEndpoint(s string) (Endpoint, error) {
	if s == "" {
		return Endpoint{}, fmt.Errorf("endpoint is empty")
	}
	e, reason := parseEndpoint(s)
	if reason != "" {
		return Endpoint{}, fmt.Errorf("endpoint %q: %s", s, reason)
	}
	return e, nil
}

// parseEndpoint is ParseEndpoint with the reason for a rejection returned bare, so
// that the config parser can put it after its own `Endpoint "value":` context.
func parseEndpoint(s string) (Endpoint, string) {
	if s == "" {
		return Endpoint{}, "empty value"
	}
	if strings.Contains(s, "://") {
		return Endpoint{}, "must be host:port, without a scheme"
	}
	if strings.Contains(s, "/") {
		return Endpoint{}, "must be host:port, not a CIDR"
	}
	var host, port string
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return Endpoint{}, "unterminated '['"
		}
		host = s[1:end]
		rest := s[end+1:]
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			return Endpoint{}, "missing port"
		}
		port = rest[1:]
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return Endpoint{}, fmt.Sprintf("%q is not an IPv6 address", host)
		}
	} else {
		i := strings.LastIndex(s, ":")
		if i < 0 {
			return Endpoint{}, "missing port"
		}
		host, port = s[:i], s[i+1:]
		if strings.Contains(host, ":") {
			return Endpoint{}, "an IPv6 address needs brackets: [addr]:port"
		}
		if host == "" {
			return Endpoint{}, "missing host"
		}
		if port == "" {
			return Endpoint{}, "missing port"
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return Endpoint{}, fmt.Sprintf("port %q must be 1-65535", port)
	}
	if !validHost(host) {
		return Endpoint{}, fmt.Sprintf("%q is not an IP address or host name", host)
	}
	return Endpoint{Host: host, Port: uint16(n)}, ""
}

// parseEndpointAsWg is parseEndpoint for a config file, which wg's
// parse_endpoint also lets hold an IPv6 literal without brackets: it splits at
// the last colon, so "2001:db8::82:51820" is [2001:db8::82]:51820. unbracketed
// reports that case, which a person may have meant otherwise. wgnet's own spec
// and flags keep wanting the brackets (ParseEndpoint).
func parseEndpointAsWg(s string) (e Endpoint, unbracketed bool, reason string) {
	// Only a host with a colon can be an IPv6 literal: the others (every
	// IPv4 endpoint, a million in a big mesh) are not parsed twice.
	if i := strings.LastIndexByte(s, ':'); i > 0 && s[0] != '[' && strings.IndexByte(s[:i], ':') >= 0 {
		if a, err := netip.ParseAddr(s[:i]); err == nil && a.Is6() {
			e, reason := parseEndpoint("[" + s[:i] + "]" + s[i:])
			return e, reason == "", reason
		}
	}
	e, reason = parseEndpoint(s)
	return e, false, reason
}

func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if strings.Trim(h, "0123456789.") == "" {
		// Only digits and dots but not an IPv4 address: no host name looks like
		// that (a top-level domain is never all digits), and getaddrinfo would
		// read "1.2.3" as 1.2.0.3.
		return false
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// Addr returns the endpoint's IP when Host is an IP literal.
func (e Endpoint) Addr() (netip.Addr, bool) {
	a, err := netip.ParseAddr(e.Host)
	return a, err == nil
}

// String renders host:port, bracketing IPv6 literals.
func (e Endpoint) String() string {
	if strings.Contains(e.Host, ":") {
		return "[" + e.Host + "]:" + strconv.Itoa(int(e.Port))
	}
	return e.Host + ":" + strconv.Itoa(int(e.Port))
}

// ValidInterfaceName reports whether name is an interface name wg-quick accepts
// (^[a-zA-Z0-9_=+.-]{1,15}$), so that "NAME" means /etc/wireguard/NAME.conf.
func ValidInterfaceName(name string) bool {
	if len(name) == 0 || len(name) > 15 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_=+.-", r)) {
			return false
		}
	}
	return true
}
