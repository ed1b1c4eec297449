package spec

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wgnet/wgnet/internal/diag"
)

// problem is a diagnostic about a spec while it is being built, with the path
// of the field concerned ("hosts[1].endpoint", "" for the whole file): problems
// sort by it, and Check drops those inside a field that failed to decode.
type problem struct {
	diag.Diagnostic
	field string
}

// list returns the diagnostics of ps.
func list(ps []problem) diag.List {
	if len(ps) == 0 {
		return nil
	}
	out := make(diag.List, len(ps))
	for i, p := range ps {
		out[i] = p.Diagnostic
	}
	return out
}

// Problem codes. Each names one kind of problem; the message says the details.
// diag's table (diag.Codes) gives each its severity and summary.
const (
	// Reading the file.
	CodeYAML       = "spec-yaml"          // not readable YAML, or not one document
	CodeEmpty      = "spec-empty"         // the file is empty
	CodeUnknownKey = "spec-unknown-key"   // a key wgnet does not know (typo?)
	CodeDuplicate  = "spec-duplicate-key" // a key given twice in one mapping
	CodeType       = "spec-type"          // wrong YAML type (list for a string...)
	CodeAlias      = "spec-alias"         // YAML anchors/aliases/tags are not supported

	// Network-wide fields.
	CodeVersion        = "spec-version"
	CodeNetwork        = "spec-network"
	CodeSubnet         = "spec-subnet"          // missing, invalid, host bits set, too small
	CodeSubnetFamily   = "spec-subnet-family"   // more than one subnet of a family
	CodeInterface      = "spec-interface"       // not a valid interface name
	CodePort           = "spec-port"            // listen_port not 1-65535
	CodeMTU            = "spec-mtu"             // mtu out of range (or < 1280 with IPv6)
	CodeTopology       = "spec-topology"        // not hub or mesh
	CodeHub            = "spec-hub"             // hub missing, unknown or given for mesh
	CodeHostName       = "spec-host-name"       // missing or invalid host name
	CodeHostDuplicate  = "spec-host-duplicate"  // two hosts with the same name
	CodeEndpoint       = "spec-endpoint"        // endpoint syntax
	CodeAddress        = "spec-address"         // invalid, outside the subnets, reserved
	CodeAddressFamily  = "spec-address-family"  // two addresses of one family
	CodeAddressMissing = "spec-address-missing" // a host without an overlay address
	CodeAddressDup     = "spec-address-duplicate"
	CodeRoute          = "spec-route"         // invalid or host bits set
	CodeRouteOverlap   = "spec-route-overlap" // overlaps another route or an overlay subnet
	CodeKeepalive      = "spec-keepalive"     // not 0-65535
	CodePublicKey      = "spec-public-key"    // invalid or all-zero
	CodePublicKeyDup   = "spec-public-key-duplicate"
	CodePublicKeyNeed  = "spec-public-key-missing" // private_key_file without public_key
	CodePrivateKeyFile = "spec-private-key-file"   // not an absolute path
	CodeUnderlayMTU    = "spec-underlay-mtu"
	CodeHook           = "spec-hook" // empty or multi-line hook command
	CodePSKPair        = "spec-psk-pair"
	CodePolicyDefault  = "spec-policy-default" // policy.default not allow or deny
	CodePolicyGroup    = "spec-policy-group"   // a bad group name or member
	CodePolicyRule     = "spec-policy-rule"    // a rule that does not parse or names nothing known
	CodePolicyTag      = "spec-policy-tag"     // a host tag that is not a valid name
	CodeHostFirewall   = "spec-host-firewall"  // not auto, docker, iptables or off
	CodeDNS            = "spec-dns"            // a dns entry that is no IP address or domain name
	CodeTable          = "spec-table"          // not off, auto, main, a number or an rt_tables name
	CodeFwMark         = "spec-fwmark"         // a fwmark that is no 32-bit number
	CodeFullTunnel     = "spec-full-tunnel"    // full_tunnel not a default route, or not on a spoke

	// Warnings.
	CodeDockerOverlap       = "spec-docker-overlap"        // overlaps Docker's 172.17.0.0/16
	CodeEndpointPort        = "spec-endpoint-listen-port"  // endpoint port is not the listen port
	CodeKeepaliveMissing    = "spec-keepalive-missing"     // no endpoint and no keepalive
	CodeUnreachable         = "spec-unreachable"           // two hosts that must peer have no endpoint
	CodeMTUUnderlay         = "spec-mtu-underlay"          // mtu above smallest underlay_mtu - 80
	CodeAddressFamilyAbsent = "spec-address-family-absent" // no address in one overlay family
	CodeRouteEndpoint       = "spec-route-endpoint"        // a route covers a host's endpoint
	CodePSKNotPeers         = "spec-psk-not-peers"         // preshared key for hosts that don't peer

	// Spec against secrets (CheckSecrets).
	CodeKeyMismatch  = "spec-key-mismatch"  // private key does not match public_key
	CodeKeyMissing   = "spec-key-missing"   // no public_key and no private key
	CodePSKMissing   = "spec-psk-missing"   // a preshared pair without a key
	CodeSecretUnused = "spec-secret-unused" // a key for no host or pair of the spec

	// The secrets directory itself (LoadSecrets): a key file or the directory
	// readable by others, or a file in it that is not a key.
	CodeSecretsMode = "secrets-mode"
)

// sortProblems orders problems by line, then field (list indexes in numeric
// order), keeping the check order for the same field.
func sortProblems(ps []problem) {
	slices.SortStableFunc(ps, func(a, b problem) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return compareFields(a.field, b.field)
	})
}

// compareFields compares field paths, runs of digits by their value.
func compareFields(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, _ := strconv.Atoi(a[:da])
			nb, _ := strconv.Atoi(b[:db])
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digits(s string) int {
	n := 0
	for n < len(s) && n < 9 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// problems collects findings for one spec.
type problems struct {
	src   *Source
	errs  []problem
	warns []problem
}

func (ps *problems) line(field string) int {
	if ps.src == nil || ps.src.Lines == nil {
		return 0
	}
	// Fall back to the enclosing field: "hosts[1].address[0]" → "hosts[1].address"
	// → "hosts[1]" → "hosts".
	for f := field; f != ""; f = parentField(f) {
		if l, ok := ps.src.Lines[f]; ok {
			return l
		}
	}
	return 0
}

func (ps *problems) add(sev diag.Severity, field, code, format string, args ...any) {
	ps.addAt(sev, -1, field, code, format, args...)
}

// addAt records a problem at line, or at the field's line when line < 0.
func (ps *problems) addAt(sev diag.Severity, line int, field, code, format string, args ...any) {
	if line < 0 {
		line = ps.line(field)
	}
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = clip(s)
		}
	}
	field = clip(field)
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		if len(msg) > 0 && strings.IndexByte("\"[-0123456789", msg[0]) >= 0 {
			msg = field + " " + msg
		} else {
			msg = field + ": " + msg
		}
	}
	p := problem{diag.Diagnostic{Line: line, Severity: sev, Code: code, Message: msg}, field}
	if ps.src != nil {
		p.File = ps.src.File
	}
	if sev == diag.Warning {
		ps.warns = append(ps.warns, p)
	} else {
		ps.errs = append(ps.errs, p)
	}
}

// errorf records an error about field. A message that starts with a value (quoted
// string, number, list) follows the field name after a space
// (`hosts[1].endpoint "x": missing port`), any other after a colon.
func (ps *problems) errorf(field, code, format string, args ...any) {
	ps.add(diag.Error, field, code, format, args...)
}

func (ps *problems) warnf(field, code, format string, args ...any) {
	ps.add(diag.Warning, field, code, format, args...)
}

// parentField strips the last component of a field path.
func parentField(f string) string {
	for i := len(f) - 1; i >= 0; i-- {
		switch f[i] {
		case '.':
			return f[:i]
		case '[':
			if i == 0 {
				return ""
			}
			return f[:i]
		}
	}
	return ""
}

func index(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// maxEcho is the most of one value a message repeats.
const maxEcho = 200

// clip shortens a value to be echoed in a message to maxEcho bytes (on a rune
// boundary) and says how long it was: a spec's value may be megabytes long.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	n := maxEcho
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
