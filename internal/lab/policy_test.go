package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/policy"
	"github.com/wgnet/wgnet/internal/policy/policytest"
	"github.com/wgnet/wgnet/internal/spec"
)

func loadPolicy(t *testing.T, name string) *spec.Spec {
	t.Helper()
	s, err := spec.Load(filepath.Join("..", "policy", "testdata", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// policyRun runs the network of s in the lab, probing ICMP, TCP to ProbePort
// and TCP to 5432 between every pair, held to s's policy when it has one.
func policyRun(t *testing.T, s *spec.Spec) *Matrix {
	t.Helper()
	return policyRunPorts(t, s, []uint16{5432}, nil)
}

// policyRunPorts is policyRun probing the given TCP and UDP ports.
func policyRunPorts(t *testing.T, s *spec.Spec, tcpPorts, udpPorts []uint16) *Matrix {
	t.Helper()
	hosts, _, err := FromSpec(s, spec.Secrets{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{ProbeTimeout: 5 * time.Second, Ports: tcpPorts, UDPPorts: udpPorts}
	n := policy.Resolve(s) // without a policy: everything passes
	opts.Policy = func(p policy.Packet) policy.Verdict { return policy.Eval(&n.Filter, p) }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Start(ctx, hosts, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m, err := l.Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPolicyMatrix is the done criterion of segmentation in the lab: a hub
// with four spokes in two groups and a 4-host mesh, each host with a routed
// subnet, app → db on tcp/5432 only and the rest between the groups denied.
// Every probed port has a listener; the matrix must match the policy exactly,
// both ways, per protocol and port, overlay addresses and subnets; and a
// control run with the policy off reaches everything, so what is blocked is
// the policy's doing.
func TestPolicyMatrix(t *testing.T) {
	for _, name := range []string{"hub", "mesh"} {
		t.Run(name, func(t *testing.T) {
			s := loadPolicy(t, name)
			m := policyRun(t, s)
			counts := map[string]int{}
			for _, p := range m.Probes {
				for _, c := range p.Checks {
					counts[fmt.Sprintf("want %s, got %v", passText(c.Want), c.Result.OK)]++
					if c.Problem() {
						t.Errorf("%s → %s %s: got %v, the policy wants %s (%s)", p.From, p.To, c.Name(), c.Result.OK, passText(c.Want), c.Rule)
					}
					// The exact expectation, spelled out: between app and db only
					// app → db on tcp/5432 passes.
					fromApp, toApp := group(p.From) == "app", group(p.To.Host) == "app"
					fromDB, toDB := group(p.From) == "db", group(p.To.Host) == "db"
					want := !(fromApp && toDB || fromDB && toApp) || fromApp && toDB && c.Proto == "tcp" && c.Port == 5432
					if c.Want != want {
						t.Errorf("%s → %s %s: the policy says %v (%s), the test expects %v", p.From, p.To, c.Name(), c.Want, c.Rule, want)
					}
				}
			}
			t.Logf("%s: %d probes, checks: %v", name, len(m.Probes), counts)
			if counts["want blocked, got false"] == 0 || counts["want pass, got true"] == 0 {
				t.Errorf("the run proves one side only: %v", counts)
			}

			s.Policy = spec.Policy{} // control: no policy
			control := policyRun(t, s)
			failed := 0
			for _, p := range control.Probes {
				for _, c := range p.Checks {
					if !c.Result.OK {
						failed++
						t.Errorf("control run: %s → %s %s blocked: %s", p.From, p.To, c.Name(), c.Result.Err)
					}
				}
			}
			if len(control.Probes) != len(m.Probes) {
				t.Errorf("control run probed %d pairs, the policy run %d", len(control.Probes), len(m.Probes))
			}
			t.Logf("control: %d probes, %d checks blocked", len(control.Probes), failed)
		})
	}
}

func group(host string) string {
	switch host {
	case "app1", "app2":
		return "app"
	case "db1", "db2":
		return "db"
	}
	return ""
}

// TestPolicyArticle is the article's case in the lab: s3's container subnet
// is unreachable from s2 and from s2's containers, on every protocol probed,
// and reachable from s1 and s4 and theirs; everything else passes.
func TestPolicyArticle(t *testing.T) {
	m := policyRun(t, loadPolicy(t, "article"))
	blocked := 0
	for _, p := range m.Probes {
		toSubnet := p.To.Host == "s3" && p.To.Subnet.IsValid()
		for _, c := range p.Checks {
			want := !(p.From == "s2" && toSubnet)
			if c.Result.OK != want || c.Problem() {
				t.Errorf("%s → %s %s: got %v, want %v (%s)", p.fromText(), p.To, c.Name(), c.Result.OK, want, c.Rule)
			}
			if !c.Result.OK {
				blocked++
			}
		}
	}
	if blocked != 6 { // s2 and its container → s3's container: icmp, tcp/7, tcp/5432
		t.Errorf("%d checks blocked, want 6", blocked)
	}
}

// TestPolicyUDP: UDP ports a rule names are probed (every address echoes on
// them) and held to the policy: the article's network with s4 kept off udp/53
// of s3 and its subnet.
func TestPolicyUDP(t *testing.T) {
	s := loadPolicy(t, "article")
	r, err := spec.ParseRule("deny s4 -> s3 udp 53")
	if err != nil {
		t.Fatal(err)
	}
	s.Policy.Rules = append([]spec.Rule{r}, s.Policy.Rules...)
	n := policy.Resolve(s)
	udp := policy.ProbePorts(policy.UDP, &n.Filter)
	if len(udp) != 1 || udp[0] != 53 {
		t.Fatalf("udp ports %v, want [53]", udp)
	}
	m := policyRunPorts(t, s, nil, udp)
	blocked := 0
	for _, p := range m.Probes {
		for _, c := range p.Checks {
			if c.Problem() {
				t.Errorf("%s → %s %s: got %v, the policy wants %s (%s): %s", p.From, p.To, c.Name(), c.Result.OK, passText(c.Want), c.Rule, c.Result.Err)
			}
			if c.Proto == "udp" && !c.Result.OK {
				blocked++
				if p.To.Host != "s3" || p.From != "s4" && !(p.From == "s2" && p.To.Subnet.IsValid()) {
					t.Errorf("%s → %s udp/53 blocked", p.From, p.To)
				}
			}
		}
	}
	if blocked != 6 { // s4 and its subnet → s3's address and subnet, s2 and its subnet → s3's subnet (rule 1)
		t.Errorf("%d udp/53 checks blocked, want 6", blocked)
	}
}

// TestPolicyFilterAgreesWithReference feeds the lab's packet filter (what a
// node admits from its tunnel, as raw IP packets) 100,000 random packets and
// compares each verdict with the naive reference that reads the spec directly.
// Each packet meets a fresh flow table, so that only the rules decide.
func TestPolicyFilterAgreesWithReference(t *testing.T) {
	for _, name := range []string{"hub", "article", "mesh-deny"} {
		s := loadPolicy(t, name)
		hosts, _, err := FromSpec(s, spec.Secrets{})
		if err != nil {
			t.Fatal(err)
		}
		n := policy.Resolve(s)
		var pool []netip.Prefix
		for _, ps := range n.Hosts {
			pool = append(pool, ps...)
		}
		pool = append(pool, s.Subnets...)
		r := rand.New(rand.NewPCG(3, 4))
		node := &Node{}
		agreed, dropped := 0, 0
		for tries := 0; agreed < 100_000 && tries < 1_000_000; tries++ {
			h := &hosts[r.IntN(len(hosts))]
			p := policytest.RandomPacket(r, pool, []uint16{5431, 5432, 5433, 22})
			relays := s.Topology == spec.TopologyHub && h.Name == s.Hub
			if !relays && !inAny(n.Hosts[h.Name], p.Dst) {
				continue // not a packet the host filters
			}
			st := &fwdState{filter: filterOf(h), flows: &flows{}}
			got := node.admit(st, rawPacket(p))
			want, rule := policytest.Reference(s, p)
			if got != want {
				t.Fatalf("%s: %s's lab filter admits %v, the reference says %v (rule %d)", p, h.Name, got, want, rule)
			}
			agreed++
			if !got {
				dropped++
			}
		}
		t.Logf("%s: %d packets agree (%d dropped)", name, agreed, dropped)
		if dropped == 0 || dropped == agreed || agreed < 100_000 {
			t.Errorf("%s: one verdict only", name)
		}
	}
}

// TestPolicyFilterState: a reply to a flow the node sent passes a filter that
// drops its kind, and so does an ICMP error about it; a new flow does not.
func TestPolicyFilterState(t *testing.T) {
	s := loadPolicy(t, "mesh")
	hosts, _, err := FromSpec(s, spec.Secrets{})
	if err != nil {
		t.Fatal(err)
	}
	var db1 = &hosts[2]
	if db1.Name != "db1" {
		t.Fatalf("host 2 is %s", db1.Name)
	}
	node := &Node{}
	st := &fwdState{filter: filterOf(db1), flows: &flows{}}
	node.fwd.Store(st)
	a := netip.MustParseAddr
	app, db := a("192.168.100.11"), a("192.168.100.21")
	in := policy.Packet{Src: app, Dst: db, Proto: "tcp", Port: 80}
	if node.admit(st, rawPacket(in)) {
		t.Fatal("app1 → db1 tcp/80 admitted; the policy denies it")
	}
	node.track(rawPacketPorts(policy.Packet{Src: db, Dst: app, Proto: "tcp", Port: 80}, 40000)) // db1 connects out
	reply := rawPacketPorts(policy.Packet{Src: app, Dst: db, Proto: "tcp", Port: 40000}, 80)
	if !node.admit(st, reply) {
		t.Error("the reply to db1's own connection was dropped")
	}
	icmpErr := icmpError(app, db, rawPacketPorts(policy.Packet{Src: db, Dst: app, Proto: "tcp", Port: 80}, 40000))
	if !node.admit(st, icmpErr) {
		t.Error("an ICMP error about db1's own connection was dropped")
	}
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// rawPacket builds an IP packet for p: TCP or UDP to p.Port from port 33000,
// an ICMP echo request, or GRE for "other".
func rawPacket(p policy.Packet) []byte { return rawPacketPorts(p, 33000) }

func rawPacketPorts(p policy.Packet, sport uint16) []byte {
	var l4 []byte
	var proto byte
	switch p.Proto {
	case "tcp", "udp":
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], p.Port)
		proto = protoTCP
		if p.Proto == "udp" {
			proto = protoUDP
		}
	case "icmp":
		l4 = []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1}
		proto = protoICMP
		if p.Src.Is6() {
			l4[0], proto = 128, protoICMPv6
		}
	default:
		l4 = make([]byte, 8)
		proto = 47
	}
	if p.Src.Is6() {
		b := make([]byte, 40, 40+len(l4))
		b[0] = 0x60
		binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
		b[6], b[7] = proto, 64
		copy(b[8:24], p.Src.AsSlice())
		copy(b[24:40], p.Dst.AsSlice())
		return append(b, l4...)
	}
	b := make([]byte, 20, 20+len(l4))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
	b[8], b[9] = 64, proto
	copy(b[12:16], p.Src.AsSlice())
	copy(b[16:20], p.Dst.AsSlice())
	return append(b, l4...)
}

// icmpError builds an ICMP fragmentation-needed from src to dst about orig.
func icmpError(src, dst netip.Addr, orig []byte) []byte {
	l4 := append([]byte{3, 4, 0, 0, 0, 0, 0x05, 0x00}, orig[:28]...)
	b := rawPacket(policy.Packet{Src: src, Dst: dst, Proto: "other"})[:20]
	b[9] = protoICMP
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
	return append(b, l4...)
}
