package compile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/policy"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// policySpecs are the policy package's test networks.
var policySpecs = []string{"hub", "mesh", "mesh-deny", "article"}

// loadPolicySpec loads ../policy/testdata/NAME.yaml with fixed keys.
func loadPolicySpec(t *testing.T, name string) (*spec.Spec, spec.Secrets) {
	t.Helper()
	s, err := spec.Load(filepath.Join("..", "policy", "testdata", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sec := spec.Secrets{PrivateKeys: map[string]wgkey.Private{}}
	for i, h := range s.Hosts {
		sec.PrivateKeys[h.Name] = testKey(byte(10 + i))
	}
	return s, sec
}

// TestPolicyGolden compiles the policy test networks and compares each host's
// filter and peers with testdata/policy/NAME.txt.
func TestPolicyGolden(t *testing.T) {
	for _, name := range policySpecs {
		t.Run(name, func(t *testing.T) {
			s, sec := loadPolicySpec(t, name)
			got := compiledPolicy(t, s, sec)
			path := filepath.Join("testdata", "policy", name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", path, diff)
			}
			if again := compiledPolicy(t, s, sec); again != got {
				t.Error("two compilations differ")
			}
		})
	}
}

// compiledPolicy compiles s and renders every host's filter and peers.
func compiledPolicy(t *testing.T, s *spec.Spec, sec spec.Secrets) string {
	hcs, err := Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, hc := range hcs {
		fmt.Fprintf(&b, "## %s\n", hc.Name)
		b.WriteString(policy.Format(&hc.Firewall.Filter))
		for _, p := range hc.Peers {
			fmt.Fprintf(&b, "peer %s: %s\n", p.Name, joinPrefixes(p.AllowedIPs))
		}
	}
	return b.String()
}
