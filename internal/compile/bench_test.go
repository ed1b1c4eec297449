package compile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// bigNetwork is n hosts in 10.64.0.0/10, each with a routed /28 when routes is
// set; a hub network has h1 as its hub.
func bigNetwork(b *testing.B, n int, topology string, routes bool) (*spec.Spec, spec.Secrets) {
	b.Helper()
	s := &spec.Spec{Version: 1, Network: "big", Subnets: pfx("10.64.0.0/10"), Topology: topology}
	sec := spec.Secrets{PrivateKeys: map[string]wgkey.Private{}}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("h%d", i)
		h := spec.Host{
			Name:      name,
			Endpoint:  fmt.Sprintf("198.18.%d.%d:51820", i/250, i%250+1),
			Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 64 + byte(i>>16), byte(i >> 8), byte(i)})},
		}
		if routes { // a /28 each in 100.64.0.0/10
			a := 100<<24 | 64<<16 | uint32(i)<<4
			h.Routes = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 28)}
		}
		s.Hosts = append(s.Hosts, h)
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			b.Fatal(err)
		}
		sec.PrivateKeys[name] = k
	}
	if topology == spec.TopologyHub {
		s.Hub = "h1"
	}
	return s, sec
}

// BenchmarkCompile reports the time and memory of compiling big networks, and
// of rendering every host's wg-quick file (bytes/op is the whole output).
func BenchmarkCompile(b *testing.B) {
	for _, tc := range []struct {
		name     string
		n        int
		topology string
		routes   bool
	}{
		{"hub-10000", 10000, spec.TopologyHub, false},
		{"hub-10000-routed", 10000, spec.TopologyHub, true},
		{"mesh-1000", 1000, spec.TopologyMesh, false},
	} {
		s, sec := bigNetwork(b, tc.n, tc.topology, tc.routes)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(s, sec); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"+render", func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				hosts, err := Compile(s, sec)
				if err != nil {
					b.Fatal(err)
				}
				size = 0
				for i := range hosts {
					size += len(hosts[i].WgQuick())
				}
			}
			b.ReportMetric(float64(size)/1e6, "MB-rendered")
		})
	}
}

// TestHubRoutesAgainstSlow checks the shared hub AllowedIPs against the obvious
// version (every other host's routes and the overlay, sorted) on random hub
// networks, including routes that two hosts share and a host that lists one
// route twice.
func TestHubRoutesAgainstSlow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := pfx("10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24", "10.0.0.0/16", "192.168.100.0/24", "fd00:1::/64", "fd00:2::/64")
	for iter := 0; iter < 500; iter++ {
		subnets := pfx("192.168.100.0/24")
		var hosts []*spec.Host
		for i := 0; i < 1+rng.IntN(6); i++ {
			h := &spec.Host{Name: fmt.Sprintf("h%d", i)}
			for j := 0; j < rng.IntN(4); j++ {
				h.Routes = append(h.Routes, pool[rng.IntN(len(pool))])
			}
			hosts = append(hosts, h)
		}
		r := newHubRoutes(subnets, hosts)
		for _, h := range hosts {
			want := append([]netip.Prefix(nil), subnets...)
			for _, x := range hosts {
				if x != h {
					want = append(want, x.Routes...)
				}
			}
			want = sortPrefixes(want)
			if got := r.without(h); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("iteration %d, %s: got %v, want %v (hosts %v)", iter, h.Name, got, want, hosts)
			}
		}
	}
}

// BenchmarkPrepareDiff is the controller's work per change with Prepare and
// Diff instead of Compile and a comparison of every peer: a host added to a
// big network, the new network prepared and diffed against the old.
func BenchmarkPrepareDiff(b *testing.B) {
	for _, tc := range []struct {
		name     string
		n        int
		topology string
	}{
		{"mesh-1000", 1000, spec.TopologyMesh},
		{"hub-10000", 10000, spec.TopologyHub},
	} {
		s, priv := bigNetwork(b, tc.n+1, tc.topology, false)
		for i := range s.Hosts { // public keys only, as a controller has
			s.Hosts[i].PublicKey = priv.PrivateKeys[s.Hosts[i].Name].Public()
		}
		sec := spec.Secrets{}
		before := *s
		before.Hosts = s.Hosts[:tc.n]
		old, err := Prepare(&before, sec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name+"-add", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cur, err := Prepare(s, sec)
				if err != nil {
					b.Fatal(err)
				}
				if ch := Diff(old, cur); !ch.Incremental || len(ch.Hosts) != tc.n+1 && tc.topology == spec.TopologyMesh {
					b.Fatalf("%d hosts changed, incremental %v", len(ch.Hosts), ch.Incremental)
				}
			}
		})
	}
}
