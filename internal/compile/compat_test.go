package compile

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// compatSpecs are the spec files of the tree written before the spec learned
// the fields that keep a wg-quick file as it was (mtu: auto, a host's mtu,
// dns, table, fwmark, full_tunnel, assign_address, an address with its prefix
// length). Their goldens under testdata/compat were rendered by the compiler
// of that time.
var compatSpecs = []string{
	"../spec/testdata/example.yaml",
	"../spec/testdata/edit/commented.yaml",
	"../policy/testdata/article.yaml",
	"../policy/testdata/hub.yaml",
	"../policy/testdata/mesh.yaml",
	"../policy/testdata/mesh-deny.yaml",
}

// nameKey is a private key made from a name, the same in every run.
func nameKey(name string) wgkey.Private {
	k := wgkey.Private(sha256.Sum256([]byte("compat " + name)))
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

// TestOldSpecsCompileTheSame: every spec of the tree written before the new
// fields compiles to the same wg-quick files as before them, byte for byte:
// a spec that does not use them means what it meant.
func TestOldSpecsCompileTheSame(t *testing.T) {
	for _, path := range compatSpecs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := spec.Parse(path, src)
			if err != nil {
				t.Fatal(err)
			}
			sec := spec.Secrets{PrivateKeys: map[string]wgkey.Private{}, PresharedKeys: map[spec.Pair]wgkey.Key{}}
			for _, h := range s.Hosts {
				if h.PublicKey.IsZero() {
					sec.PrivateKeys[h.Name] = nameKey(h.Name)
				}
			}
			for _, p := range s.PresharedKeys {
				sec.PresharedKeys[p.Key()] = wgkey.Key(nameKey(p.Key()[0] + "+" + p.Key()[1]))
			}
			hcs, err := Compile(s, sec)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, hc := range hcs {
				b.WriteString("=== " + hc.Name + "\n")
				b.Write(hc.WgQuick())
			}
			golden := filepath.Join("testdata", "compat", strings.TrimSuffix(filepath.Base(path), ".yaml")+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), b.String()); diff != "" {
				t.Errorf("%s compiles differently (-before +now):\n%s", path, diff)
			}
		})
	}
}

// TestWgQuickFields: a host's own MTU (or automatic), DNS, Table, FwMark, an
// address with its own prefix length, addresses assigned elsewhere and a
// full-tunnel spoke reach the host's intent and its wg-quick file.
func TestWgQuickFields(t *testing.T) {
	src, err := os.ReadFile("../spec/testdata/wgquick-fields.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse("wgquick-fields.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	sec := spec.Secrets{PrivateKeys: map[string]wgkey.Private{"server": testKey(1), "laptop": testKey(2), "router": testKey(3)}}
	hcs, err := Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, hc := range hcs {
		byName[hc.Name] = string(hc.WgQuick())
	}
	for host, want := range map[string][]string{
		"server": {"Address = 10.8.0.1/24, fd42::1/64\n", "FwMark = 0xca6c\n", "MTU = 1380\n", "AllowedIPs = 10.8.0.3/32\n",
			"# partner\n[Peer]\n# " + intent.ExternalPeerComment() + "\nPublicKey = CbkMeKsD0Hfq8CR5lgftzc9WZhXskEr+NyT+hY+5XEM=\nAllowedIPs = 172.30.0.0/16\nEndpoint = 203.0.113.9:4500\n"},
		"laptop": {"Address = 10.8.0.2/32, fd42::2/128\n", "DNS = 10.8.0.1, vpn.internal\n", "Table = 1234\n",
			"AllowedIPs = 0.0.0.0/0, fd42::/64\n"},
		"router": {"AllowedIPs = 10.8.0.0/24, 10.20.0.0/16, 172.30.0.0/16, fd42::/64\n", "Table = off\n", "FwMark = 0xca6c\n"},
	} {
		for _, w := range want {
			if !strings.Contains(byName[host], w) {
				t.Errorf("%s's config has no %q:\n%s", host, w, byName[host])
			}
		}
	}
	if len(hcs) != 3 {
		t.Errorf("%d configs, want 3: none for the external host partner", len(hcs))
	}
	for _, host := range []string{"laptop", "router"} {
		if strings.Contains(byName[host], "MTU") {
			t.Errorf("%s's MTU is automatic (mtu: auto), yet its config says:\n%s", host, byName[host])
		}
	}
	if strings.Contains(byName["laptop"], "ListenPort") {
		t.Errorf("laptop's port is random (listen_port: random), yet its config says:\n%s", byName["laptop"])
	}
	if strings.Contains(byName["router"], "Address") {
		t.Errorf("router's addresses are assigned elsewhere, yet its config says:\n%s", byName["router"])
	}
}
