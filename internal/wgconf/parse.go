package wgconf

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// The codes of the parser's diagnostics (see diag.Codes).
const (
	// CodeSyntax is a line wg or wg-quick would refuse.
	CodeSyntax = "syntax"
	// CodeParseWarning is a line wg and wg-quick accept but that is probably not
	// what was meant (an AllowedIPs entry with host bits set, a key given twice).
	CodeParseWarning = "parse-warning"
)

// Parse reads a wg(8) or wg-quick(8) config file as strictly as `wg setconf` and
// wg-quick read it: `#` starts a comment anywhere on a line, whitespace inside a
// line is ignored, section names and keys are case-insensitive. The wg-quick
// keys are read as wg-quick's parse_options reads them: the line cut at its
// first "#" (`${line%%\#*}`: a "#" inside a hook cuts the hook there too), the
// text after the first "=" trimmed at both ends. An empty wg-quick value means
// "not set", as in wg-quick: `MTU =` and `Table =` leave the automatic choice (and
// undo an earlier line), `Address =`, `DNS =` and an empty hook add nothing;
// only `SaveConfig =` is an error, as wg-quick dies on it. A second [Interface]
// section is merged into the first, as wg and wg-quick do: its keys add to or
// replace (the last one wins) the first one's, with a warning.
// file names the source in errors and in Pos.
//
// Parse collects every problem: the error, when not nil, joins one
// diag.Failure (code CodeSyntax) per problem in line order (diag.FromError
// takes them apart). The Config is never nil and holds
// everything that did parse, so that a linter can go on. Parse leaves
// Config.Name empty.
//
// Comments: a "# NAME" line (one word) directly above a [Peer] header, or as
// the first line under it, names the peer; other comment lines go to the
// Comments of the section they are in, a run directly above a header to that
// header's section. Comments after a value on a key line are dropped.
//
// Parse rejects some files that wg accepts; each case is in testdata/agreement
// with its reason ("# stricter:"): an all-zero PublicKey, ports that
// getaddrinfo would silently truncate or reinterpret ("65536", "+5"), an
// Endpoint with port 0, "[v4]:port" or "1.2.3:port", "+"/"-" AllowedIPs
// entries, and non-empty wg-quick values that wg-quick itself only finds wrong
// at `up` (Address, DNS, MTU, Table).
func Parse(file string, src []byte) (*Config, error) {
	c, _, err := ParseWithWarnings(file, src)
	return c, err
}

// ParseWithWarnings is Parse that also returns the warnings: things wg and
// wg-quick accept but that are probably not what was meant, such as an AllowedIPs
// entry with host bits set (kept masked, as wg does) or a key set twice (the
// last one wins, as in wg), with code CodeParseWarning; they never make Parse fail.
func ParseWithWarnings(file string, src []byte) (*Config, diag.List, error) {
	return parse(file, src, string(src))
}

// ParseOwnedWithWarnings is ParseWithWarnings for a caller that hands src over:
// src must never be changed afterwards, for the Config's strings share its
// memory rather than a copy of it (check reads a 1,000-host mesh's 129 MB of
// files, and copied them all once more here).
func ParseOwnedWithWarnings(file string, src []byte) (*Config, diag.List, error) {
	return parse(file, src, unsafe.String(unsafe.SliceData(src), len(src)))
}

// parse parses text, which holds the bytes of src.
func parse(file string, src []byte, text string) (*Config, diag.List, error) {
	p := &parser{file: file, cfg: &Config{}, target: noTarget}
	p.cfg.Interface.Pos.File = file
	// Room for every section up front: a Peer is large, and a hub has thousands.
	p.cfg.Peers = make([]Peer, 0, min(bytes.Count(src, []byte("[")), 1<<16))
	// The lines as strings.Split(text, "\n") gives them, less a last empty one
	// (the file's final newline), without the slice of a million strings.
	for n := 1; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		p.line(n, line)
		text = rest
	}
	p.finish()
	byLine := func(a, b diag.Diagnostic) int { return cmp.Compare(a.Line, b.Line) }
	slices.SortStableFunc(p.errs, byLine)
	slices.SortStableFunc(p.warns, byLine)
	return p.cfg, p.warns, p.errs.Err()
}

type section int

const (
	sectionNone section = iota
	sectionInterface
	sectionPeer
	sectionUnknown // after an unknown header: its keys are skipped
)

// Values of parser.target besides a peer's index.
const (
	noTarget    = -2
	ifaceTarget = -1
)

type comment struct {
	line int
	text string
}

type parser struct {
	file  string
	cfg   *Config
	errs  diag.List
	warns diag.List

	sec section
	// quickKeys is whether the current [Interface] header was written exactly
	// "[Interface]" (case aside): wg-quick recognises its own keys only then, and
	// hands them to wg otherwise, which rejects them.
	quickKeys  bool
	ifaceLine  int // line of the first [Interface], 0 if none yet
	headerLine int // line of the current section header
	// target is the section that receives detached comments: noTarget before the
	// first section, ifaceTarget, or a peer's index.
	target int
	// top holds comments seen before the first section, detached from it by a
	// blank line; they go to the first section.
	top []string
	// pending is the run of comment lines just above the current line: directly
	// above a [Peer] header, its last line may name the peer.
	pending []comment

	// slab hands out what most peers hold one of (an Endpoint, a first
	// AllowedIPs entry and its line) from arrays shared by a run of peers:
	// three allocations per file instead of three per peer.
	slab slab
}

type slab struct {
	endpoints []Endpoint
	prefixes  []netip.Prefix
	lines     []int
}

// slabRun is how many peers' worth a slab array holds.
const slabRun = 256

func (s *slab) endpoint(e Endpoint) *Endpoint {
	if len(s.endpoints) == 0 {
		s.endpoints = make([]Endpoint, slabRun)
	}
	ep := &s.endpoints[0]
	*ep = e
	s.endpoints = s.endpoints[1:]
	return ep
}

// appendPrefix appends pfx and its line n to a peer's AllowedIPs and their
// lines: the first entry from the slab, in slices with no room after it (an
// append copies them out, as it would a slice of their own); the rest by append.
func (s *slab) appendPrefix(pfxs []netip.Prefix, lines []int, pfx netip.Prefix, n int) ([]netip.Prefix, []int) {
	if len(pfxs) > 0 || len(lines) > 0 {
		return append(pfxs, pfx), append(lines, n)
	}
	if len(s.prefixes) == 0 {
		s.prefixes, s.lines = make([]netip.Prefix, slabRun), make([]int, slabRun)
	}
	pfxs, lines = s.prefixes[:1:1], s.lines[:1:1]
	pfxs[0], lines[0] = pfx, n
	s.prefixes, s.lines = s.prefixes[1:], s.lines[1:]
	return pfxs, lines
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, diag.Diagnostic{File: p.file, Line: line, Severity: diag.Error, Code: CodeSyntax, Message: message(format, args)})
}

func (p *parser) warnf(line int, format string, args ...any) {
	p.warns = append(p.warns, diag.Diagnostic{File: p.file, Line: line, Severity: diag.Warning, Code: CodeParseWarning, Message: message(format, args)})
}

// message formats a problem: string arguments (values from the file) cut to
// maxShown bytes, then key-like values hidden.
func message(format string, args []any) string {
	for i, a := range args {
		if s, ok := a.(string); ok && len(s) > maxShown {
			args[i] = shown(s)
		}
	}
	return scrubKeys(fmt.Sprintf(format, args...))
}

// maxShown is the most of a value a message repeats: a 50 MB line must not be
// echoed whole into a terminal or a CI log.
const maxShown = 64

// shown is a value too long to repeat whole: it formats as its first maxShown
// bytes (cut at a UTF-8 boundary) and its length, `"abc…"… (50000000 bytes)`
// under %q.
type shown string

func (s shown) Format(f fmt.State, verb rune) {
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	head := string(s[:cut])
	if verb == 'q' {
		head = strconv.Quote(head)
	}
	fmt.Fprintf(f, "%s… (%d bytes)", head, len(s))
}

// keyLike matches what looks like a WireGuard key in base64.
var keyLike = regexp.MustCompile(`[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=`)

// scrubKeys hides key-like values in a message, unless it is about a PublicKey:
// a private key pasted into the wrong line (AllowedIPs, Endpoint) must not be
// echoed to a terminal or a CI log.
func scrubKeys(msg string) string {
	if strings.HasPrefix(msg, "PublicKey") {
		return msg
	}
	return keyLike.ReplaceAllString(msg, "(a key, not shown)")
}

// isSpace is wireguard-tools' char_is_space: ASCII white space only.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// removeSpaces drops all white space, as wg does to every line before reading it.
func removeSpaces(s string) string {
	s = trimSpaces(s)
	n := 0
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s // the common case: no copy
	}
	var b strings.Builder
	b.Grow(len(s) - n)
	for s != "" { // runs between spaces, a copy each
		i := 0
		for i < len(s) && !isSpace(s[i]) {
			i++
		}
		b.WriteString(s[:i])
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		s = s[i:]
	}
	return b.String()
}

// trimSpaces trims white space at both ends, as wg-quick does to keys and values.
func trimSpaces(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func (p *parser) curPeer() *Peer { return &p.cfg.Peers[len(p.cfg.Peers)-1] }

// curKeys returns the key lines of the current section, a known one, and the
// place in keyNames of their first.
func (p *parser) curKeys() ([]int32, int) {
	if p.sec == sectionPeer {
		return p.curPeer().Pos.Keys[:], firstPeerKey
	}
	return p.cfg.Interface.Pos.Keys[:], 0
}

// curBad returns the Bad map of the current section, nil outside a known one.
func (p *parser) curBad() *map[string]int {
	switch p.sec {
	case sectionInterface:
		return &p.cfg.Interface.Pos.Bad
	case sectionPeer:
		return &p.curPeer().Pos.Bad
	}
	return nil
}

// flush hands the pending comments to the section they are in.
func (p *parser) flush() {
	for _, c := range p.pending {
		switch p.target {
		case noTarget:
			p.top = append(p.top, c.text)
		case ifaceTarget:
			p.cfg.Interface.Comments = append(p.cfg.Interface.Comments, c.text)
		default:
			p.cfg.Peers[p.target].Comments = append(p.cfg.Peers[p.target].Comments, c.text)
		}
	}
	p.pending = p.pending[:0]
}

func (p *parser) line(n int, raw string) {
	content := raw
	hash := strings.IndexByte(raw, '#')
	if hash >= 0 {
		content = raw[:hash]
	}
	// What removeSpaces(content) would start with, without copying the line:
	// most lines are "Key = Value", and only a header needs the cleaned text.
	first := 0
	for first < len(content) && isSpace(content[first]) {
		first++
	}
	if first == len(content) {
		if hash < 0 { // blank line: comments above it are not a peer's name
			p.flush()
			return
		}
		text := trimSpaces(raw[hash+1:])
		if p.sec == sectionPeer && n == p.headerLine+1 && p.curPeer().Name == "" && isName(text) {
			p.curPeer().Name = text
			return
		}
		p.pending = append(p.pending, comment{n, text})
		return
	}
	if content[first] == '[' {
		p.header(n, removeSpaces(content), trimSpaces(content))
		return
	}
	p.flush()
	errs := len(p.errs)
	if key := p.setting(n, content, hash >= 0); len(p.errs) > errs {
		p.markBad(n, key)
	}
}

// markBad records that line n, a setting of key ("" when the key is not known
// or not in its place), did not parse: that value is unknown.
func (p *parser) markBad(n int, key string) {
	bad := p.curBad()
	if bad == nil { // outside any known section: the file lost something
		bad, key = &p.cfg.Interface.Pos.Bad, ""
	}
	setBad(bad, key, n)
}

// setBad records line n as the first bad line of key, unless one is known.
func setBad(bad *map[string]int, key string, n int) {
	if *bad == nil {
		*bad = map[string]int{}
	}
	if _, seen := (*bad)[key]; !seen {
		(*bad)[key] = n
	}
}

// setting reads a "Key = Value" line into the current section and returns the
// canonical key, or "" when the key is unknown or belongs in another section.
// content is the line up to its first "#"; cut is whether it had one.
func (p *parser) setting(n int, content string, cut bool) string {
	eq := strings.IndexByte(content, '=')
	if eq < 0 {
		p.errorf(n, "not a section header or a \"Key = Value\" line")
		return ""
	}
	keyRaw := trimSpaces(content[:eq])
	key := removeSpaces(keyRaw)
	switch p.sec {
	case sectionNone:
		p.errorf(n, "%s before any [Interface] or [Peer] section", showKey(key))
		return ""
	case sectionUnknown:
		return ""
	}
	idx := lookupKey(key)
	if idx < 0 {
		if known := missingEquals(keyRaw); known != "" {
			p.errorf(n, "%s: missing \"=\" between the key and its value", known)
			return known
		}
		p.errorf(n, "unknown %s in %s", showKey(key), p.sectionName())
		return ""
	}
	name := keyNames[idx]
	quick := quickKey[idx]
	if quick && p.sec == sectionInterface && keyRaw != key {
		p.errorf(n, "unknown key %q in [Interface]: wg-quick reads %s only when written without spaces inside", keyRaw, name)
		return name
	}
	if quick && p.sec == sectionInterface && !p.quickKeys {
		p.errorf(n, "%s: wg-quick reads its keys only under a header written exactly \"[Interface]\" (line %d)", name, p.headerLine)
		return name
	}
	if peerKey[idx] != (p.sec == sectionPeer) {
		home := "[Interface]"
		if peerKey[idx] {
			home = "[Peer]"
		}
		p.errorf(n, "unknown key %q in %s (it belongs in %s)", key, p.sectionName(), home)
		return ""
	}

	keys, base := p.curKeys()
	if first := int(keys[idx-base]); first == 0 {
		keys[idx-base] = int32(n)
	} else if !repeatable[idx] {
		p.warnf(n, "%s set again (first at line %d); the last one wins", name, first)
	}

	if quick {
		p.quick(n, name, trimSpaces(content[eq+1:]), cut)
		return name
	}
	value := removeSpaces(content[eq+1:])
	if value == "" {
		p.errorf(n, "%s: empty value", name)
		return name
	}
	if p.sec == sectionInterface {
		p.iface(n, name, value)
	} else {
		p.peer(n, name, value)
	}
	return name
}

func (p *parser) sectionName() string {
	if p.sec == sectionPeer {
		return "[Peer]"
	}
	return "[Interface]"
}

func (p *parser) header(n int, cleaned, trimmed string) {
	// The comment run directly above the header belongs to the new section; what
	// came before it (detached by a blank line) stays where it was.
	above := p.pending
	p.pending = nil
	var dst *[]string
	target := ifaceTarget
	switch {
	case lowerIs(cleaned, "[interface]"):
		if p.ifaceLine != 0 {
			p.warnf(n, "a second [Interface] section (the first is at line %d): wg and wg-quick merge it into the first", p.ifaceLine)
		} else {
			p.ifaceLine = n
			p.cfg.Interface.Pos.Line = n
		}
		p.sec = sectionInterface
		p.quickKeys = strings.EqualFold(trimmed, "[Interface]")
		dst = &p.cfg.Interface.Comments
	case lowerIs(cleaned, "[peer]"):
		p.cfg.Peers = append(p.cfg.Peers, Peer{Pos: PeerPos{Line: n}})
		p.sec = sectionPeer
		target = len(p.cfg.Peers) - 1
		peer := p.curPeer()
		if k := len(above); k > 0 && above[k-1].line == n-1 && isName(above[k-1].text) {
			peer.Name = above[k-1].text
			above = above[:k-1]
		}
		dst = &peer.Comments
	default:
		p.errorf(n, "unknown section %q (want [Interface] or [Peer])", cleaned)
		p.sec = sectionUnknown
		p.markBad(n, "")  // the keys under it are lost
		p.pending = above // they go to the next section that is known
		return
	}
	p.headerLine = n
	if p.target == noTarget { // first section: comments from the top of the file
		*dst = append(*dst, p.top...)
		p.top = nil
	}
	p.target = target
	for _, c := range above {
		*dst = append(*dst, c.text)
	}
	p.pending = above[:0] // its room, for the next run of comments
}

// finish attributes trailing comments and checks what only the whole file shows.
func (p *parser) finish() {
	p.flush()
	if len(p.top) > 0 { // comments and no section at all
		p.cfg.Interface.Comments = append(p.cfg.Interface.Comments, p.top...)
		p.top = nil
	}
	keyed := make([]int32, 0, len(p.cfg.Peers)) // the peers with a key
	for i := range p.cfg.Peers {
		peer := &p.cfg.Peers[i]
		if peer.Pos.Keys.Line(KeyPublicKey) == 0 {
			who := ""
			if peer.Name != "" {
				who = " " + strconv.Quote(peer.Name)
			}
			p.errorf(peer.Pos.Line, "[Peer]%s has no PublicKey", who)
			setBad(&peer.Pos.Bad, KeyPublicKey, peer.Pos.Line)
			continue
		}
		if !peer.PublicKey.IsZero() { // zero: already reported
			keyed = append(keyed, int32(i))
		}
	}
	p.repeatedKeys(keyed)
}

// repeatedKeys warns of each peer of keyed (indexes in file order) whose
// PublicKey an earlier peer has. It sorts them by key, in file order among
// equal keys, rather than fill a map of a thousand 32-byte keys per file.
func (p *parser) repeatedKeys(keyed []int32) {
	peers := p.cfg.Peers
	slices.SortFunc(keyed, func(a, b int32) int {
		if c := bytes.Compare(peers[a].PublicKey[:], peers[b].PublicKey[:]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	first := 0 // the first of the run of equal keys
	for j := 1; j < len(keyed); j++ {
		peer := &peers[keyed[j]]
		if peer.PublicKey != peers[keyed[first]].PublicKey {
			first = j
			continue
		}
		p.warnf(peer.Pos.KeyLine(KeyPublicKey), "PublicKey %q also in the [Peer] at line %d; wg merges the two and the later settings win", peer.PublicKey, peers[keyed[first]].Pos.Line)
	}
}

var canonicalKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range keyNames {
		m[strings.ToLower(k)] = k
	}
	return m
}()

// lookupKey returns the index in keyNames of the key that key names, compared
// as canonicalKeys[strings.ToLower(key)] compares it, or -1. An ASCII key (every
// key of a real file) is compared in place; strings.ToLower, which allocates,
// is left for the rest, where Unicode case mapping decides (a Kelvin sign
// lowers to "k").
func lookupKey(key string) int {
	if !isASCII(key) {
		name, ok := canonicalKeys[strings.ToLower(key)]
		if !ok {
			return -1
		}
		return keyIndex(name)
	}
	for i, k := range keyNames {
		if len(k) == len(key) && strings.EqualFold(k, key) {
			return i
		}
	}
	return -1
}

// lowerIs reports whether strings.ToLower(s) == lower, for lower-case ASCII
// lower: without ToLower's copy when s is ASCII (where the two cases of a
// letter are all there is), and by ToLower itself otherwise.
func lowerIs(s, lower string) bool {
	if !isASCII(s) {
		return strings.ToLower(s) == lower
	}
	return strings.EqualFold(s, lower)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// showKey quotes a key for a message, unless it does not look like a key name:
// a line such as "PrivateKey <key>" without "=" must not echo the key.
func showKey(key string) string {
	plain := len(key) <= 24
	for i := 0; i < len(key) && plain; i++ {
		c := key[i]
		plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if plain {
		return "key " + strconv.Quote(key)
	}
	return fmt.Sprintf("key (%d characters, not shown in case it is a secret)", len(key))
}

// missingEquals returns the key that keyRaw starts with when a space follows it,
// as in "PublicKey abc=" (the "=" found was the key's padding).
func missingEquals(keyRaw string) string {
	for lower, k := range canonicalKeys {
		if len(keyRaw) > len(k) && strings.EqualFold(keyRaw[:len(k)], lower) && isSpace(keyRaw[len(k)]) {
			return k
		}
	}
	return ""
}

// quickKey marks the keys wg-quick(8) handles itself; `wg-quick strip` drops
// them. Indexed like keyNames.
var quickKey = keySet(KeyAddress, KeyDNS, KeyMTU, KeyTable, KeyPreUp, KeyPostUp,
	KeyPreDown, KeyPostDown, KeySaveConfig)

var peerKey = keySet(KeyPublicKey, KeyPresharedKey, KeyAllowedIPs, KeyEndpoint,
	KeyPersistentKeepalive)

// repeatable keys accumulate; every other key set twice keeps the last value.
var repeatable = keySet(KeyAddress, KeyDNS, KeyPreUp, KeyPostUp, KeyPreDown,
	KeyPostDown, KeyAllowedIPs)

// keySet marks keys by their index in keyNames: a lookup per line without
// hashing the key.
func keySet(keys ...string) (set [len(keyNames)]bool) {
	for _, k := range keys {
		set[keyIndex(k)] = true
	}
	return set
}

func (p *parser) iface(n int, key, value string) {
	ic := &p.cfg.Interface
	switch key {
	case KeyPrivateKey:
		k, msg := parseKey(value)
		if msg != "" {
			// Never echo a private key, not even a broken one.
			p.errorf(n, "%s: %s", key, msg)
			return
		}
		ic.PrivateKey = wgkey.Private(k)
		if k.IsZero() {
			p.warnf(n, "%s is all zeros: wg reads that as \"no private key\"", key)
		}
	case KeyListenPort:
		v, ok := parseUint(value, 10, 16)
		if !ok {
			p.errorf(n, "%s %q: must be a port number 0-65535", key, value)
			return
		}
		port := uint16(v)
		ic.ListenPort = &port
	case KeyFwMark:
		v, ok := parseFwMark(value)
		if !ok {
			p.errorf(n, "%s %q: must be off or a number 0-4294967295 (decimal or 0x hex)", key, value)
			return
		}
		ic.FwMark = v
	}
}

func (p *parser) peer(n int, key, value string) {
	peer := p.curPeer()
	switch key {
	case KeyPublicKey:
		k, msg := parseKey(value)
		if msg == "" && k.IsZero() {
			msg = "all-zero key (wg reads it as no key; wgnet needs a real one)"
		}
		if msg != "" {
			p.errorf(n, "%s %q: %s", key, value, msg)
			return
		}
		peer.PublicKey = k
	case KeyPresharedKey:
		k, msg := parseKey(value)
		if msg != "" {
			p.errorf(n, "%s: %s", key, msg) // a secret: not echoed
			return
		}
		peer.PresharedKey = k
	case KeyAllowedIPs:
		for rest, more := value, true; more; {
			var entry string
			entry, rest, more = strings.Cut(rest, ",")
			if entry == "" {
				p.errorf(n, "%s %q: empty entry in the list", key, value)
				continue
			}
			pfx, msg := parsePrefix(entry)
			if msg != "" {
				p.errorf(n, "%s %q: %s", key, entry, msg)
				continue
			}
			if m := pfx.Masked(); m != pfx {
				p.warnf(n, "%s %q: host bits set; wg uses %s", key, entry, m)
				pfx = m
			}
			peer.AllowedIPs, peer.Pos.AllowedIPs = p.slab.appendPrefix(peer.AllowedIPs, peer.Pos.AllowedIPs, pfx, n)
		}
	case KeyEndpoint:
		e, unbracketed, msg := parseEndpointAsWg(value)
		if msg != "" {
			p.errorf(n, "%s %q: %s", key, value, msg)
			return
		}
		if unbracketed {
			p.warnf(n, "%s %q: an IPv6 address without brackets; wg takes what follows the last colon as the port, %s (write it so)", key, value, e)
		}
		peer.Endpoint = p.slab.endpoint(e)
	case KeyPersistentKeepalive:
		if strings.EqualFold(value, "off") {
			peer.PersistentKeepalive = 0
			return
		}
		v, ok := parseUint(value, 10, 16)
		if !ok {
			p.errorf(n, "%s %q: must be off or 0-65535 seconds", key, value)
			return
		}
		peer.PersistentKeepalive = int(v)
	}
}

// quick handles the wg-quick keys. value is what wg-quick reads: the text
// after "=" up to the first "#", trimmed. An empty value (or a list with no
// entry, "Address = ,") sets nothing, as in wg-quick: MTU and Table go back to
// automatic, lists and hooks get nothing added (wg-quick evals an empty hook,
// which does nothing). cut is whether wg-quick cut the line at a "#".
func (p *parser) quick(n int, key, value string, cut bool) {
	ic := &p.cfg.Interface
	switch key {
	case KeyAddress:
		for _, f := range splitList(value) {
			pfx, msg := parsePrefix(f)
			if msg != "" {
				p.errorf(n, "%s %q: %s", key, f, msg)
				continue
			}
			ic.Addresses = append(ic.Addresses, pfx)
			ic.Pos.Address = append(ic.Pos.Address, n)
		}
	case KeyDNS:
		for _, f := range splitList(value) {
			if !validDNS(f) {
				p.errorf(n, "%s %q: not an IP address or a search domain", key, f)
				continue
			}
			ic.DNS = append(ic.DNS, f)
		}
	case KeyMTU:
		if value == "" {
			ic.MTU = 0
			return
		}
		v, ok := parseUint(value, 10, 32)
		if !ok || v < minMTU || v > maxMTU {
			p.errorf(n, "%s %q: must be a number %d-%d", key, value, minMTU, maxMTU)
			return
		}
		ic.MTU = int(v)
	case KeyTable:
		if value == "" {
			ic.Table = ""
			return
		}
		if !validTable(value) {
			p.errorf(n, "%s %q: must be off, auto, a table number or a table name", key, value)
			return
		}
		for _, word := range []string{"off", "auto"} {
			if value != word && strings.EqualFold(value, word) {
				p.warnf(n, "%s %q: wg-quick compares this case-sensitively and reads it as a table name; write %q", key, value, word)
			}
		}
		ic.Table = value
	case KeySaveConfig:
		switch strings.ToLower(value) {
		case "true":
			ic.SaveConfig = true
		case "false":
			ic.SaveConfig = false
		case "":
			p.errorf(n, "%s: empty value (wg-quick stops there: it must be true or false)", key)
		default:
			p.errorf(n, "%s %q: must be true or false", key, value)
		}
	case KeyPreUp, KeyPostUp, KeyPreDown, KeyPostDown:
		if value == "" {
			return
		}
		if cut && (strings.Count(value, `"`)%2 != 0 || strings.Count(value, "'")%2 != 0) {
			p.warnf(n, "%s: the \"#\" is inside quotes, but wg-quick cuts the line there all the same and runs %q", key, value)
		}
		hooks := &ic.PreUp
		switch key {
		case KeyPostUp:
			hooks = &ic.PostUp
		case KeyPreDown:
			hooks = &ic.PreDown
		case KeyPostDown:
			hooks = &ic.PostDown
		}
		*hooks = append(*hooks, value)
	}
}

// The MTU range Linux accepts for a link at all; the device may narrow it.
const (
	minMTU = 68
	maxMTU = 65535
)

// parseKey reads a key as wg's key_from_base64 does and says, without echoing
// the key, what is wrong with a bad one.
func parseKey(s string) (wgkey.Key, string) {
	if len(s) != 44 || s[43] != '=' {
		return wgkey.Key{}, `must be 44 base64 characters ending in "="`
	}
	k, err := wgkey.ParseKey(s)
	if err == nil {
		return k, ""
	}
	if _, lax := base64.StdEncoding.DecodeString(s); lax == nil {
		return wgkey.Key{}, "non-zero trailing bits: not a key that wg wrote"
	}
	return wgkey.Key{}, "not valid base64"
}

// parseUint accepts decimal (or, for base 16, hex) digits only: no sign, no
// underscores.
func parseUint(s string, base, bits int) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= '0' && c <= '9' || base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')
		if !ok {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, base, bits)
	return v, err == nil
}

// parseFwMark follows wg's parse_fwmark: "off" (any case), a decimal number, or
// hex after a lower-case "0x".
func parseFwMark(s string) (uint32, bool) {
	if strings.EqualFold(s, "off") {
		return 0, true
	}
	if len(s) > 2 && s[0] == '0' && s[1] == 'x' {
		v, ok := parseUint(s[2:], 16, 32)
		return uint32(v), ok
	}
	v, ok := parseUint(s, 10, 32)
	return uint32(v), ok
}

// parsePrefix reads "addr" or "addr/len" as wg's parse_allowedips does: a plain
// IPv4 or IPv6 address (no zone), and a decimal length; no length means the
// whole address (/32, /128). Host bits are kept; the caller masks if it must.
func parsePrefix(s string) (netip.Prefix, string) {
	addrStr, bitsStr, hasBits := strings.Cut(s, "/")
	if strings.HasPrefix(addrStr, "+") || strings.HasPrefix(addrStr, "-") {
		return netip.Prefix{}, `a "+" or "-" in front is for "wg set", not for a config file`
	}
	a, err := netip.ParseAddr(addrStr)
	if err != nil {
		return netip.Prefix{}, "not an IP address"
	}
	if a.Zone() != "" {
		return netip.Prefix{}, "an IP address with a zone can't be used here"
	}
	bits := a.BitLen()
	if hasBits {
		v, ok := parseUint(bitsStr, 10, 16)
		if !ok || int(v) > a.BitLen() {
			return netip.Prefix{}, fmt.Sprintf("prefix length must be 0-%d", a.BitLen())
		}
		bits = int(v)
	}
	return netip.PrefixFrom(a, bits), ""
}

// splitList splits a wg-quick list the way wg-quick does: commas and white space
// both separate, empty entries vanish.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r < 0x80 && isSpace(byte(r)) })
}

// validDNS accepts what wg-quick hands to resolvconf: a nameserver address (an IP,
// with a zone for link-local IPv6) or a search domain.
func validDNS(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if strings.Contains(s, ":") {
		return false // wg-quick would take it for a nameserver
	}
	return validHost(s)
}

// validTable accepts what `ip route ... table T` can: off, auto, a number, or a
// name from rt_tables (which is not checked here).
func validTable(s string) bool {
	if s == "off" || s == "auto" {
		return true
	}
	if _, ok := parseUint(s, 10, 32); ok {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return s != ""
}

// isName reports whether a comment's text is a single token that can name a
// peer: a host name, "laptop", "s2", "alice@home".
func isName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || strings.IndexByte("._@-", c) < 0) {
			return false
		}
	}
	return true
}
