package compile

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGolden renders whole networks (fixed keys) and compares every host's
// wg-quick file with testdata/TOPOLOGY/HOST.conf.
func TestGolden(t *testing.T) {
	dual := func() (*spec.Spec, spec.Secrets) {
		s, sec := threeServers(spec.TopologyHub)
		s.Subnets = append(s.Subnets, netip.MustParsePrefix("fd00:100::/64"))
		for i := range s.Hosts {
			s.Hosts[i].Addresses = append(s.Hosts[i].Addresses, netip.MustParseAddr("fd00:100::"+string(rune('a'+i))))
		}
		s.Hosts[1].PublicKey = testKey(2).Public() // s2 keeps its own key
		delete(sec.PrivateKeys, "s2")
		s.Hosts[0].Hooks.PostUp = []string{"iptables -A FORWARD -i %i -j ACCEPT"}
		s.PresharedKeys = []spec.Pair{{"s1", "s3"}}
		sec.PresharedKeys = map[spec.Pair]wgkey.Key{{"s1", "s3"}: wgkey.Key(testKey(8))}
		return s, sec
	}
	cases := map[string]func() (*spec.Spec, spec.Secrets){
		"hub":  func() (*spec.Spec, spec.Secrets) { return threeServers(spec.TopologyHub) },
		"mesh": func() (*spec.Spec, spec.Secrets) { return threeServers(spec.TopologyMesh) },
		"dual": dual,
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			s, sec := mk()
			hcs, err := Compile(s, sec)
			if err != nil {
				t.Fatal(err)
			}
			for _, hc := range hcs {
				path := filepath.Join("testdata", name, hc.Name+".conf")
				got := hc.Config().WgQuick()
				if *update {
					os.MkdirAll(filepath.Dir(path), 0o755)
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (go test -update writes it)", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", path, diff)
				}
			}
		})
	}
}
