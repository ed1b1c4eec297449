package compile

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// testKey returns a deterministic private key for tests (never random: golden files).
func testKey(n byte) wgkey.Private {
	var k wgkey.Private
	for i := range k {
		k[i] = n + byte(i)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

// threeServers is the classic example: s1 the hub of 192.168.100.0/24, each host
// with a container subnet.
func threeServers(topology string) (*spec.Spec, spec.Secrets) {
	s := &spec.Spec{
		Version: 1, Network: "prod", Subnets: pfx("192.168.100.0/24"),
		Topology: topology,
		Hosts: []spec.Host{
			{Name: "s1", Endpoint: "107.100.10.10:51820", Addresses: addrs("192.168.100.10"), Routes: pfx("10.0.4.0/24")},
			{Name: "s2", Endpoint: "52.10.0.2:51820", Addresses: addrs("192.168.100.11"), Routes: pfx("10.0.5.0/24")},
			{Name: "s3", Addresses: addrs("192.168.100.12"), Routes: pfx("10.0.7.0/24"), Keepalive: 25},
		},
	}
	if topology == spec.TopologyHub {
		s.Hub = "s1"
	}
	sec := spec.Secrets{PrivateKeys: map[string]wgkey.Private{"s1": testKey(1), "s2": testKey(2), "s3": testKey(3)}}
	return s, sec
}

type peerView struct {
	Name      string
	Key       wgkey.Key
	Allowed   string
	Endpoint  string
	Keepalive int
}

func view(c *wgconf.Config) []peerView {
	var out []peerView
	for _, p := range c.Peers {
		v := peerView{Name: p.Name, Key: p.PublicKey, Keepalive: p.PersistentKeepalive}
		var a []string
		for _, x := range p.AllowedIPs {
			a = append(a, x.String())
		}
		v.Allowed = strings.Join(a, ",")
		if p.Endpoint != nil {
			v.Endpoint = p.Endpoint.String()
		}
		out = append(out, v)
	}
	return out
}

func TestCompileHub(t *testing.T) {
	s, sec := threeServers(spec.TopologyHub)
	got, err := Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	pub := func(n byte) wgkey.Key { return testKey(n).Public() }
	want := map[string][]peerView{
		"s1": {
			{Name: "s2", Key: pub(2), Allowed: "10.0.5.0/24,192.168.100.11/32", Endpoint: "52.10.0.2:51820"},
			{Name: "s3", Key: pub(3), Allowed: "10.0.7.0/24,192.168.100.12/32"},
		},
		"s2": {{Name: "s1", Key: pub(1), Allowed: "10.0.4.0/24,10.0.7.0/24,192.168.100.0/24", Endpoint: "107.100.10.10:51820"}},
		"s3": {{Name: "s1", Key: pub(1), Allowed: "10.0.4.0/24,10.0.5.0/24,192.168.100.0/24", Endpoint: "107.100.10.10:51820", Keepalive: 25}},
	}
	if len(got) != 3 {
		t.Fatalf("got %d hosts, want 3", len(got))
	}
	for _, hc := range got {
		if diff := cmp.Diff(want[hc.Name], view(hc.Config())); diff != "" {
			t.Errorf("%s peers (-want +got):\n%s", hc.Name, diff)
		}
		if !hc.Forward.V4 || hc.Forward.V6 {
			t.Errorf("%s: forward v4=%v v6=%v, want v4 only (every host routes a subnet)", hc.Name, hc.Forward.V4, hc.Forward.V6)
		}
		if got := hc.Config().Interface.Addresses; len(got) != 1 || got[0].Bits() != 24 {
			t.Errorf("%s: Address %v, want one /24", hc.Name, got)
		}
		if p := hc.Config().Interface.ListenPort; p == nil || *p != spec.DefaultListenPort {
			t.Errorf("%s: ListenPort %v, want %d always rendered", hc.Name, p, spec.DefaultListenPort)
		}
	}
}

func TestCompileMesh(t *testing.T) {
	s, sec := threeServers(spec.TopologyMesh)
	got, err := Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	pub := func(n byte) wgkey.Key { return testKey(n).Public() }
	want := map[string][]peerView{
		"s1": {
			{Name: "s2", Key: pub(2), Allowed: "10.0.5.0/24,192.168.100.11/32", Endpoint: "52.10.0.2:51820"},
			{Name: "s3", Key: pub(3), Allowed: "10.0.7.0/24,192.168.100.12/32"},
		},
		"s2": {
			{Name: "s1", Key: pub(1), Allowed: "10.0.4.0/24,192.168.100.10/32", Endpoint: "107.100.10.10:51820"},
			{Name: "s3", Key: pub(3), Allowed: "10.0.7.0/24,192.168.100.12/32"},
		},
		"s3": {
			{Name: "s1", Key: pub(1), Allowed: "10.0.4.0/24,192.168.100.10/32", Endpoint: "107.100.10.10:51820", Keepalive: 25},
			{Name: "s2", Key: pub(2), Allowed: "10.0.5.0/24,192.168.100.11/32", Endpoint: "52.10.0.2:51820", Keepalive: 25},
		},
	}
	for _, hc := range got {
		if diff := cmp.Diff(want[hc.Name], view(hc.Config())); diff != "" {
			t.Errorf("%s peers (-want +got):\n%s", hc.Name, diff)
		}
	}
}

func TestCompileHubWithoutRoutesForwardsOnlyOnHub(t *testing.T) {
	s, sec := threeServers(spec.TopologyHub)
	s.Subnets = append(s.Subnets, netip.MustParsePrefix("fd00:100::/64"))
	for i := range s.Hosts {
		s.Hosts[i].Routes = nil
	}
	got, err := Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	for _, hc := range got {
		wantFwd := hc.Name == "s1"
		if hc.Forward.V4 != wantFwd || hc.Forward.V6 != wantFwd {
			t.Errorf("%s: forward v4=%v v6=%v, want %v", hc.Name, hc.Forward.V4, hc.Forward.V6, wantFwd)
		}
		hasHook := strings.Contains(strings.Join(hc.Config().Interface.PostUp, "\n"), "forwarding=1")
		if hasHook != wantFwd {
			t.Errorf("%s: forwarding hook present=%v, want %v", hc.Name, hasHook, wantFwd)
		}
	}
}

func TestCompileHostKeepsOwnKey(t *testing.T) {
	s, sec := threeServers(spec.TopologyHub)
	own := testKey(9).Public()
	s.Hosts[1].PublicKey = own
	delete(sec.PrivateKeys, "s2")
	got, err := Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := got[0].Config(), got[1].Config()
	if s1.Peers[0].PublicKey != own {
		t.Errorf("hub's peer s2 key = %s, want the spec's public_key %s", s1.Peers[0].PublicKey, own)
	}
	if !s2.Interface.PrivateKey.IsZero() {
		t.Error("s2 got a private key though it keeps its own")
	}
	want := "wg set %i private-key /etc/wireguard/wg0.key"
	if len(s2.Interface.PostUp) == 0 || s2.Interface.PostUp[0] != want {
		t.Errorf("s2 PostUp = %q, want first %q", s2.Interface.PostUp, want)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*spec.Spec, *spec.Secrets)
		want   []string
	}{
		{"no key at all", func(s *spec.Spec, sec *spec.Secrets) { delete(sec.PrivateKeys, "s3") },
			[]string{"host s3: no public_key in the spec and no private key in the secrets"}},
		{"mismatched public key", func(s *spec.Spec, sec *spec.Secrets) { s.Hosts[0].PublicKey = testKey(7).Public() },
			[]string{"host s1: public_key", "does not match the private key"}},
		{"missing psk", func(s *spec.Spec, sec *spec.Secrets) { s.PresharedKeys = []spec.Pair{{"s2", "s1"}} },
			[]string{"preshared key for s1+s2 is missing"}},
		{"unknown hub", func(s *spec.Spec, sec *spec.Secrets) { s.Hub = "nope" },
			[]string{`hub "nope" is not a host`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, sec := threeServers(spec.TopologyHub)
			tt.mutate(s, &sec)
			_, err := Compile(s, sec)
			if err == nil {
				t.Fatal("Compile succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCompileIsDeterministic(t *testing.T) {
	s, sec := threeServers(spec.TopologyHub)
	a, _ := Compile(s, sec)
	// Reverse the host order: output must not depend on it.
	s.Hosts[0], s.Hosts[2] = s.Hosts[2], s.Hosts[0]
	b, _ := Compile(s, sec)
	for i := range a {
		if diff := cmp.Diff(view(a[i].Config()), view(b[i].Config())); diff != "" || a[i].Name != b[i].Name {
			t.Errorf("host %d differs with input order (-a +b):\n%s", i, diff)
		}
	}
}

func TestAddingSpokeWithoutRoutesChangesOnlyHub(t *testing.T) {
	s, sec := threeServers(spec.TopologyHub)
	before, _ := Compile(s, sec)
	s.Hosts = append(s.Hosts, spec.Host{Name: "s4", Addresses: addrs("192.168.100.13")})
	sec.PrivateKeys["s4"] = testKey(4)
	after, err := Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	for i, hc := range before {
		d := cmp.Diff(view(hc.Config()), view(after[i].Config()))
		if hc.Name == "s1" {
			if len(after[i].Config().Peers) != len(hc.Config().Peers)+1 {
				t.Errorf("hub has %d peers after, want %d", len(after[i].Config().Peers), len(hc.Config().Peers)+1)
			}
		} else if d != "" {
			t.Errorf("spoke %s changed (-before +after):\n%s", hc.Name, d)
		}
	}
}

func TestExplain(t *testing.T) {
	s, sec := threeServers(spec.TopologyHub)
	hcs, err := Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	got := Explain(hcs)
	for _, want := range []string{
		`h_s1["s1<br/>forwards; routes 10.0.4.0/24"]`,
		`h_s1 -->|"10.0.5.0/24, 192.168.100.11/32"| h_s2`,
		`h_s1 -.->|"10.0.7.0/24, 192.168.100.12/32"| h_s3`,
		`h_s3 -->|"10.0.4.0/24, 10.0.5.0/24, 192.168.100.0/24"| h_s1`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Explain() lacks %q; got:\n%s", want, got)
		}
	}
}
