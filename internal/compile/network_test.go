package compile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// randNet is a network changed at random, one change at a time, for
// comparing Prepare and Diff with Compile.
type randNet struct {
	rng  *rand.Rand
	s    *spec.Spec
	sec  spec.Secrets
	next int // hosts made
	keys int // keys made
	kind string
}

func newRandNet(seed uint64) *randNet {
	r := &randNet{rng: rand.New(rand.NewPCG(seed, 7))}
	r.s = &spec.Spec{Version: 1, Network: "rand", Subnets: pfx("10.9.0.0/16", "fd09::/64"), Topology: spec.TopologyMesh}
	r.sec = spec.Secrets{PrivateKeys: map[string]wgkey.Private{}, PresharedKeys: map[spec.Pair]wgkey.Key{}}
	for range 2 + r.rng.IntN(8) {
		r.addHost()
	}
	if r.rng.IntN(3) == 0 {
		r.s.Topology, r.s.Hub = spec.TopologyHub, r.s.Hosts[0].Name
	}
	return r
}

var routePool = pfx("172.16.1.0/24", "172.16.2.0/24", "172.16.0.0/16", "10.9.200.0/24", "fd10::/64", "192.168.7.0/24")

// addHost adds a host with random fields: a key in the secrets or only a
// public one, maybe an endpoint, a keepalive, routes, tags, an IPv6
// address, externality.
func (r *randNet) addHost() {
	r.next++
	i := r.next
	h := spec.Host{Name: fmt.Sprintf("h%03d", i), Addresses: addrs(fmt.Sprintf("10.9.%d.%d", i/250, i%250+1))}
	if r.rng.IntN(2) == 0 {
		h.Addresses = append(h.Addresses, netip.MustParseAddr(fmt.Sprintf("fd09::%x", i)))
	}
	if r.rng.IntN(3) > 0 {
		h.Endpoint = fmt.Sprintf("198.18.0.%d:51820", r.rng.IntN(200)+1)
	}
	h.Keepalive = []int{0, 0, 25}[r.rng.IntN(3)]
	for range r.rng.IntN(3) {
		h.Routes = append(h.Routes, routePool[r.rng.IntN(len(routePool))])
	}
	if r.rng.IntN(3) == 0 {
		h.Tags = []string{"t"}
	}
	if r.rng.IntN(2) == 0 {
		r.sec.PrivateKeys[h.Name] = r.key()
	} else {
		h.PublicKey = r.key().Public()
		h.External = r.rng.IntN(6) == 0
	}
	r.s.Hosts = append(r.s.Hosts, h)
}

func (r *randNet) key() wgkey.Private {
	r.keys++
	return nameKey(fmt.Sprint("network test ", r.keys))
}

// clone is a copy of r's spec and secrets that change leaves alone (the
// prepared network keeps pointers into its spec).
func (r *randNet) clone() (*spec.Spec, spec.Secrets) {
	s := *r.s
	s.Subnets = slices.Clone(s.Subnets)
	s.PresharedKeys = slices.Clone(s.PresharedKeys)
	s.Hosts = slices.Clone(s.Hosts)
	for i := range s.Hosts {
		h := &s.Hosts[i]
		h.Addresses, h.Routes, h.Tags, h.FullTunnel = slices.Clone(h.Addresses), slices.Clone(h.Routes), slices.Clone(h.Tags), slices.Clone(h.FullTunnel)
	}
	sec := spec.Secrets{PrivateKeys: map[string]wgkey.Private{}, PresharedKeys: map[spec.Pair]wgkey.Key{}}
	for k, v := range r.sec.PrivateKeys {
		sec.PrivateKeys[k] = v
	}
	for k, v := range r.sec.PresharedKeys {
		sec.PresharedKeys[k] = v
	}
	return &s, sec
}

// change makes one random change to r's spec (a copy: what was cloned
// before stays) and names its kind.
func (r *randNet) change() {
	r.s, r.sec = r.clone()
	hs := r.s.Hosts
	h := &hs[r.rng.IntN(len(hs))]
	kinds := []string{"add", "add", "remove", "endpoint", "keepalive", "route", "route", "key", "tags",
		"external", "policy", "topology", "psk", "mtu", "subnet", "port", "fulltunnel", "nothing"}
	r.kind = kinds[r.rng.IntN(len(kinds))]
	switch r.kind {
	case "add":
		r.addHost()
	case "remove":
		if name := h.Name; len(hs) > 2 && name != r.s.Hub { // h moves as hosts are deleted
			r.s.Hosts = slices.DeleteFunc(hs, func(x spec.Host) bool { return x.Name == name })
			r.s.PresharedKeys = slices.DeleteFunc(r.s.PresharedKeys, func(p spec.Pair) bool { return p[0] == name || p[1] == name })
		}
	case "endpoint":
		h.Endpoint = []string{"", "198.18.1.1:51820", "198.18.1.2:51821"}[r.rng.IntN(3)]
	case "keepalive":
		h.Keepalive = []int{0, 15, 25}[r.rng.IntN(3)]
	case "route":
		if len(h.Routes) > 0 && r.rng.IntN(2) == 0 {
			h.Routes = h.Routes[1:]
		} else {
			h.Routes = append(h.Routes, routePool[r.rng.IntN(len(routePool))])
		}
	case "key":
		if _, ok := r.sec.PrivateKeys[h.Name]; ok {
			r.sec.PrivateKeys[h.Name] = r.key()
		} else {
			h.PublicKey = r.key().Public()
		}
	case "tags":
		h.Tags = []string{"t"}[:r.rng.IntN(2)]
	case "external":
		if !h.PublicKey.IsZero() && h.Name != r.s.Hub {
			h.External = !h.External
		}
	default:
		r.network(h)
	}
}

// network makes a change of the network's own settings (or h's MTU or
// full tunnel).
func (r *randNet) network(h *spec.Host) {
	switch r.kind {
	case "policy":
		r.s.Policy = spec.Policy{}
		if r.rng.IntN(3) > 0 {
			rules := [][]string{{"allow any -> any tcp 22", "allow tag:t -> any"}, {"allow tag:t -> tag:t"}, {"deny any -> 172.16.0.0/16"}}[r.rng.IntN(3)]
			p, err := spec.ParsePolicy([]string{"allow", "deny"}[r.rng.IntN(2)], nil, rules)
			if err != nil {
				panic(err)
			}
			r.s.Policy = p
		}
	case "topology":
		if r.s.Topology == spec.TopologyMesh {
			r.s.Topology, r.s.Hub = spec.TopologyHub, r.s.Hosts[r.rng.IntN(len(r.s.Hosts))].Name
		} else {
			r.s.Topology, r.s.Hub = spec.TopologyMesh, ""
		}
	case "psk":
		a, b := r.s.Hosts[r.rng.IntN(len(r.s.Hosts))].Name, h.Name
		if a != b {
			p := spec.Pair{a, b}.Key()
			r.s.PresharedKeys = append(r.s.PresharedKeys, p)
			if r.rng.IntN(4) > 0 { // else missing: both refuse it
				r.sec.PresharedKeys[p] = wgkey.Key(r.key())
			}
		}
	case "mtu":
		h.MTU, h.UnderlayMTU = []int{0, 1380}[r.rng.IntN(2)], []int{0, 1400, 9000}[r.rng.IntN(3)]
	case "subnet":
		r.s.Subnets = pfx([]string{"10.9.0.0/16", "10.9.0.0/15"}[r.rng.IntN(2)], "fd09::/64")
	case "port":
		r.s.ListenPort = []int{0, 51000}[r.rng.IntN(2)]
	case "fulltunnel":
		h.FullTunnel = pfx("0.0.0.0/0")[:r.rng.IntN(2)]
	}
}

// truth is what differs between two outputs of Compile, compared host by
// host and peer by peer the slow, obvious way.
func truth(old, cur []intent.Host) map[string]HostChange {
	out := map[string]HostChange{}
	before := map[string]intent.Host{}
	for _, h := range old {
		before[h.Name] = h
	}
	for _, h := range cur {
		o, ok := before[h.Name]
		if !ok {
			out[h.Name] = HostChange{New: true}
			continue
		}
		a, b := o, h
		a.Peers, b.Peers = nil, nil
		hc := HostChange{Head: !reflect.DeepEqual(a, b)}
		peers := map[string][2]*wgconf.Peer{}
		for i := range o.Peers {
			peers[o.Peers[i].Name] = [2]*wgconf.Peer{&o.Peers[i], nil}
		}
		for i := range h.Peers {
			p := peers[h.Peers[i].Name]
			p[1] = &h.Peers[i]
			peers[h.Peers[i].Name] = p
		}
		for name, p := range peers {
			if p[0] == nil || p[1] == nil || !reflect.DeepEqual(*p[0], *p[1]) {
				hc.Peers = append(hc.Peers, name)
			}
		}
		slices.Sort(hc.Peers)
		if hc.Head || len(hc.Peers) > 0 {
			out[h.Name] = hc
		}
	}
	return out
}

// checkNetwork checks n against Compile's output for the same spec: every
// host's head and peers (as a list and one by one through EachPeer), and
// each peer entry alone, equal; no entry where Compile has none.
func checkNetwork(t *testing.T, n *Network, full []intent.Host, all []spec.Host) {
	t.Helper()
	for _, want := range full {
		head, ok := n.Head(want.Name)
		if !ok {
			t.Fatalf("host %s: no head", want.Name)
		}
		got := *head
		got.Peers = n.Peers(want.Name)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("host %s: Prepare gives\n%+v\nCompile gives\n%+v", want.Name, got, want)
		}
		var each []wgconf.Peer
		n.EachPeer(want.Name, func(p *wgconf.Peer) { each = append(each, *p) })
		if !reflect.DeepEqual(each, want.Peers) && len(each)+len(want.Peers) > 0 {
			t.Fatalf("host %s: EachPeer gives\n%+v\nCompile gives\n%+v", want.Name, each, want.Peers)
		}
		if room := n.PeerRoom(want.Name); room < len(want.Peers) {
			t.Fatalf("host %s: PeerRoom %d, %d peers", want.Name, room, len(want.Peers))
		}
		for _, o := range all {
			p, ok := n.Peer(want.Name, o.Name)
			i := slices.IndexFunc(want.Peers, func(p wgconf.Peer) bool { return p.Name == o.Name })
			if ok != (i >= 0) || (ok && !reflect.DeepEqual(p, want.Peers[i])) {
				t.Fatalf("host %s, peer %s: Peer gives %v %+v; Compile's list has it at %d", want.Name, o.Name, ok, p, i)
			}
		}
	}
	for _, h := range all {
		if _, ok := n.Head(h.Name); ok != !h.External {
			t.Fatalf("host %s (external %v): Head says %v", h.Name, h.External, ok)
		}
	}
}

// runRandom makes steps random changes to a network from seed and checks,
// after each, that Prepare agrees with Compile (errors too), and Diff from
// the network before with comparing the two outputs; it returns how many
// diffs took each path, by kind of change.
func runRandom(t *testing.T, seed uint64, steps int) (incr, full map[string]int) {
	incr, full = map[string]int{}, map[string]int{}
	r := newRandNet(seed)
	var prevNet *Network
	var prevFull []intent.Host
	for step := range steps {
		if step > 0 {
			r.change()
		}
		s, sec := r.clone()
		want, werr := Compile(s, sec)
		n, err := Prepare(s, sec)
		if fmt.Sprint(err) != fmt.Sprint(werr) {
			t.Fatalf("seed %d step %d (%s): Prepare: %v; Compile: %v", seed, step, r.kind, err, werr)
		}
		if err != nil {
			prevNet, prevFull = nil, nil
			continue
		}
		checkNetwork(t, n, want, s.Hosts)
		ch := Diff(prevNet, n)
		tr := truth(prevFull, want)
		if !reflect.DeepEqual(ch.Hosts, tr) {
			t.Fatalf("seed %d step %d (%s, incremental %v): Diff gives\n%v\nwant\n%v", seed, step, r.kind, ch.Incremental, ch.Hosts, tr)
		}
		kinds := []string{r.kind}
		if s.Policy.Present && s.Topology == spec.TopologyMesh {
			kinds = append(kinds, r.kind+" under a policy")
		}
		for _, k := range kinds {
			if ch.Incremental {
				incr[k]++
			} else if prevNet != nil {
				full[k]++
			}
		}
		prevNet, prevFull = n, want
	}
	return incr, full
}

// TestDiffAgainstCompile runs random sequences of changes (hosts added,
// removed, endpoints, keepalives, routes, keys, tags, externality, policy,
// topology, preshared keys, MTUs, subnets, ports, full tunnels) on hub and
// mesh networks: after each, every host of the prepared network is Compile's,
// peer by peer, and Diff finds exactly what comparing the two compilations
// finds. The changes Diff works out incrementally must include every
// host-level change, and some in a mesh under a policy.
func TestDiffAgainstCompile(t *testing.T) {
	incr, full := map[string]int{}, map[string]int{}
	for seed := range uint64(60) {
		i, f := runRandom(t, seed, 40)
		for k, v := range i {
			incr[k] += v
		}
		for k, v := range f {
			full[k] += v
		}
	}
	t.Logf("incremental: %v", incr)
	t.Logf("full: %v", full)
	for _, k := range []string{"add", "remove", "endpoint", "keepalive", "route", "key", "tags", "external", "mtu", "subnet", "port", "fulltunnel", "nothing",
		"add under a policy", "endpoint under a policy", "keepalive under a policy", "route under a policy"} {
		if incr[k] == 0 {
			t.Errorf("no %s change was worked out incrementally", k)
		}
	}
	for _, k := range []string{"policy", "topology"} {
		if full[k] == 0 {
			t.Errorf("no %s change took the full comparison", k)
		}
	}
}

// TestDiffMeshAddIsIncremental: a host added to a plain mesh changes, in
// every other host, exactly one peer, found without comparing the others.
func TestDiffMeshAddIsIncremental(t *testing.T) {
	s, sec := threeServers(spec.TopologyMesh)
	old, err := Prepare(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	s2 := *s
	s2.Hosts = append(slices.Clone(s.Hosts), spec.Host{Name: "s4", Addresses: addrs("192.168.100.13"), PublicKey: testKey(4).Public()})
	cur, err := Prepare(&s2, sec)
	if err != nil {
		t.Fatal(err)
	}
	ch := Diff(old, cur)
	want := map[string]HostChange{"s1": {Peers: []string{"s4"}}, "s2": {Peers: []string{"s4"}}, "s3": {Peers: []string{"s4"}}, "s4": {New: true}}
	if !ch.Incremental || !reflect.DeepEqual(ch.Hosts, want) {
		t.Fatalf("Diff = %+v, want incremental %v", ch, want)
	}
}

// FuzzDiff is TestDiffAgainstCompile from any seed.
func FuzzDiff(f *testing.F) {
	f.Add(uint64(1), uint8(20))
	f.Add(uint64(99), uint8(60))
	f.Fuzz(func(t *testing.T, seed uint64, steps uint8) {
		runRandom(t, seed, int(steps%80)+1)
	})
}
