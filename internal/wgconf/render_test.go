package wgconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// goldenInputs are the corpus files whose renderings are pinned in
// testdata/render (-update rewrites them).
var goldenInputs = []string{
	"ok-full", "ok-names", "ok-case-space", "ok-no-interface", "ok-hooks-hash", "ok-zero-keys", "ok-off",
	"ok-second-interface", "ok-empty-values", "ok-endpoint-v6-unbracketed", "ok-wg-easy-server",
}

func TestRenderGolden(t *testing.T) {
	for _, name := range goldenInputs {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata/agreement", name+".conf"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(name+".conf", src)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata/render", name+".wg-quick.golden"), cfg.WgQuick())
			golden(t, filepath.Join("testdata/render", name+".stripped.golden"), cfg.Stripped())
		})
	}
	t.Run("built", func(t *testing.T) {
		cfg := builtConfig(t)
		golden(t, "testdata/render/built.wg-quick.golden", cfg.WgQuick())
		golden(t, "testdata/render/built.stripped.golden", cfg.Stripped())
	})
}

// builtConfig is a Config made in code, as the compiler makes them, with the
// cases a parsed file can't produce.
func builtConfig(t *testing.T) *Config {
	t.Helper()
	return &Config{
		Name: "hub",
		Interface: Interface{
			PrivateKey: mustPrivate(t, testPriv),
			ListenPort: port(0),
			Addresses:  []netip.Prefix{netip.MustParsePrefix("10.10.0.1/24")},
			MTU:        1420,
			PostUp:     []string{"sysctl -q -w net.ipv4.conf.%i.forwarding=1"},
			Comments:   []string{"wgnet: host hub (hub). Generated; edit the spec, not this file."},
		},
		Peers: []Peer{
			{Name: "s2", PublicKey: wgkey.MustParseKey(testPub2), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.10.0.2/32")}, PersistentKeepalive: 25},
			// No name, and a first comment that would read back as one.
			{PublicKey: wgkey.MustParseKey(testPub3), Comments: []string{"laptop", "kept as a comment"}},
		},
	}
}

// TestRenderRoundTrip: Parse(WgQuick(c)) is c (apart from Pos and Name), and
// rendering is a fixed point, for every corpus file that parses and for a
// built Config. Stripped() is WgQuick() without the wg-quick keys.
func TestRenderRoundTrip(t *testing.T) {
	configs := map[string]*Config{"built": builtConfig(t)}
	for _, path := range corpus(t) {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if cfg, err := Parse(path, src); err == nil {
			configs[filepath.Base(path)] = cfg
		}
	}
	if len(configs) < 10 {
		t.Fatalf("only %d configs to round-trip", len(configs))
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			out := cfg.WgQuick()
			back, warns, err := ParseWithWarnings("rendered.conf", out)
			if err != nil {
				t.Fatalf("WgQuick() does not parse: %v\n%s", err, out)
			}
			for _, w := range warns {
				if !strings.Contains(w.Message, "also in the [Peer]") { // duplicate keys stay duplicate
					t.Errorf("WgQuick() output warns: %v", w)
				}
			}
			if diff := cmp.Diff(cfg, back, ignorePositions()); diff != "" {
				t.Errorf("Parse(WgQuick(c)) != c (-want +got):\n%s", diff)
			}
			if again := back.WgQuick(); string(again) != string(out) {
				t.Errorf("WgQuick is not a fixed point:\n%s\nthen\n%s", out, again)
			}
			stripped, err := Parse("stripped.conf", cfg.Stripped())
			if err != nil {
				t.Fatalf("Stripped() does not parse: %v", err)
			}
			wgOnly := *cfg
			wgOnly.Interface = Interface{
				PrivateKey: cfg.Interface.PrivateKey, ListenPort: cfg.Interface.ListenPort,
				FwMark: cfg.Interface.FwMark, Comments: cfg.Interface.Comments,
			}
			if diff := cmp.Diff(&wgOnly, stripped, ignorePositions()); diff != "" {
				t.Errorf("Stripped() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderDetails(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty", Config{}, "[Interface]\n"},
		{"zero private key and zero PSK are left out, port 0 is not", Config{
			Interface: Interface{ListenPort: port(0)},
			Peers:     []Peer{{PublicKey: wgkey.MustParseKey(testPub2)}},
		}, "[Interface]\nListenPort = 0\n\n[Peer]\nPublicKey = " + testPub2 + "\n"},
		{"fwmark in hex, as wg showconf writes it", Config{Interface: Interface{FwMark: 51820}},
			"[Interface]\nFwMark = 0xca6c\n"},
		{"lists on one line", Config{Interface: Interface{
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")},
			DNS:       []string{"10.0.0.53", "corp.example"},
		}}, "[Interface]\nAddress = 10.0.0.1/24, fd00::1/64\nDNS = 10.0.0.53, corp.example\n"},
		{"a comment of several lines becomes several comments", Config{Interface: Interface{Comments: []string{"one\n  two  ", ""}}},
			"[Interface]\n# one\n# two\n#\n"},
		{"v6 endpoint in brackets", Config{Peers: []Peer{{Name: "s2", PublicKey: wgkey.MustParseKey(testPub2),
			Endpoint: &Endpoint{Host: "fd00::2", Port: 51820}}}},
			"[Interface]\n\n# s2\n[Peer]\nPublicKey = " + testPub2 + "\nEndpoint = [fd00::2]:51820\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(tt.cfg.WgQuick())); diff != "" {
				t.Errorf("WgQuick (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderNeverPrintsAZeroKey(t *testing.T) {
	cfg := &Config{Peers: []Peer{{PublicKey: wgkey.MustParseKey(testPub2), PresharedKey: wgkey.Key{}}}}
	for _, out := range [][]byte{cfg.WgQuick(), cfg.Stripped()} {
		if strings.Contains(string(out), zeroKey) || strings.Contains(string(out), "PrivateKey") {
			t.Errorf("zero key rendered:\n%s", out)
		}
	}
}
