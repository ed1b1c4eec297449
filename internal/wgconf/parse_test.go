package wgconf

import (
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Test keys (made with wg genkey; they guard nothing).
const (
	testPriv = "wFrhJFO/IpLgD+PikorgNwlvQO3YZcB3TnVmvrBfPlE="
	testPub2 = "6OR+er9yFbWdurKsK6qCZFHyyZu9MVNpFajakyatxCc="
	testPub3 = "CJmGC+LU2h1jwuSvrv1A8LnjgYn1EE3+u8JtWAhncQ8="
	testPSK  = "BdaMxNb4EJ6eTzPmT90k/17/LZr3FRJtFHbF4x4v9U0="
	zeroKey  = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	// testPub3 with the last character moved one up: the two bits past the 32
	// bytes are no longer zero.
	trailingBits = "CJmGC+LU2h1jwuSvrv1A8LnjgYn1EE3+u8JtWAhncQ9="
)

func mustPrivate(t *testing.T, s string) wgkey.Private {
	t.Helper()
	k, err := wgkey.ParsePrivate(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func port(p uint16) *uint16 { return &p }

// cmpConfig compares Configs: netip values by ==, private keys in constant time
// (and printed redacted).
var cmpConfig = cmp.Options{
	cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{}),
	cmp.Comparer(func(a, b wgkey.Private) bool { return a.Equal(b) }),
}

// ignorePositions compares Configs apart from what a file does not carry: Pos,
// Config.Name, and nil versus empty slices.
func ignorePositions() cmp.Option {
	return cmp.Options{
		cmpConfig,
		cmpopts.IgnoreFields(Config{}, "Name"),
		cmpopts.IgnoreFields(Interface{}, "Pos"),
		cmpopts.IgnoreFields(Peer{}, "Pos"),
		cmpopts.EquateEmpty(),
	}
}

// TestParseErrors has one case per kind of error, with the exact message and
// line. Peer sections carry a valid PublicKey unless the case is about it.
func TestParseErrors(t *testing.T) {
	peer := "[Peer]\nPublicKey = " + testPub2 + "\n"
	tests := []struct {
		name string
		src  string
		want []string // Error() of each error, in order
	}{
		{"empty value", peer + "AllowedIPs =\n",
			[]string{`t.conf:3: AllowedIPs: empty value`}},
		{"empty value after comment strip", "[Interface]\nListenPort = # none\n",
			[]string{`t.conf:2: ListenPort: empty value`}},
		{"empty SaveConfig (wg-quick dies on it)", "[Interface]\nSaveConfig =\n",
			[]string{`t.conf:2: SaveConfig: empty value (wg-quick stops there: it must be true or false)`}},
		{"unknown key", "[Interface]\nPrivatKey = x\n",
			[]string{`t.conf:2: unknown key "PrivatKey" in [Interface]`}},
		{"unknown key not echoed when it may be a secret", "[Interface]\n" + testPriv[:20] + " = x\n",
			[]string{`t.conf:2: unknown key (20 characters, not shown in case it is a secret) in [Interface]`}},
		{"missing equals", "[Interface]\nPrivateKey " + testPriv + "\n",
			[]string{`t.conf:2: PrivateKey: missing "=" between the key and its value`}},
		{"no equals at all", "[Interface]\nListenPort\n",
			[]string{`t.conf:2: not a section header or a "Key = Value" line`}},
		{"peer key in interface", "[Interface]\nEndpoint = 198.18.0.1:1\n",
			[]string{`t.conf:2: unknown key "Endpoint" in [Interface] (it belongs in [Peer])`}},
		{"wg-quick key in peer", peer + "DNS = 10.0.0.53\n",
			[]string{`t.conf:3: unknown key "DNS" in [Peer] (it belongs in [Interface])`}},
		{"key before any section", "ListenPort = 1\n[Interface]\n",
			[]string{`t.conf:1: key "ListenPort" before any [Interface] or [Peer] section`}},
		{"unknown section", "[Interface]\n[Peers]\nPublicKey = " + testPub2 + "\n",
			[]string{`t.conf:2: unknown section "[Peers]" (want [Interface] or [Peer])`}},
		{"peer without public key", "[Interface]\n# s2\n[Peer]\nAllowedIPs = 10.0.0.2/32\n[Peer]\n",
			[]string{`t.conf:3: [Peer] "s2" has no PublicKey`, `t.conf:5: [Peer] has no PublicKey`}},
		{"key too short", "[Peer]\nPublicKey = " + testPub2[:40] + "=\n",
			[]string{`t.conf:2: PublicKey "6OR+er9yFbWdurKsK6qCZFHyyZu9MVNpFajakyat=": must be 44 base64 characters ending in "="`}},
		{"key not base64", "[Peer]\nPublicKey = " + strings.Replace(testPub2, "+", "*", 1) + "\n",
			[]string{`t.conf:2: PublicKey "6OR*er9yFbWdurKsK6qCZFHyyZu9MVNpFajakyatxCc=": not valid base64`}},
		{"key with non-zero trailing bits", "[Peer]\nPublicKey = " + trailingBits + "\n",
			[]string{`t.conf:2: PublicKey "` + trailingBits + `": non-zero trailing bits: not a key that wg wrote`}},
		{"zero public key", "[Peer]\nPublicKey = " + zeroKey + "\n",
			[]string{`t.conf:2: PublicKey "` + zeroKey + `": all-zero key (wg reads it as no key; wgnet needs a real one)`}},
		{"bad private key is not echoed", "[Interface]\nPrivateKey = " + testPriv[:43] + "A\n",
			[]string{`t.conf:2: PrivateKey: must be 44 base64 characters ending in "="`}},
		{"bad preshared key is not echoed", peer + "PresharedKey = " + trailingBits + "\n",
			[]string{`t.conf:3: PresharedKey: non-zero trailing bits: not a key that wg wrote`}},
		{"prefix too long v4", peer + "AllowedIPs = 10.0.0.0/33\n",
			[]string{`t.conf:3: AllowedIPs "10.0.0.0/33": prefix length must be 0-32`}},
		{"prefix too long v6", peer + "AllowedIPs = fd00::/129\n",
			[]string{`t.conf:3: AllowedIPs "fd00::/129": prefix length must be 0-128`}},
		{"prefix length not a number", peer + "AllowedIPs = 10.0.0.0/x\n",
			[]string{`t.conf:3: AllowedIPs "10.0.0.0/x": prefix length must be 0-32`}},
		{"not an IP", peer + "AllowedIPs = 10.0.0.0/8, example.com/32\n",
			[]string{`t.conf:3: AllowedIPs "example.com/32": not an IP address`}},
		{"zone", peer + "AllowedIPs = fe80::1%eth0\n",
			[]string{`t.conf:3: AllowedIPs "fe80::1%eth0": an IP address with a zone can't be used here`}},
		{"empty list entry", peer + "AllowedIPs = 10.0.0.0/8,,10.1.0.0/16\n",
			[]string{`t.conf:3: AllowedIPs "10.0.0.0/8,,10.1.0.0/16": empty entry in the list`}},
		{"incremental entry", peer + "AllowedIPs = -10.0.0.0/8\n",
			[]string{`t.conf:3: AllowedIPs "-10.0.0.0/8": a "+" or "-" in front is for "wg set", not for a config file`}},
		{"bad address", "[Interface]\nAddress = 10.0.0.1/24, 10.0.0.300\n",
			[]string{`t.conf:2: Address "10.0.0.300": not an IP address`}},
		{"listen port out of range", "[Interface]\nListenPort = 65536\n",
			[]string{`t.conf:2: ListenPort "65536": must be a port number 0-65535`}},
		{"listen port negative", "[Interface]\nListenPort = -1\n",
			[]string{`t.conf:2: ListenPort "-1": must be a port number 0-65535`}},
		{"fwmark out of range", "[Interface]\nFwMark = 0x100000000\n",
			[]string{`t.conf:2: FwMark "0x100000000": must be off or a number 0-4294967295 (decimal or 0x hex)`}},
		{"fwmark upper-case X", "[Interface]\nFwMark = 0XFF\n",
			[]string{`t.conf:2: FwMark "0XFF": must be off or a number 0-4294967295 (decimal or 0x hex)`}},
		{"keepalive out of range", peer + "PersistentKeepalive = 65536\n",
			[]string{`t.conf:3: PersistentKeepalive "65536": must be off or 0-65535 seconds`}},
		{"mtu out of range", "[Interface]\nMTU = 67\n",
			[]string{`t.conf:2: MTU "67": must be a number 68-65535`}},
		{"table with a space", "[Interface]\nTable = my table\n",
			[]string{`t.conf:2: Table "my table": must be off, auto, a table number or a table name`}},
		{"dns not an address", "[Interface]\nDNS = 1.1.1.1, 10.0.0\n",
			[]string{`t.conf:2: DNS "10.0.0": not an IP address or a search domain`}},
		{"save config", "[Interface]\nSaveConfig = yes\n",
			[]string{`t.conf:2: SaveConfig "yes": must be true or false`}},
		{"missing port", peer + "Endpoint = 1.2.3.4\n",
			[]string{`t.conf:3: Endpoint "1.2.3.4": missing port`}},
		{"missing port v6", peer + "Endpoint = [fd00::1]\n",
			[]string{`t.conf:3: Endpoint "[fd00::1]": missing port`}},
		{"endpoint scheme", peer + "Endpoint = udp://1.2.3.4:51820\n",
			[]string{`t.conf:3: Endpoint "udp://1.2.3.4:51820": must be host:port, without a scheme`}},
		{"endpoint v6 without brackets or port", peer + "Endpoint = fd00::1\n",
			[]string{`t.conf:3: Endpoint "fd00::1": an IPv6 address needs brackets: [addr]:port`}},
		{"endpoint v6 without brackets, port 0", peer + "Endpoint = fd00::1:0\n",
			[]string{`t.conf:3: Endpoint "fd00::1:0": port "0" must be 1-65535`}},
		{"endpoint v6 without brackets, bad address", peer + "Endpoint = fd00::1::2:51820\n",
			[]string{`t.conf:3: Endpoint "fd00::1::2:51820": an IPv6 address needs brackets: [addr]:port`}},
		{"wg-quick key under a spaced header", "[ Interface ]\nMTU = 1420\n",
			[]string{`t.conf:2: MTU: wg-quick reads its keys only under a header written exactly "[Interface]" (line 1)`}},
		{"wg-quick key with a space inside", "[Interface]\nSave Config = true\n",
			[]string{`t.conf:2: unknown key "Save Config" in [Interface]: wg-quick reads SaveConfig only when written without spaces inside`}},
		{"every error, in line order", "[Interface]\nListenPort = x\n[Peer]\nEndpoint = 1.2.3.4\n[Bogus]\nFoo = bar\n[Peer]\nPublicKey = " + testPub3 + "\nAllowedIPs = 10.0.0.0/40\n",
			[]string{
				`t.conf:2: ListenPort "x": must be a port number 0-65535`,
				`t.conf:3: [Peer] has no PublicKey`,
				`t.conf:4: Endpoint "1.2.3.4": missing port`,
				`t.conf:5: unknown section "[Bogus]" (want [Interface] or [Peer])`,
				`t.conf:9: AllowedIPs "10.0.0.0/40": prefix length must be 0-32`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.conf", []byte(tt.src))
			if cfg == nil {
				t.Fatal("Parse returned a nil Config")
			}
			var got []string
			for _, e := range diag.FromError(err) {
				if e.Severity != diag.Error || e.Code != CodeSyntax {
					t.Errorf("%v: not a syntax error", e)
				}
				got = append(got, e.Located())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if err != nil && err.Error() != strings.Join(tt.want, "\n") {
				t.Errorf("err.Error() = %q, want the messages joined by newlines", err)
			}
		})
	}
}

func TestParseWarnings(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"host bits", "[Peer]\nPublicKey = " + testPub2 + "\nAllowedIPs = 10.0.0.1/24\n",
			[]string{`t.conf:3: AllowedIPs "10.0.0.1/24": host bits set; wg uses 10.0.0.0/24`}},
		{"key set twice", "[Interface]\nMTU = 1400\nmtu = 1420\n",
			[]string{`t.conf:3: MTU set again (first at line 2); the last one wins`}},
		{"zero private key", "[Interface]\nPrivateKey = " + zeroKey + "\n",
			[]string{`t.conf:2: PrivateKey is all zeros: wg reads that as "no private key"`}},
		{"same public key twice", "[Peer]\nPublicKey = " + testPub2 + "\n[Peer]\nPublicKey = " + testPub2 + "\n",
			[]string{`t.conf:4: PublicKey "` + testPub2 + `" also in the [Peer] at line 1; wg merges the two and the later settings win`}},
		{"a public key three times among others", "[Peer]\nPublicKey = " + testPub3 + "\n[Peer]\nPublicKey = " + testPub2 +
			"\n[Peer]\nPublicKey = " + testPub3 + "\n[Peer]\nPublicKey = " + testPub3 + "\n[Peer]\nPublicKey = " + testPub2 + "\n",
			[]string{
				`t.conf:6: PublicKey "` + testPub3 + `" also in the [Peer] at line 1; wg merges the two and the later settings win`,
				`t.conf:8: PublicKey "` + testPub3 + `" also in the [Peer] at line 1; wg merges the two and the later settings win`,
				`t.conf:10: PublicKey "` + testPub2 + `" also in the [Peer] at line 3; wg merges the two and the later settings win`,
			}},
		{"table in the wrong case", "[Interface]\nTable = Off\n",
			[]string{`t.conf:2: Table "Off": wg-quick compares this case-sensitively and reads it as a table name; write "off"`}},
		{"second [Interface] merges", "[Interface]\nListenPort = 1\n\n[interface]\nFwMark = 1\nListenPort = 2\n",
			[]string{
				`t.conf:4: a second [Interface] section (the first is at line 1): wg and wg-quick merge it into the first`,
				`t.conf:6: ListenPort set again (first at line 2); the last one wins`,
			}},
		{"endpoint v6 without brackets", "[Peer]\nPublicKey = " + testPub2 + "\nEndpoint = 2001:db8::82:51820\n",
			[]string{`t.conf:3: Endpoint "2001:db8::82:51820": an IPv6 address without brackets; wg takes what follows the last colon as the port, [2001:db8::82]:51820 (write it so)`}},
		{"hook cut inside quotes", "[Interface]\nPostUp = echo \"a # b\" > /tmp/x\nPostDown = echo ok # a comment\n",
			[]string{`t.conf:2: PostUp: the "#" is inside quotes, but wg-quick cuts the line there all the same and runs "echo \"a"`}},
		{"empty wg-quick values are not set", "[Interface]\nMTU =\nDNS =\nTable =\nAddress =\nAddress = ,\nPreUp =\nPostUp = # comment only\nPreDown=\nPostDown =\n", nil},
		{"repeatable keys do not warn", "[Interface]\nAddress = 10.0.0.1\nAddress = 10.0.0.2\nPostUp = a\nPostUp = b\nDNS = 1.1.1.1\nDNS = 8.8.8.8\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warns, err := ParseWithWarnings("t.conf", []byte(tt.src))
			if err != nil {
				t.Fatalf("warnings must not fail the parse: %v", err)
			}
			var got []string
			for _, w := range warns {
				if w.Severity != diag.Warning || w.Code != CodeParseWarning {
					t.Errorf("%v: not a parse warning", w)
				}
				got = append(got, w.Located())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseFull checks every field of a file that uses every key.
func TestParseFull(t *testing.T) {
	src := `# wgnet: host s1
[Interface]
Address = 10.10.0.1/24, fd10::1/64
Address = 10.10.1.1
ListenPort = 51820
PrivateKey = ` + testPriv + `
FwMark = 0x1234
MTU = 1420
DNS = 10.10.0.53, fd10::53 corp.example
Table = off
PreUp = echo  "two  spaces" # cut here, as wg-quick cuts it
PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1
PreDown = a
PostDown = b=c
SaveConfig = True

# s2
[Peer]
PublicKey = ` + testPub2 + `
PresharedKey = ` + testPSK + `
AllowedIPs = 10.10.0.2/32, fd10::2
allowedips = 192.168.2.0/24
Endpoint = 198.18.0.2:51820
PersistentKeepalive = 25

[Peer]
# s3
# the relay
PublicKey = ` + testPub3 + `
Endpoint = [fd18::3]:51821
PersistentKeepalive = off
`
	got, warns, err := ParseWithWarnings("s1.conf", []byte(src))
	if err != nil || len(warns) > 0 {
		t.Fatalf("err %v, warnings %v", err, warns)
	}
	want := &Config{
		Interface: Interface{
			PrivateKey: mustPrivate(t, testPriv),
			ListenPort: port(51820),
			FwMark:     0x1234,
			Addresses: []netip.Prefix{
				netip.MustParsePrefix("10.10.0.1/24"), netip.MustParsePrefix("fd10::1/64"),
				netip.MustParsePrefix("10.10.1.1/32"),
			},
			DNS:        []string{"10.10.0.53", "fd10::53", "corp.example"},
			MTU:        1420,
			Table:      "off",
			PreUp:      []string{`echo  "two  spaces"`},
			PostUp:     []string{"sysctl -q -w net.ipv4.conf.%i.forwarding=1"},
			PreDown:    []string{"a"},
			PostDown:   []string{"b=c"},
			SaveConfig: true,
			Comments:   []string{"wgnet: host s1"},
			Pos: Pos{File: "s1.conf", Line: 2, Address: []int{3, 3, 4},
				Keys: keyLines(map[string]int{
					KeyAddress: 3, KeyListenPort: 5, KeyPrivateKey: 6, KeyFwMark: 7, KeyMTU: 8,
					KeyDNS: 9, KeyTable: 10, KeyPreUp: 11, KeyPostUp: 12, KeyPreDown: 13,
					KeyPostDown: 14, KeySaveConfig: 15,
				})},
		},
		Peers: []Peer{
			{
				Name:         "s2",
				PublicKey:    wgkey.MustParseKey(testPub2),
				PresharedKey: wgkey.MustParseKey(testPSK),
				AllowedIPs: []netip.Prefix{
					netip.MustParsePrefix("10.10.0.2/32"), netip.MustParsePrefix("fd10::2/128"),
					netip.MustParsePrefix("192.168.2.0/24"),
				},
				Endpoint:            &Endpoint{Host: "198.18.0.2", Port: 51820},
				PersistentKeepalive: 25,
				Pos: PeerPos{Line: 18, AllowedIPs: []int{21, 21, 22},
					Keys: peerKeyLines(map[string]int{KeyPublicKey: 19, KeyPresharedKey: 20, KeyAllowedIPs: 21, KeyEndpoint: 23, KeyPersistentKeepalive: 24})},
			},
			{
				Name:      "s3",
				PublicKey: wgkey.MustParseKey(testPub3),
				Endpoint:  &Endpoint{Host: "fd18::3", Port: 51821},
				Comments:  []string{"the relay"},
				Pos: PeerPos{Line: 26,
					Keys: peerKeyLines(map[string]int{KeyPublicKey: 29, KeyEndpoint: 30, KeyPersistentKeepalive: 31})},
			},
		},
	}
	if diff := cmp.Diff(want, got, cmpConfig); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

// TestParseComments pins where comments go and which ones name a peer.
func TestParseComments(t *testing.T) {
	pk := "PublicKey = " + testPub2 + "\n"
	tests := []struct {
		name      string
		src       string
		iface     []string
		peerName  string
		peerNotes []string
	}{
		{"name above the header", "[Interface]\n\n# s2\n[Peer]\n" + pk, nil, "s2", nil},
		{"name below the header", "[Interface]\n[Peer]\n# s2\n" + pk, nil, "s2", nil},
		{"above wins, below is a comment", "# a\n[Peer]\n# b\n" + pk, nil, "a", []string{"b"}},
		{"two words are no name", "# the hub\n[Peer]\n" + pk, nil, "", []string{"the hub"}},
		{"a blank line detaches", "[Interface]\nMTU = 1420\n# end of interface\n\n[Peer]\n" + pk, []string{"end of interface"}, "", nil},
		{"blank line between name and header", "# s2\n\n[Peer]\n" + pk, nil, "", []string{"s2"}},
		{"not the first line inside", "[Peer]\n" + pk + "# s2\n", nil, "", []string{"s2"}},
		{"block above: last line names", "# about s2\n# more\n# s2\n[Peer]\n" + pk, nil, "s2", []string{"about s2", "more"}},
		{"top of file goes to the first section", "# generated\n\n[Interface]\n# note\n", []string{"generated", "note"}, "", nil},
		{"comment after a key", "[Interface]\nMTU = 1420 # trailing comments are dropped\n# kept\n", []string{"kept"}, "", nil},
		{"empty comment", "[Interface]\n#\n", []string{""}, "", nil},
		{"comments only", "# one\n\n# two\n", []string{"one", "two"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.conf", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.iface, cfg.Interface.Comments, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("interface comments (-want +got):\n%s", diff)
			}
			var name string
			var notes []string
			if len(cfg.Peers) > 0 {
				name, notes = cfg.Peers[0].Name, cfg.Peers[0].Comments
			}
			if name != tt.peerName {
				t.Errorf("peer name %q, want %q", name, tt.peerName)
			}
			if diff := cmp.Diff(tt.peerNotes, notes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("peer comments (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParsePartial checks that a file with errors still yields what parsed.
func TestParsePartial(t *testing.T) {
	src := "[Interface]\nListenPort = 51820\nMTU = huge\n[Peer]\nPublicKey = " + testPub2 +
		"\nAllowedIPs = 10.0.0.0/8, 10.0.0.0/99, 10.1.0.0/16\nEndpoint = nowhere\n"
	cfg, err := Parse("t.conf", []byte(src))
	if len(diag.FromError(err)) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	want := &Config{
		Interface: Interface{ListenPort: port(51820)},
		Peers: []Peer{{
			PublicKey:  wgkey.MustParseKey(testPub2),
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/16")},
		}},
	}
	if diff := cmp.Diff(want, cfg, ignorePositions()); diff != "" {
		t.Errorf("partial config (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{6, 6}, cfg.Peers[0].Pos.AllowedIPs); diff != "" {
		t.Errorf("AllowedIPs lines must stay parallel to AllowedIPs (-want +got):\n%s", diff)
	}
	if got := cfg.Interface.Pos.KeyLine(KeyMTU); got != 3 {
		t.Errorf("a bad key's line is still recorded: KeyLine(MTU) = %d, want 3", got)
	}
	if diff := cmp.Diff(map[string]int{KeyMTU: 3}, cfg.Interface.Pos.Bad); diff != "" {
		t.Errorf("Interface.Pos.Bad (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{KeyAllowedIPs: 6, KeyEndpoint: 7}, cfg.Peers[0].Pos.Bad); diff != "" {
		t.Errorf("Peer.Pos.Bad (-want +got):\n%s", diff)
	}
}

// TestParseBad checks which values a bad line makes unknown (Pos.Bad): only its
// own, or, when its key can't be read, any of its section's.
func TestParseBad(t *testing.T) {
	peer := "[Peer]\nPublicKey = " + testPub2 + "\n"
	tests := []struct {
		name, src        string
		iface, firstPeer map[string]int
	}{
		{"clean", "[Interface]\nListenPort = 1\n" + peer + "Endpoint = h:1\n", nil, nil},
		{"endpoint without port", "[Interface]\n" + peer + "Endpoint = 107.100.10.10\n", nil, map[string]int{KeyEndpoint: 4}},
		{"misspelt key", "[Interface]\n" + peer + "Endpont = h:1\n", nil, map[string]int{"": 4}},
		{"missing equals", "[Interface]\n[Peer]\nPublicKey " + testPub2 + "\n", nil, map[string]int{KeyPublicKey: 3}},
		{"no public key", "[Interface]\n[Peer]\nAllowedIPs = 10.0.0.1\n", nil, map[string]int{KeyPublicKey: 2}},
		{"interface key in a peer", "[Interface]\n" + peer + "Address = 10.0.0.1/24\n", nil, map[string]int{"": 4}},
		{"empty value", "[Interface]\nListenPort =\n", map[string]int{KeyListenPort: 2}, nil},
		{"empty wg-quick value is not bad", "[Interface]\nDNS =\n", nil, nil},
		{"unknown section", "[Interface]\n[Peers]\nPublicKey = " + testPub2 + "\n", map[string]int{"": 2}, nil},
		{"before any section", "ListenPort = 1\n[Interface]\n", map[string]int{"": 1}, nil},
		{"duplicate interface", "[Interface]\n[Interface]\n", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := Parse("t.conf", []byte(tt.src))
			if diff := cmp.Diff(tt.iface, cfg.Interface.Pos.Bad); diff != "" {
				t.Errorf("Interface.Pos.Bad (-want +got):\n%s", diff)
			}
			var got map[string]int
			if len(cfg.Peers) > 0 {
				got = cfg.Peers[0].Pos.Bad
			}
			if diff := cmp.Diff(tt.firstPeer, got); diff != "" {
				t.Errorf("Peers[0].Pos.Bad (-want +got):\n%s", diff)
			}
		})
	}
}

// TestErrorsTruncateValues: a huge value is never echoed whole.
func TestErrorsTruncateValues(t *testing.T) {
	huge := strings.Repeat("é", 1<<20) // 2 MiB, multi-byte to test the cut
	for _, line := range []string{"Endpoint = " + huge, "AllowedIPs = " + huge, "PublicKey = " + huge, "Zzz" + huge + " = 1"} {
		_, err := Parse("x.conf", []byte("[Peer]\n"+line+"\n[Interface]\nMTU = "+huge+"\n[Peers"+huge+"]\n"))
		if err == nil {
			t.Fatalf("%.20q parsed", line)
		}
		for _, e := range diag.FromError(err) {
			if len(e.Message) > 300 || !utf8.ValidString(e.Message) {
				t.Errorf("%.20q: message of %d bytes (valid UTF-8: %v): %.300s", line, len(e.Message), utf8.ValidString(e.Message), e.Message)
			}
		}
	}
	_, err := Parse("x.conf", []byte("[Peer]\nPublicKey = "+testPub2+"\nEndpoint = "+strings.Repeat("a", 100)+"\n"))
	want := `Endpoint "` + strings.Repeat("a", 64) + `"… (100 bytes): missing port`
	if got := diag.FromError(err)[0].Message; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in      string
		want    Endpoint
		wantErr string
	}{
		{"198.18.0.1:51820", Endpoint{"198.18.0.1", 51820}, ""},
		{"[fd00::1]:1", Endpoint{"fd00::1", 1}, ""},
		{"vpn.example.com:51820", Endpoint{"vpn.example.com", 51820}, ""},
		{"", Endpoint{}, "endpoint is empty"},
		{"198.18.0.1", Endpoint{}, `endpoint "198.18.0.1": missing port`},
		{"198.18.0.1:0", Endpoint{}, `endpoint "198.18.0.1:0": port "0" must be 1-65535`},
		{"198.18.1:51820", Endpoint{}, `endpoint "198.18.1:51820": "198.18.1" is not an IP address or host name`},
		{"1.2.3.4.5:1", Endpoint{}, `endpoint "1.2.3.4.5:1": "1.2.3.4.5" is not an IP address or host name`},
		{"[198.18.0.1]:1", Endpoint{}, `endpoint "[198.18.0.1]:1": "198.18.0.1" is not an IPv6 address`},
		{"198.18.0.0/16:1", Endpoint{}, `endpoint "198.18.0.0/16:1": must be host:port, not a CIDR`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEndpoint(tt.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr || got != tt.want {
				t.Errorf("ParseEndpoint(%q) = %v, %q; want %v, %q", tt.in, got, gotErr, tt.want, tt.wantErr)
			}
			if err == nil && got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

// TestErrorsHidePastedKeys: a private key pasted into the wrong line is not echoed.
func TestErrorsHidePastedKeys(t *testing.T) {
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"AllowedIPs = " + k.Base64(), "Endpoint = " + k.Base64(), "AllowedIPs = 10.0.0.0/8, " + k.Base64()} {
		_, err := Parse("x.conf", []byte("[Peer]\nPublicKey = "+k.Public().String()+"\n"+line+"\n"))
		if err == nil {
			t.Fatalf("%q parsed", line)
		}
		if strings.Contains(err.Error(), k.Base64()) {
			t.Errorf("%q: error echoes the key: %v", line, err)
		}
	}
}

// keyLines returns the KeyLines of m, key name → line.
func keyLines(m map[string]int) KeyLines {
	var k KeyLines
	for name, n := range m {
		k.set(name, n)
	}
	return k
}

func peerKeyLines(m map[string]int) PeerKeyLines {
	var k PeerKeyLines
	for name, n := range m {
		k[keyIndex(name)-firstPeerKey] = int32(n)
	}
	return k
}

// TestPeerKeysLast checks what PeerKeyLines relies on: the [Peer] keys are the
// last of keyNames, from firstPeerKey on.
func TestPeerKeysLast(t *testing.T) {
	for i, k := range keyNames {
		if peerKey[i] != (i >= firstPeerKey) {
			t.Errorf("keyNames[%d] = %s: a [Peer] key is %v, want %v", i, k, peerKey[i], i >= firstPeerKey)
		}
	}
}
