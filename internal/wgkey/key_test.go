package wgkey

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

func TestParseKeyStrict(t *testing.T) {
	good := "YJtm8zXGUQ7U4ciO/5Rjk6wR7LZjR9ZxU9fcVvYqM0o="
	tests := []struct {
		in      string
		wantErr string
	}{
		{good, ""},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", ""}, // zero key parses; callers check IsZero
		{"YJtm8zXGUQ7U4ciO/5Rjk6wR7LZjR9ZxU9fcVvYqM0o", "44 base64"},
		{"YJtm8zXGUQ7U4ciO/5Rjk6wR7LZjR9ZxU9fcVvYqM0p=", "non-zero trailing bits"},
		{"YJtm8zXGUQ7U4ciO/5Rjk6wR7LZjR9ZxU9fcVvYq!0o=", "invalid base64"},
		{"", "44 base64"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseKey(tt.in)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("ParseKey(%q) = %v, want ok", tt.in, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("ParseKey(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestPrivateNeverPrints(t *testing.T) {
	k, err := GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	b64 := k.Base64()
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %x %q", k, k, k, k, k, k), fmt.Sprint(struct{ K Private }{k})} {
		if strings.Contains(s, b64) || strings.Contains(s, k.Hex()) {
			t.Errorf("formatted private key leaks it: %q", s)
		}
	}
	if _, err := json.Marshal(struct{ K Private }{k}); err == nil {
		t.Error("json.Marshal of a private key succeeded, want a refusal")
	}
}

// TestAgainstWg checks byte compatibility with the real wg(8): the same public
// key for generated and for unclamped random private keys, and wg accepts ours.
func TestAgainstWg(t *testing.T) {
	if _, err := exec.LookPath("wg"); err != nil {
		t.Skip("wg (wireguard-tools) not installed")
	}
	for i := 0; i < 20; i++ {
		var raw [Len]byte
		rand.Read(raw[:])
		in := base64.StdEncoding.EncodeToString(raw[:])
		if i%2 == 0 {
			k, _ := GeneratePrivate()
			in = k.Base64()
		}
		p, err := ParsePrivate(in)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("wg", "pubkey")
		cmd.Stdin = strings.NewReader(in + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("wg pubkey: %v", err)
		}
		if got, want := p.Public().String(), strings.TrimSpace(string(out)); got != want {
			t.Errorf("Public(%d) = %s, wg pubkey = %s", i, got, want)
		}
	}
}

func TestGeneratedKeysAreClamped(t *testing.T) {
	for i := 0; i < 100; i++ {
		k, _ := GeneratePrivate()
		if k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
			t.Fatalf("key %d not clamped", i)
		}
	}
}

func TestValidPath(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/etc/wireguard/wg0.key", true},
		{"/etc/wireguard/host-1_a+b.key", true},
		{"/k", true},
		{"/", false},
		{"", false},
		{"wg0.key", false},
		{"./wg0.key", false},
		{"/etc/wireguard/../shadow", false},
		{"/etc/..", false},
		{"/etc/..x/k", true},
		{"/etc/wireguard/x.key; touch /tmp/pwned", false},
		{"/etc/wireguard/x.key;touch", false},
		{"/etc/$(id)", false},
		{"/etc/`id`", false},
		{"/etc/a b", false},
		{"/etc/a\nb", false},
		{"/etc/a|b", false},
		{"/etc/a&b", false},
		{"/etc/<(cat)", false},
		{"/etc/'a'", false},
		{"/etc/~root", false},
		{"/etc/a*", false},
	} {
		if got := ValidPath(tt.path); got != tt.want {
			t.Errorf("ValidPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestLeaked: a key is found in each form it could travel in, and not in a
// text that holds only its public half.
func TestLeaked(t *testing.T) {
	k, err := GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	raw := k[:]
	for _, form := range []string{string(raw), k.Base64(), strings.TrimRight(k.Base64(), "="),
		base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw), k.Hex(), strings.ToUpper(k.Hex())} {
		if !Leaked([]byte(`{"x":"`+form+`"}`), k) {
			t.Errorf("a key written as %q not found", form)
		}
	}
	if Leaked([]byte(`{"public_key":"`+k.Public().String()+`"}`), k) {
		t.Error("the public key taken for the private one")
	}
}
