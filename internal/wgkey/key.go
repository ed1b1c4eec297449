// Package wgkey owns WireGuard key material: Curve25519 private keys, public keys
// and preshared keys, their strict base64 form (as wg(8) reads and writes it) and
// the hex form used by the UAPI. It imports nothing of wgnet.
package wgkey

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// Len is the length in bytes of every WireGuard key.
const Len = 32

// Key is a public key or a preshared key. The zero Key means "no key", as in wg(8).
type Key [Len]byte

// Private is a Curve25519 private key. It never prints itself: String and the fmt
// verbs give "(redacted)". Use Base64 when the user asked for exactly the key.
type Private [Len]byte

var b64 = base64.StdEncoding.Strict()

// ErrZero is returned for an all-zero key, which wg(8) treats as "no key".
var ErrZero = errors.New("key is all zeros")

func decode(s string) ([Len]byte, error) {
	var k [Len]byte
	s = strings.TrimSpace(s)
	if len(s) != 44 || s[43] != '=' {
		return k, errors.New("must be 44 base64 characters ending in '='")
	}
	n, err := b64.Decode(k[:], []byte(s))
	if err != nil || n != Len {
		return k, errors.New("invalid base64 (or non-zero trailing bits)")
	}
	return k, nil
}

// abbrev keeps errors about public keys useful without echoing whole values.
func abbrev(s string) string {
	if len(s) > 8 {
		return s[:4] + "…" + s[len(s)-4:]
	}
	return s
}

// ParseKey parses a public or preshared key in wg's strict base64 form.
// An all-zero key parses (wg accepts it as "no key"); callers that need a real
// key check IsZero.
func ParseKey(s string) (Key, error) {
	k, err := decode(s)
	if err != nil {
		return Key{}, fmt.Errorf("key %q: %w", abbrev(s), err)
	}
	return Key(k), nil
}

// MustParseKey is ParseKey for tests; it panics on error.
func MustParseKey(s string) Key {
	k, err := ParseKey(s)
	if err != nil {
		panic(err)
	}
	return k
}

// ParsePrivate parses a private key in wg's strict base64 form. It keeps the bytes
// as given; Public clamps, as wg does when it derives the public key.
func ParsePrivate(s string) (Private, error) {
	k, err := decode(s)
	if err != nil {
		// Never quote any part of a private key.
		return Private{}, fmt.Errorf("private key: %w", err)
	}
	return Private(k), nil
}

// String returns the base64 form that wg(8) writes.
func (k Key) String() string { return b64.EncodeToString(k[:]) }

// Hex returns the lowercase hex form used by the UAPI.
func (k Key) Hex() string { return hex.EncodeToString(k[:]) }

// IsZero reports whether k is the all-zero "no key".
func (k Key) IsZero() bool { return k == Key{} }

// MarshalText makes keys appear in base64 in JSON and YAML.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses the strict base64 form.
func (k *Key) UnmarshalText(b []byte) error {
	p, err := ParseKey(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// GeneratePrivate returns a fresh clamped private key, like `wg genkey`.
func GeneratePrivate() (Private, error) {
	var p Private
	if _, err := rand.Read(p[:]); err != nil {
		return p, fmt.Errorf("generate private key: %w", err)
	}
	p.clamp()
	return p, nil
}

// GeneratePSK returns a fresh random preshared key, like `wg genpsk`.
func GeneratePSK() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("generate preshared key: %w", err)
	}
	return k, nil
}

func (p *Private) clamp() {
	p[0] &= 248
	p[31] = (p[31] & 127) | 64
}

// Public derives the public key, clamping first as wg pubkey does.
func (p Private) Public() Key {
	c := p
	c.clamp()
	var pub Key
	curve25519.ScalarBaseMult((*[32]byte)(&pub), (*[32]byte)(&c))
	return pub
}

// IsZero reports whether p is all zeros ("no key").
func (p Private) IsZero() bool { return p.Equal(Private{}) }

// Equal compares in constant time.
func (p Private) Equal(o Private) bool { return subtle.ConstantTimeCompare(p[:], o[:]) == 1 }

// Base64 returns the key in wg's form. Only for writing it where the user asked for it.
func (p Private) Base64() string { return b64.EncodeToString(p[:]) }

// Hex returns the UAPI form. Only for handing the key to a device.
func (p Private) Hex() string { return hex.EncodeToString(p[:]) }

// Leaked reports whether b holds one of keys in any form it could travel in:
// raw bytes, base64 (with and without padding, standard and URL-safe), hex in
// either case. For tests and audits that check a key never left its host.
func Leaked(b []byte, keys ...Private) bool {
	for _, k := range keys {
		raw := k[:]
		h := hex.EncodeToString(raw)
		for _, enc := range []string{string(raw), base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
			base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw), h, strings.ToUpper(h)} {
			if bytes.Contains(b, []byte(enc)) {
				return true
			}
		}
	}
	return false
}

// String never reveals the key.
func (p Private) String() string { return "(redacted)" }

// GoString never reveals the key.
func (p Private) GoString() string { return "wgkey.Private(redacted)" }

// Format makes every fmt verb print "(redacted)".
func (p Private) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("(redacted)")) }

// MarshalText refuses, so that a private key can't leak into JSON by accident.
func (p Private) MarshalText() ([]byte, error) {
	return nil, errors.New("wgkey: refusing to marshal a private key")
}
