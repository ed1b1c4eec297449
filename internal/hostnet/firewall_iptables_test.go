package hostnet

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/iptables"
)

// saveOf is what iptables-save would print of f: each table with wgnet's
// chains declared and its rules, arguments quoted.
func saveOf(f iptFamily) string {
	var b strings.Builder
	for _, name := range iptablesTables {
		t := f[name]
		if t == nil {
			continue
		}
		b.WriteString("*" + name + "\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
		for _, c := range t.chains {
			b.WriteString(":" + c + " - [0:0]\n")
		}
		for _, r := range t.rules {
			b.WriteString("-A " + r.chain)
			for _, a := range r.args {
				b.WriteString(" " + iptables.Quote(a))
			}
			b.WriteString("\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// TestIptablesFirewallRoundTrip: every firewall of the conformance cases
// (and one whose ports need two multiport groups) reads back from what it
// writes, without a host.
func TestIptablesFirewallRoundTrip(t *testing.T) {
	pfx := netip.MustParsePrefix
	var ports []PortRange
	for p := uint16(1000); p < 1020; p += 2 {
		ports = append(ports, PortRange{p, p})
	}
	ports = append(ports, PortRange{2000, 2100}, PortRange{3000, 3100}, PortRange{4000, 4000}, PortRange{5000, 5001})
	cases := []Firewall{
		{Table: "wgnet-wg0"},
		{Table: "wgnet-wg0", ClampMSS: []string{"wg0", "br0"}, DropRedirects: []string{"wg0"}},
		{Table: "wgnet-wg0", Filter: &Filter{Iface: "wg0", Rules: []FilterRule{
			{Src: []netip.Prefix{pfx("10.1.0.0/24"), pfx("10.2.0.1/32")}, Dst: []netip.Prefix{pfx("10.4.0.0/24")}, Proto: "tcp", Ports: ports, Accept: true, Comment: `a "quoted" \ comment → db`},
			{V6: true, Proto: "icmp", Accept: true},
			{Proto: "udp"},
		}}},
	}
	for i, fw := range cases {
		v4 := ourIptables(iptables.ParseSave(saveOf(iptablesFirewall(fw, false))), fw.Table)
		v6 := ourIptables(iptables.ParseSave(saveOf(iptablesFirewall(fw, true))), fw.Table)
		got, found, err := readIptablesFirewall(fw.Table, v4, v6)
		if err != nil || !found {
			t.Fatalf("case %d: %v, found %v", i, err, found)
		}
		if diff := cmp.Diff(fw, got, cmpopts.EquateComparable(netip.Prefix{}), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("case %d (-want +got):\n%s", i, diff)
		}
	}
	if n := len(filterRuleArgs(0, cases[2].Filter.Rules[0])); n != 4 {
		t.Errorf("2 sources x 1 destination x 2 port groups: %d iptables rules", n)
	}
}

// TestIptablesFirewallInputGolden pins the restore input that replaces a
// table with a filter by one without: the jumps deleted, the chains kept
// emptied, the others emptied and deleted, the jumps inserted at the top.
func TestIptablesFirewallInputGolden(t *testing.T) {
	old := Firewall{Table: "wgnet-wg0", ClampMSS: []string{"wg0"}, Filter: &Filter{Iface: "wg0", DefaultAccept: true}}
	saved := iptables.ParseSave(saveOf(iptablesFirewall(old, false)))
	input, had := iptablesFirewallInput(saved, "wgnet-wg0", iptablesFirewall(Firewall{Table: "wgnet-wg0", DropRedirects: []string{"wg0"}}, false))
	want := "*mangle\n" +
		"-D FORWARD -m comment --comment wgnet-wg0 -j wgnet-wg0-fwd\n" +
		"-D OUTPUT -m comment --comment wgnet-wg0 -j wgnet-wg0-out\n" +
		"-D INPUT -m comment --comment wgnet-wg0 -j wgnet-wg0-in\n" +
		":wgnet-wg0-fwd - [0:0]\n:wgnet-wg0-out - [0:0]\n" +
		"-F wgnet-wg0-in\n-F wgnet-wg0-pol\n-X wgnet-wg0-in\n-X wgnet-wg0-pol\n" +
		"-I FORWARD 1 -m comment --comment wgnet-wg0 -j wgnet-wg0-fwd\n" +
		"-I OUTPUT 1 -m comment --comment wgnet-wg0 -j wgnet-wg0-out\n" +
		"-A wgnet-wg0-out -o wg0 -p icmp -m icmp --icmp-type 5 -j DROP\n" +
		"COMMIT\n"
	if diff := cmp.Diff(want, input); diff != "" || !had {
		t.Errorf("had %v (-want +got):\n%s", had, diff)
	}
	if input, had := iptablesFirewallInput(nil, "wgnet-wg0", nil); input != "" || had {
		t.Errorf("nothing to delete: %q, %v", input, had)
	}
}
