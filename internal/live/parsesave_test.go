package live

import (
	"bufio"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// oldParseIptablesSave is parseIptablesSave as it was before it read through
// iptables.ParseSave, kept as the reference it must equal.
func oldParseIptablesSave(s, family string) []*Chain {
	var out []*Chain
	byName := map[string]*Chain{}
	table := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) < 2 {
				continue
			}
			c := &Chain{Family: family, Table: table, Chain: f[0]}
			if f[1] != "-" {
				c.Policy = strings.ToLower(f[1])
				c.Hook = strings.ToLower(f[0])
			}
			if old := byName[table+" "+f[0]]; old != nil {
				continue
			}
			byName[table+" "+f[0]] = c
			out = append(out, c)
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			c := byName[table+" "+f[1]]
			if c == nil {
				continue
			}
			c.Rules = append(c.Rules, parseIptablesRule(line, f[2:]))
		}
	}
	return out
}

// TestParseIptablesSaveSameAsBefore: the chains and rules read from a save of
// every kind of line wgnet meets (iptables/testdata/save.txt: iptables-save
// and ip6tables-save appended, as Ruleset's callers may give them) and from
// the test's own rulesets are exactly those the parser it replaced read.
func TestParseIptablesSaveSameAsBefore(t *testing.T) {
	b, err := os.ReadFile("../iptables/testdata/save.txt")
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{string(b), "", "*filter\n:FORWARD DROP [0:0]\n-A FORWARD\n-A FORWARD -i wg0 -j ACCEPT\n"}
	if n := len(parseIptablesSave(inputs[0], "ip")); n != 17 {
		t.Errorf("save.txt: %d chains, want 17", n)
	}
	for _, in := range inputs {
		for _, family := range []string{"ip", "ip6"} {
			if diff := cmp.Diff(oldParseIptablesSave(in, family), parseIptablesSave(in, family), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("%.40q (-old +new):\n%s", in, diff)
			}
		}
	}
}
