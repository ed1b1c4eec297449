package policy_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/policy"
	"github.com/wgnet/wgnet/internal/policy/policytest"
	"github.com/wgnet/wgnet/internal/spec"
)

// segSpec is a hub network of five hosts in groups, with IPv6, routed subnets,
// tags, a name pattern and prefixes in the policy.
const segSpec = `version: 1
network: seg
subnets: [192.168.100.0/24, fd00:100::/64]
topology: hub
hub: hub
hosts:
  - {name: hub, endpoint: "198.18.0.1:51820", address: [192.168.100.1, "fd00:100::1"], tags: [core]}
  - {name: app1, address: [192.168.100.11, "fd00:100::11"], routes: [10.1.0.0/24], tags: [app]}
  - {name: app2, address: [192.168.100.12], routes: [10.2.0.0/24, "fd00:2::/64"], tags: [app, web]}
  - {name: db1, address: [192.168.100.21, "fd00:100::21"], routes: [10.3.0.0/24], tags: [db]}
  - {name: db2, address: [192.168.100.22], routes: [10.4.0.0/24], tags: [db]}
policy:
  default: deny
  groups:
    app: [tag:app]
    db: [tag:db, 10.9.0.0/16]
    ops: [hub, "app*"]
  rules:
    - allow app -> db tcp 5432
    - deny app -> db
    - allow ops -> any icmp
    - allow tag:web -> 10.3.0.128/25 udp 53,1000-2000
    - allow 10.0.0.0/8 -> hub tcp 22
    - deny any -> 10.4.0.0/24
    - allow db -> app
`

func load(t testing.TB, src string) *spec.Spec {
	t.Helper()
	s, err := spec.Parse("seg.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEval(t *testing.T) {
	s := load(t, segSpec)
	n := policy.Resolve(s)
	a := netip.MustParseAddr
	for _, tc := range []struct {
		p      policy.Packet
		accept bool
		origin string
	}{
		{policy.Packet{Src: a("192.168.100.11"), Dst: a("10.3.0.5"), Proto: "tcp", Port: 5432}, true, "policy.rules[0]: allow app -> db tcp 5432"},
		{policy.Packet{Src: a("10.2.0.9"), Dst: a("10.9.3.3"), Proto: "tcp", Port: 5432}, true, "policy.rules[0]: allow app -> db tcp 5432"},
		{policy.Packet{Src: a("192.168.100.11"), Dst: a("10.3.0.5"), Proto: "tcp", Port: 5433}, false, "policy.rules[1]: deny app -> db"},
		{policy.Packet{Src: a("192.168.100.11"), Dst: a("192.168.100.1"), Proto: "icmp"}, true, "policy.rules[2]: allow ops -> any icmp"},
		{policy.Packet{Src: a("192.168.100.21"), Dst: a("192.168.100.1"), Proto: "icmp"}, false, "default deny"},
		{policy.Packet{Src: a("fd00:100::21"), Dst: a("fd00:2::5"), Proto: "udp", Port: 9}, true, "policy.rules[6]: allow db -> app"},
		{policy.Packet{Src: a("10.1.0.1"), Dst: a("192.168.100.1"), Proto: "tcp", Port: 22}, true, "policy.rules[4]: allow 10.0.0.0/8 -> hub tcp 22"},
	} {
		v := policy.Eval(&n.Filter, tc.p)
		if v.Accept != tc.accept || v.Origin != tc.origin {
			t.Errorf("%v: %v %q, want %v %q", tc.p, v.Accept, v.Origin, tc.accept, tc.origin)
		}
	}
}

// pool is every prefix the spec mentions.
func pool(s *spec.Spec, n *policy.Network) []netip.Prefix {
	var out []netip.Prefix
	for _, ps := range n.Hosts {
		out = append(out, ps...)
	}
	for _, r := range n.Filter.Rules {
		out = append(out, r.Src...)
		out = append(out, r.Dst...)
	}
	return append(out, s.Subnets...)
}

// TestAgreesWithReference checks the compiled filters against the naive
// reading of the spec on 100,000 random packets: the whole policy for every
// packet, and each host's filter for the packets it filters (those for itself
// and its subnets; the hub: all).
func TestAgreesWithReference(t *testing.T) {
	for _, src := range []string{segSpec, strings.Replace(segSpec, "default: deny", "default: allow", 1), randomPolicy(rand.New(rand.NewPCG(7, 7)))} {
		s := load(t, src)
		n := policy.Resolve(s)
		hosts := map[string]bool{}
		for _, h := range s.Hosts {
			hosts[h.Name] = h.Name == s.Hub
		}
		r := rand.New(rand.NewPCG(1, 2))
		pl := pool(s, n)
		checked, accepted := 0, 0
		for i := 0; i < 100_000; i++ {
			p := policytest.RandomPacket(r, pl, []uint16{22, 53, 999, 1000, 1500, 2000, 2001, 5431, 5432, 5433})
			want, rule := policytest.Reference(s, p)
			if want {
				accepted++
			}
			if v := policy.Eval(&n.Filter, p); v.Accept != want {
				t.Fatalf("%v: whole policy says %v (%s), the reference %v (rule %d)", p, v.Accept, v.Origin, want, rule)
			}
			for name, relays := range hosts {
				if !relays && !contains(n.Hosts[name], p.Dst) {
					continue
				}
				f := n.HostFilter(name, relays)
				checked++
				if v := policy.Eval(&f, p); v.Accept != want {
					t.Fatalf("%v: %s's filter says %v (%s), the reference %v (rule %d)", p, name, v.Accept, v.Origin, want, rule)
				}
			}
		}
		t.Logf("100000 packets (%d accepted), %d host-filter verdicts agree", accepted, checked)
		if accepted < 1000 || accepted > 99_000 {
			t.Errorf("%d of 100000 packets accepted: the test exercises one verdict only", accepted)
		}
	}
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// randomPolicy returns segSpec with 12 random rules over its groups, hosts,
// tags, patterns and prefixes.
func randomPolicy(r *rand.Rand) string {
	terms := []string{"any", "app", "db", "ops", "hub", "app1", "db2", "tag:web", "tag:core", "db*", "10.0.0.0/8", "10.3.0.0/25", "192.168.100.0/28", "fd00::/8", "fd00:100::21/128"}
	var b strings.Builder
	for i := 0; i < 12; i++ {
		verdict := []string{"allow", "deny"}[r.IntN(2)]
		fmt.Fprintf(&b, "    - %s %s -> %s", verdict, terms[r.IntN(len(terms))], terms[r.IntN(len(terms))])
		switch r.IntN(4) {
		case 0:
			b.WriteString(" tcp 5432,22")
		case 1:
			b.WriteString(" udp 1000-2000")
		case 2:
			b.WriteString(" icmp")
		}
		b.WriteString("\n")
	}
	head, _, _ := strings.Cut(segSpec, "  rules:\n")
	return head + "  rules:\n" + b.String()
}

// TestCanTalkFastAgrees: CanTalk's per-prefix shortcut gives the exact walk's
// answer (Allows both ways) for host prefixes, parts of them and random
// prefixes, on the test networks and random policies.
func TestCanTalkFastAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, src := range []string{segSpec, randomPolicy(rand.New(rand.NewPCG(8, 8))), randomPolicy(rand.New(rand.NewPCG(9, 9)))} {
		s := load(t, src)
		n := policy.Resolve(s)
		pl := pool(s, n)
		pick := func() netip.Prefix {
			p := pl[r.IntN(len(pl))]
			if r.IntN(3) == 0 { // a part of it
				bits := p.Bits() + r.IntN(p.Addr().BitLen()-p.Bits()+1)
				a := policytest.RandomPacket(r, []netip.Prefix{p}, nil).Src
				if a.Is4() == p.Addr().Is4() {
					p, _ = a.Prefix(bits)
				}
			}
			return p
		}
		for i := 0; i < 3000; i++ {
			a, b := pick(), pick()
			_, ab := policy.Allows(&n.Filter, []netip.Prefix{a}, []netip.Prefix{b})
			_, ba := policy.Allows(&n.Filter, []netip.Prefix{b}, []netip.Prefix{a})
			if got := n.CanTalk([]netip.Prefix{a}, []netip.Prefix{b}); got != (ab || ba) {
				t.Fatalf("CanTalk(%s, %s) = %v, the exact walk says %v", a, b, got, ab || ba)
			}
		}
	}
}
