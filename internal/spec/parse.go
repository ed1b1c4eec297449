package spec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/inputfile"
	"github.com/wgnet/wgnet/internal/trust"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Load reads and parses the spec file at path; see Parse.
func Load(path string) (*Spec, error) {
	src, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// ReadFile reads the spec file at path, which may be a symbolic link, after
// checking that wgnet can trust it (trust.Target): it and the directories above
// it belong to root or you and nobody else can write them.
func ReadFile(path string) ([]byte, error) {
	if err := trust.Target(path); err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	src, err := ReadSource(path)
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	return src, nil
}

// MaxSize is the largest spec wgnet reads (inputfile.MaxSize): far more than
// any network needs, and small enough that a wrong file (a disk image,
// /dev/zero) is refused instead of exhausting memory.
const MaxSize = inputfile.MaxSize

// ReadSource reads the file at path as a spec's source, refusing one over
// MaxSize before reading it whole, without the trust check of ReadFile (for
// `wgnet check`, which only reads).
func ReadSource(path string) ([]byte, error) {
	src, _, err := inputfile.Read(context.Background(), path)
	var big *inputfile.TooLargeError
	switch {
	case errors.As(err, &big) && big.Size >= 0:
		return nil, fmt.Errorf("%s: %d bytes, over the %d MiB a spec may have", path, big.Size, MaxSize>>20)
	case errors.As(err, &big):
		return nil, fmt.Errorf("%s: over the %d MiB a spec may have", path, MaxSize>>20)
	}
	return src, err
}

// Parse parses and validates a spec. file names the source in problems
// ("wgnet.yaml:12: ..."). The error joins (errors.Join) one diag.Failure per
// error found, in line order; warnings are left out (see Check). Defaults are not filled
// in: use InterfaceName, ListenPortOf and EffectiveMTU.
func Parse(file string, src []byte) (*Spec, error) {
	s, errs, _ := Check(file, src)
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	return s, nil
}

// Check parses a spec and returns every error and warning, each in line order,
// for `wgnet check`. It never fails: s is nil only when src is not a readable YAML
// mapping. When errs is not empty, s is incomplete: fields that did not parse hold
// zero values (kept so that list indexes still match the file) and must not be
// used except to report.
func Check(file string, src []byte) (s *Spec, errs, warns diag.List) {
	root, p := parseYAML(file, src)
	if p != nil {
		return nil, diag.List{*p}, nil
	}
	s, d := decode(file, root)
	if s == nil {
		return nil, list(d.ps.errs), nil
	}
	lint := s.lint()
	perrs := append(d.ps.errs, d.unfailed(lint.errs)...)
	pwarns := d.unfailed(lint.warns)
	sortProblems(perrs)
	sortProblems(pwarns)
	return s, list(perrs), list(pwarns)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML reads exactly one YAML document and returns its top node.
func parseYAML(file string, src []byte) (root *yaml.Node, p *diag.Diagnostic) {
	fail := func(line int, msg string) (*yaml.Node, *diag.Diagnostic) {
		return nil, &diag.Diagnostic{File: file, Line: line, Severity: diag.Error, Code: CodeYAML, Message: msg}
	}
	// yaml.v3 reports errors by panicking internally and recovering; guard against
	// a path it misses so that no input can crash a caller.
	defer func() {
		if r := recover(); r != nil {
			root, p = fail(0, fmt.Sprintf("unreadable YAML (%v)", r))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &diag.Diagnostic{File: file, Severity: diag.Error, Code: CodeEmpty, Message: "the file is empty"}
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			if isParserError(m[2]) {
				// yaml.v3 counts lines from 0 in parser (not scanner) errors.
				line++
			}
			return fail(line, m[2])
		}
		// yaml.v3's reader errors (bad UTF-8, control characters) carry no
		// line: find it.
		if line, what := badChar(src); line > 0 {
			return fail(line, what)
		}
		return fail(0, msg)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		line := 0
		if err == nil {
			line = next.Line
		}
		return fail(line, "more than one YAML document (\"---\"); a spec is one document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &diag.Diagnostic{File: file, Severity: diag.Error, Code: CodeEmpty, Message: "the file is empty"}
	}
	return &doc, nil
}

// badChar returns the line of the first byte sequence of src that YAML does not
// allow in a UTF-8 stream, and what it is; 0 if there is none.
func badChar(src []byte) (line int, what string) {
	if len(src) >= 2 && (src[0] == 0xfe && src[1] == 0xff || src[0] == 0xff && src[1] == 0xfe) {
		return 0, "" // UTF-16, which yaml.v3 decodes itself
	}
	line = 1
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			return line, fmt.Sprintf("invalid UTF-8 (byte 0x%02x); a spec must be UTF-8 text", src[i])
		case r == '\n':
			line++
		case r == '\t', r == '\r', r == 0x85, r == 0xfeff && i == 0:
		case r < 0x20, r >= 0x7f && r < 0xa0, r >= 0xd800 && r < 0xe000, r == 0xfffe, r == 0xffff:
			return line, fmt.Sprintf("control character %U is not allowed", r)
		}
		i += n
	}
	return 0, ""
}

// parserErrors are the messages of yaml.v3's parser (parserc.go), as opposed to
// its scanner's. yaml.v3 reports their line 0-based.
var parserErrors = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

func isParserError(msg string) bool { return isKnown(parserErrors, msg) }

// decoder turns the YAML tree into a Spec, recording where each field is and
// which fields failed to decode (their validation problems would only repeat it).
type decoder struct {
	ps     problems
	lines  map[string]int
	failed map[string]bool
}

// decode decodes a DocumentNode. s is nil when the top node is not a mapping.
func decode(file string, doc *yaml.Node) (*Spec, *decoder) {
	d := &decoder{lines: map[string]int{}, failed: map[string]bool{}}
	d.ps.src = &Source{File: file, Lines: d.lines}
	top := doc.Content[0]
	if !d.kind(top, "", yaml.MappingNode) {
		return nil, d
	}
	s := &Spec{Source: Source{File: file, Lines: d.lines}}
	d.mapping(top, "", topKeys, func(key string, k, v *yaml.Node) {
		f := key
		switch key {
		case "version":
			s.Version, _ = d.int(v, f)
		case "network":
			s.Network, _ = d.str(v, f)
		case "subnets":
			for _, it := range d.strs(v, f) {
				s.Subnets = append(s.Subnets, d.prefix(it, CodeSubnet, "a CIDR prefix like 192.168.100.0/24"))
			}
		case "interface":
			s.Interface, _ = d.str(v, f)
		case "listen_port":
			s.ListenPort = d.nonZero(v, f, CodePort, "1-65535")
		case "mtu":
			s.MTU = d.mtu(v, f)
		case "topology":
			s.Topology, _ = d.str(v, f)
		case "hub":
			s.Hub, _ = d.str(v, f)
		case "hosts":
			d.hosts(s, v)
		case "preshared_keys":
			d.pairs(s, v)
		case "policy":
			d.policy(s, v)
		}
	})
	return s, d
}

var (
	topKeys  = []string{"version", "network", "subnets", "interface", "listen_port", "mtu", "topology", "hub", "hosts", "preshared_keys", "policy"}
	hostKeys = []string{"name", "external", "endpoint", "address", "assign_address", "routes", "full_tunnel", "public_key", "keepalive", "listen_port", "mtu", "underlay_mtu", "dns", "table", "fwmark", "private_key_file", "hooks", "tags", "host_firewall"}
	hookKeys = []string{"pre_up", "post_up", "pre_down", "post_down"}
)

func (d *decoder) hosts(s *Spec, v *yaml.Node) {
	if isNull(v) || !d.kind(v, "hosts", yaml.SequenceNode) {
		return
	}
	for i, item := range v.Content {
		f := index("hosts", i)
		d.lines[f] = item.Line
		h := Host{Line: item.Line}
		if d.kind(item, f, yaml.MappingNode) {
			d.host(&h, item, f)
		}
		s.Hosts = append(s.Hosts, h) // even when broken, so indexes match the file
	}
}

func (d *decoder) host(h *Host, n *yaml.Node, field string) {
	d.mapping(n, field, hostKeys, func(key string, k, v *yaml.Node) {
		f := field + "." + key
		switch key {
		case "name":
			h.Name, _ = d.str(v, f)
		case "endpoint":
			h.Endpoint, _ = d.str(v, f)
		case "address":
			for _, it := range d.strs(v, f) {
				a, bits := d.addr(it)
				h.Addresses = append(h.Addresses, a)
				if bits >= 0 {
					if h.AddressBits == nil {
						h.AddressBits = map[netip.Addr]int{}
					}
					h.AddressBits[a] = bits
				}
			}
		case "external":
			h.External, _ = d.bool(v, f)
		case "assign_address":
			if b, ok := d.bool(v, f); ok {
				h.AddressElsewhere = !b
			}
		case "routes":
			for _, it := range d.strs(v, f) {
				h.Routes = append(h.Routes, d.prefix(it, CodeRoute, "a CIDR prefix like 10.0.4.0/24"))
			}
		case "full_tunnel":
			for _, it := range d.strs(v, f) {
				h.FullTunnel = append(h.FullTunnel, d.prefix(it, CodeFullTunnel, "a default route, 0.0.0.0/0 or ::/0"))
			}
		case "mtu":
			h.MTU = d.mtu(v, f)
		case "dns":
			for _, it := range d.strs(v, f) {
				h.DNS = append(h.DNS, it.s)
			}
		case "table":
			h.Table, _ = d.str(v, f)
		case "fwmark":
			h.FwMark = d.fwmark(v, f)
		case "public_key":
			if s, ok := d.str(v, f); ok {
				h.PublicKey = d.key(f, s)
			}
		case "keepalive":
			h.Keepalive, _ = d.int(v, f)
		case "listen_port":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!str" && v.Value == "random" {
				h.RandomPort = true
				break
			}
			h.ListenPort = d.nonZero(v, f, CodePort, "1-65535, or random")
		case "underlay_mtu":
			h.UnderlayMTU = d.nonZero(v, f, CodeUnderlayMTU, fmt.Sprintf("%d-65535", MinMTU+Overhead))
		case "private_key_file":
			h.PrivateKeyFile, _ = d.str(v, f)
		case "tags":
			for _, it := range d.strs(v, f) {
				h.Tags = append(h.Tags, it.s)
			}
		case "host_firewall":
			if s, ok := d.str(v, f); ok {
				switch s {
				case "auto", "docker", "iptables":
					h.HostFirewall = s
				case "off", "":
				default:
					d.fail(f, CodeHostFirewall, "%q: must be auto, docker or iptables (or off); see docs/docker.md", s)
				}
			}
		case "hooks":
			if isNull(v) || !d.kind(v, f, yaml.MappingNode) {
				return
			}
			d.mapping(v, f, hookKeys, func(key string, _, v *yaml.Node) {
				var cmds []string
				for _, it := range d.strs(v, f+"."+key) {
					cmds = append(cmds, it.s)
				}
				switch key {
				case "pre_up":
					h.Hooks.PreUp = cmds
				case "post_up":
					h.Hooks.PostUp = cmds
				case "pre_down":
					h.Hooks.PreDown = cmds
				case "post_down":
					h.Hooks.PostDown = cmds
				}
			})
		}
	})
}

func (d *decoder) pairs(s *Spec, v *yaml.Node) {
	if isNull(v) || !d.kind(v, "preshared_keys", yaml.SequenceNode) {
		return
	}
	for i, item := range v.Content {
		f := index("preshared_keys", i)
		d.lines[f] = item.Line
		var p Pair
		if d.kind(item, f, yaml.SequenceNode) {
			names := d.strs(item, f)
			if len(names) == 2 {
				p = Pair{names[0].s, names[1].s}
			} else if !d.failed[f] {
				d.fail(f, CodePSKPair, "a preshared pair names exactly two hosts: [a, b]")
			}
		}
		s.PresharedKeys = append(s.PresharedKeys, p)
	}
}

// mapping walks the keys of a mapping node in order, rejecting keys not in known
// and keys given twice.
func (d *decoder) mapping(n *yaml.Node, field string, known []string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.failAt(k.Line, field, CodeType, "keys must be plain names")
			continue
		}
		f := k.Value
		if field != "" {
			f = field + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			d.failAt(k.Line, f, CodeDuplicate, "given twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		d.lines[f] = k.Line
		if !isKnown(known, k.Value) {
			hint := suggest(k.Value, known)
			d.fail(f, CodeUnknownKey, "unknown key%s", hint)
			if hint != "" {
				// Don't also complain that the key meant is missing.
				d.failed[strings.TrimPrefix(field+"."+hintKey(hint), ".")] = true
			}
			continue
		}
		if v.Kind == yaml.AliasNode {
			d.fail(f, CodeAlias, "YAML aliases (*name) are not supported")
			continue
		}
		fn(k.Value, k, v)
	}
}

// hintKey extracts the key from suggest's text.
func hintKey(hint string) string {
	_, k, _ := strings.Cut(hint, `"`)
	k, _, _ = strings.Cut(k, `"`)
	return k
}

func isKnown(known []string, k string) bool {
	for _, s := range known {
		if s == k {
			return true
		}
	}
	return false
}

// suggest returns ` (did you mean "x"?)` when k looks like a misspelt known key.
func suggest(k string, known []string) string {
	norm := func(s string) string { return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s)) }
	best, bestD := "", 3
	for _, s := range known {
		if norm(s) == norm(k) || norm(s) == norm(k)+"s" || norm(s)+"s" == norm(k) {
			return fmt.Sprintf(" (did you mean %q?)", s)
		}
		if len(k) > 64 {
			break // no key is that long; and editDistance is quadratic
		}
		if dist := editDistance(k, s); dist < bestD && len(k) > 3 {
			best, bestD = s, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) fail(field, code, format string, args ...any) {
	d.failAt(-1, field, code, format, args...)
}

func (d *decoder) failAt(line int, field, code, format string, args ...any) {
	d.failed[field] = true
	d.ps.addAt(diag.Error, line, field, code, format, args...)
}

// unfailed drops problems about fields that already failed to decode, or lie
// inside one: they would only repeat the first error.
func (d *decoder) unfailed(ps []problem) []problem {
	var out []problem
	for _, p := range ps {
		if !d.failedField(p.field) {
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) failedField(f string) bool {
	for ; f != ""; f = parentField(f) {
		if d.failed[f] {
			return true
		}
	}
	return false
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

var kindNames = map[yaml.Kind]string{
	yaml.DocumentNode: "a document",
	yaml.SequenceNode: "a list",
	yaml.MappingNode:  "a mapping",
	yaml.ScalarNode:   "a single value",
	yaml.AliasNode:    "an alias",
}

// kind checks that n is of kind want, recording a type error otherwise.
func (d *decoder) kind(n *yaml.Node, field string, want yaml.Kind) bool {
	if n.Kind == want {
		return true
	}
	if n.Kind == yaml.AliasNode {
		d.fail(field, CodeAlias, "YAML aliases (*name) are not supported")
		return false
	}
	what := field
	if what == "" {
		what = "the spec"
	}
	got := kindNames[n.Kind]
	if n.Kind == yaml.ScalarNode {
		got = fmt.Sprintf("%q", clip(n.Value))
	}
	if field == "" {
		d.ps.addAt(diag.Error, n.Line, "", CodeType, "the spec must be %s of keys (version, network, ...), not %s", kindNames[want], got)
		return false
	}
	d.fail(field, CodeType, "must be %s, not %s", kindNames[want], got)
	return false
}

// str decodes a scalar as a string. Null means "not set".
func (d *decoder) str(n *yaml.Node, field string) (string, bool) {
	if isNull(n) {
		return "", false
	}
	if !d.kind(n, field, yaml.ScalarNode) {
		return "", false
	}
	switch n.Tag {
	case "!!str", "!!int", "!!float", "!!timestamp":
		return n.Value, true
	case "!!bool":
		d.fail(field, CodeType, "must be a string, not the boolean %s (quote it)", n.Value)
	default:
		d.fail(field, CodeType, "unsupported YAML tag %s", n.Tag)
	}
	return "", false
}

// int decodes a scalar integer. Null means "not set".
func (d *decoder) int(n *yaml.Node, field string) (int, bool) {
	if isNull(n) {
		return 0, false
	}
	if !d.kind(n, field, yaml.ScalarNode) {
		return 0, false
	}
	if n.Tag != "!!int" {
		d.fail(field, CodeType, "%q: must be a whole number", n.Value)
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < -1<<31 || v > 1<<31-1 {
		d.fail(field, CodeType, "%q: number out of range", n.Value)
		return 0, false
	}
	return int(v), true
}

// nonZero decodes an integer for which 0 would mean "not set": an explicit 0 is
// an error, not a silent default.
func (d *decoder) nonZero(n *yaml.Node, field, code, valid string) int {
	v, ok := d.int(n, field)
	if ok && v == 0 {
		d.fail(field, code, "0: must be %s (leave it out for the default)", valid)
	}
	return v
}

// item is one string of a list, with its field path.
type item struct {
	s     string
	field string
}

// strs decodes a list of strings, or one string as a list of one. Null means an
// empty list. Items that fail are returned with an empty s (and recorded as
// failed), so that indexes match the file.
func (d *decoder) strs(n *yaml.Node, field string) []item {
	if isNull(n) {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		f := index(field, 0)
		d.lines[f] = n.Line
		s, ok := d.str(n, field)
		if !ok {
			d.failed[f] = true
		}
		return []item{{s, f}}
	}
	if !d.kind(n, field, yaml.SequenceNode) {
		return nil
	}
	var out []item
	for i, c := range n.Content {
		f := index(field, i)
		d.lines[f] = c.Line
		s, ok := d.str(c, f)
		if !ok && !d.failed[f] {
			d.fail(f, CodeType, "must not be empty")
		}
		out = append(out, item{s, f})
	}
	return out
}

func (d *decoder) prefix(it item, code, like string) netip.Prefix {
	if d.failed[it.field] {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(it.s)
	if err != nil {
		d.fail(it.field, code, "%q: not %s", it.s, like)
	}
	return p
}

// addr decodes an overlay address, alone or with the prefix length its
// rendered Address keeps ("10.8.0.2/32"); bits is -1 when it has none.
func (d *decoder) addr(it item) (a netip.Addr, bits int) {
	if d.failed[it.field] {
		return netip.Addr{}, -1
	}
	if strings.Contains(it.s, "/") {
		p, err := netip.ParsePrefix(it.s)
		if err != nil {
			d.fail(it.field, CodeAddress, "%q: not an IP address, nor one with a prefix length (10.8.0.2/32)", it.s)
			return netip.Addr{}, -1
		}
		return p.Addr(), p.Bits()
	}
	a, err := netip.ParseAddr(it.s)
	if err != nil {
		d.fail(it.field, CodeAddress, "%q: not an IP address", it.s)
	}
	return a, -1
}

// mtu decodes an MTU: a number, or "auto" (MTUAuto).
func (d *decoder) mtu(n *yaml.Node, field string) int {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && n.Value == "auto" {
		return MTUAuto
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		d.fail(field, CodeMTU, "%q: must be a number (%d-%d) or auto", n.Value, MinMTU, MaxMTU)
		return 0
	}
	v := d.nonZero(n, field, CodeMTU, fmt.Sprintf("%d-%d, or auto", MinMTU, MaxMTU))
	if v < 0 {
		d.fail(field, CodeMTU, "%d: must be %d-%d, or auto", v, MinMTU, MaxMTU)
		return 0
	}
	return v
}

// fwmark decodes a firewall mark as wg(8) reads one: a number, decimal or
// 0x hex; 0 and "off" mean none.
func (d *decoder) fwmark(n *yaml.Node, field string) uint32 {
	s, ok := d.str(n, field)
	if !ok {
		return 0
	}
	v, err := ParseFwMark(s)
	if err != nil {
		d.fail(field, CodeFwMark, "%v", err)
	}
	return v
}

// ParseFwMark reads a firewall mark as wg(8) and a spec's fwmark do: a
// number, decimal or 0x hex, below 2^32; 0 and "off" mean none.
func ParseFwMark(s string) (uint32, error) {
	if s == "off" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil || strings.HasPrefix(s, "0o") || strings.HasPrefix(s, "0b") || (len(s) > 1 && s[0] == '0' && s[1] != 'x') {
		return 0, fmt.Errorf("%q: must be a number, decimal or 0x hex, below 2^32 (or off)", s)
	}
	return uint32(v), nil
}

// bool decodes true or false. Null means "not set".
func (d *decoder) bool(n *yaml.Node, field string) (v, ok bool) {
	if isNull(n) || !d.kind(n, field, yaml.ScalarNode) {
		return false, false
	}
	if n.Tag != "!!bool" {
		d.fail(field, CodeType, "%q: must be true or false", n.Value)
		return false, false
	}
	if err := n.Decode(&v); err != nil {
		d.fail(field, CodeType, "%q: must be true or false", n.Value)
		return false, false
	}
	return v, true
}

func (d *decoder) key(field, s string) wgkey.Key {
	k, err := wgkey.ParseKey(s)
	switch {
	case err != nil:
		d.fail(field, CodePublicKey, "%v", err)
	case k.IsZero():
		d.fail(field, CodePublicKey, "is all zeros, which WireGuard reads as no key")
	}
	return k
}
