package dockerfw_test

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/dockerfw/dockerfwtest"
)

// oldParseSave is ParseSave as it was before it read through
// iptables.ParseSave, kept as the reference it must equal.
func oldParseSave(s string) map[string]*dockerfw.Table {
	out := map[string]*dockerfw.Table{}
	var t *dockerfw.Table
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			t = &dockerfw.Table{Policies: map[string]string{}, Chains: map[string][]string{}}
			out[line[1:]] = t
		case t == nil:
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) >= 2 {
				t.Chains[f[0]] = t.Chains[f[0]][:0:0]
				if f[1] != "-" {
					t.Policies[f[0]] = f[1]
				}
			}
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			t.Chains[chain] = append(t.Chains[chain], unquote(spec))
		}
	}
	return out
}

// TestParseSaveSameAsBefore: ParseSave reads every Docker generation's rules
// and a save of every kind of line wgnet meets (iptables/testdata/save.txt)
// exactly as the parser it replaced did.
func TestParseSaveSameAsBefore(t *testing.T) {
	b, err := os.ReadFile("../iptables/testdata/save.txt")
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]string{"save.txt": string(b), "empty": "", "no table": ":X - [0:0]\n-A X -j DROP\n"}
	for _, g := range []dockerfwtest.Generation{dockerfwtest.Docker20, dockerfwtest.Docker28, dockerfwtest.Docker28Routed} {
		inputs[string(g)] = dockerfwtest.DockerRules(g, "docker0", netip.MustParsePrefix("172.17.0.0/16"), []netip.Addr{netip.MustParseAddr("172.17.0.2")})
	}
	for name, in := range inputs {
		if diff := cmp.Diff(oldParseSave(in), dockerfw.ParseSave(in)); diff != "" {
			t.Errorf("%s (-old +new):\n%s", name, diff)
		}
	}
}

// unquote is dockerfw's, as it was.
func unquote(spec string) string {
	f := strings.Fields(spec)
	for i := range f {
		f[i] = strings.Trim(f[i], `"`)
	}
	return strings.Join(f, " ")
}
