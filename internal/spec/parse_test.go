package spec

import (
	"errors"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgkey"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

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

// ignoreSource leaves out where a spec came from when comparing specs.
var ignoreSource = cmp.Options{cmpopts.IgnoreFields(Spec{}, "Source"), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})}

func TestLoadExample(t *testing.T) {
	s, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Spec{
		Version: 1, Network: "prod", Subnets: pfx("192.168.100.0/24", "fd00:100::/64"),
		Interface: "wg0", ListenPort: 51820, MTU: 1420, Topology: TopologyHub, Hub: "s1",
		Hosts: []Host{
			{
				Name: "s1", Endpoint: "107.100.10.10:51820", Addresses: addrs("192.168.100.10", "fd00:100::10"),
				Routes: pfx("10.0.4.0/24"), PublicKey: wgkey.MustParseKey("CbkMeKsD0Hfq8CR5lgftzc9WZhXskEr+NyT+hY+5XEM="),
				UnderlayMTU: 1500,
				Hooks: Hooks{
					PostUp:   []string{"iptables -A FORWARD -i %i -j ACCEPT"},
					PostDown: []string{"iptables -D FORWARD -i %i -j ACCEPT"},
				},
				Line: 15,
			},
			{
				Name: "s2", Endpoint: "s2.example.net:51821", ListenPort: 51821,
				Addresses: addrs("192.168.100.11", "fd00:100::11"), Routes: pfx("10.0.5.0/24"),
				PublicKey: wgkey.MustParseKey("wr1GHvfQpisI8K/mfcUrpNJEHn0pj4LbtIbYL4yr1C4="),
				Line:      26,
			},
			{
				Name: "s3", Addresses: addrs("192.168.100.12", "fd00:100::12"), Keepalive: 25,
				PublicKey:      wgkey.MustParseKey("InF05OrSGAp5qzI8kstGPJBbYjnUQYwby/px6T75bg8="),
				PrivateKeyFile: "/etc/wireguard/wg0.key",
				Line:           35,
			},
		},
		PresharedKeys: []Pair{{"s1", "s2"}},
	}
	if diff := cmp.Diff(want, s, ignoreSource); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	if s.Source.File != "testdata/example.yaml" || s.Source.Lines["hosts[1].endpoint"] != 27 {
		t.Errorf("Source = %q, hosts[1].endpoint on line %d; want testdata/example.yaml, 27", s.Source.File, s.Source.Lines["hosts[1].endpoint"])
	}
	src, _ := os.ReadFile("testdata/example.yaml")
	if _, errs, warns := Check("x", src); len(errs)+len(warns) != 0 {
		t.Errorf("the example has problems: %v %v", errs, warns)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
}

// header is the first four lines of most test specs.
const header = "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24]\ntopology: mesh\n"

const (
	key1 = "CbkMeKsD0Hfq8CR5lgftzc9WZhXskEr+NyT+hY+5XEM="
	key2 = "wr1GHvfQpisI8K/mfcUrpNJEHn0pj4LbtIbYL4yr1C4="
)

// render formats problems as `wgnet check` does, minus the severity.
func render(ps diag.List) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code+": "+p.Located())
	}
	return out
}

// TestErrors has a case for every error code (TestEveryCodeTested checks that).
// Each gives the exact errors, in order, with file and line.
var errorTests = []problemTest{
	{"yaml syntax", "version: 1\nnetwork: [prod\n", []string{
		"spec-yaml: wgnet.yaml:2: did not find expected ',' or ']'"}},
	{"empty", "\n# nothing\n", []string{"spec-empty: wgnet.yaml: the file is empty"}},
	{"invalid UTF-8", "version: 1\nnetwork: \"pr\xffod\"\n", []string{
		"spec-yaml: wgnet.yaml:2: invalid UTF-8 (byte 0xff); a spec must be UTF-8 text"}},
	{"NUL", "version: 1\n\n# a comment\x00\n", []string{
		"spec-yaml: wgnet.yaml:3: control character U+0000 is not allowed"}},
	{"two documents", "version: 1\n---\nversion: 1\n", []string{
		`spec-yaml: wgnet.yaml:2: more than one YAML document ("---"); a spec is one document`}},
	{"not a mapping", "- a\n- b\n", []string{
		"spec-type: wgnet.yaml:1: the spec must be a mapping of keys (version, network, ...), not a list"}},
	{"unknown key with hint", header + "hosts:\n  - name: s1\n    adress: 192.168.100.1\n", []string{
		`spec-unknown-key: wgnet.yaml:7: hosts[0].adress: unknown key (did you mean "address"?)`}},
	{"policy", header + "hosts:\n  - name: s1\n    address: [192.168.100.1]\n    tags: [Web]\npolicy:\n  default: open\n  groups:\n    web: [s9]\n  rules: [allow web -> nobody]\n", []string{
		`spec-policy-tag: wgnet.yaml:8: hosts[0].tags[0] "Web": a tag is 1-63 of a-z 0-9 _ . - starting with a letter or digit`,
		`spec-policy-default: wgnet.yaml:10: policy.default "open": must be allow or deny`,
		`spec-policy-group: wgnet.yaml:12: policy.groups.web[0] "s9": no host has that name (a group lists hosts, tag:TAG, name patterns and prefixes, not other groups)`,
		`spec-policy-rule: wgnet.yaml:13: policy.rules[0] "nobody": no group or host has that name`}},
	{"unknown key", header + "colour: blue\n", []string{
		"spec-unknown-key: wgnet.yaml:5: colour: unknown key"}},
	{"duplicate key", header + "hosts: []\nnetwork: again\n", []string{
		"spec-duplicate-key: wgnet.yaml:6: network: given twice (first on line 2)"}},
	{"wrong types", header + "listen_port: \"51820\"\nmtu: 1420.5\nhosts:\n  - name: [s1]\n    endpoint: {a: b}\n    address: 192.168.100.1\n    hooks: [x]\n", []string{
		`spec-type: wgnet.yaml:5: listen_port "51820": must be a whole number`,
		`spec-type: wgnet.yaml:6: mtu "1420.5": must be a whole number`,
		"spec-type: wgnet.yaml:8: hosts[0].name: must be a single value, not a list",
		"spec-type: wgnet.yaml:9: hosts[0].endpoint: must be a single value, not a mapping",
		"spec-type: wgnet.yaml:11: hosts[0].hooks: must be a mapping, not a list",
	}},
	{"boolean for a string", header + "interface: true\n", []string{
		"spec-type: wgnet.yaml:5: interface: must be a string, not the boolean true (quote it)"}},
	{"number out of range", header + "listen_port: 99999999999999999999\n", []string{
		`spec-type: wgnet.yaml:5: listen_port "99999999999999999999": must be a whole number`}},
	{"alias", header + "hosts:\n  - &h {name: s1, address: 192.168.100.1}\n  - *h\n", []string{
		"spec-alias: wgnet.yaml:7: hosts[1]: YAML aliases (*name) are not supported"}},
	{"version", "version: 2\nnetwork: prod\nsubnets: [192.168.100.0/24]\ntopology: mesh\n", []string{
		"spec-version: wgnet.yaml:1: version 2: this wgnet reads version 1"}},
	{"version missing", "network: prod\nsubnets: [192.168.100.0/24]\ntopology: mesh\n", []string{
		`spec-version: wgnet.yaml: version: missing: add "version: 1"`}},
	{"network", "version: 1\nnetwork: Prod\nsubnets: [192.168.100.0/24]\ntopology: mesh\n", []string{
		`spec-network: wgnet.yaml:2: network "Prod": must be 1-63 of a-z 0-9 _ . - starting with a letter or digit`}},
	{"required keys", "version: 1\n", []string{
		"spec-network: wgnet.yaml: network: missing: the network's name",
		"spec-subnet: wgnet.yaml: subnets: at least one overlay subnet is required",
		"spec-topology: wgnet.yaml: topology: missing: hub or mesh",
	}},
	{"subnets", "version: 1\nnetwork: prod\nsubnets:\n  - 192.168.100.1/24\n  - fd00::1/128\n  - nonsense\n  - ::ffff:10.0.0.0/104\n  - \"\"\ntopology: mesh\n", []string{
		`spec-subnet: wgnet.yaml:4: subnets[0] "192.168.100.1/24": host bits are set; did you mean 192.168.100.0/24?`,
		`spec-subnet: wgnet.yaml:5: subnets[1] "fd00::1/128": too small to hold a host address`,
		`spec-subnet: wgnet.yaml:6: subnets[2] "nonsense": not a CIDR prefix like 192.168.100.0/24`,
		`spec-subnet: wgnet.yaml:7: subnets[3] "::ffff:10.0.0.0/104": write an IPv4 subnet in IPv4 form`,
		`spec-subnet: wgnet.yaml:8: subnets[4] "": not a CIDR prefix like 192.168.100.0/24`,
	}},
	{"subnet family", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24, fd00::/64, 10.0.0.0/24]\ntopology: mesh\n", []string{
		`spec-subnet-family: wgnet.yaml:3: subnets[2] "10.0.0.0/24": a second IPv4 subnet (first: 192.168.100.0/24); at most one IPv4 and one IPv6`}},
	{"interface", header + "interface: wg0/../x\n", []string{
		`spec-interface: wgnet.yaml:5: interface "wg0/../x": must be 1-15 of a-z A-Z 0-9 _ = + . - (as wg-quick requires)`}},
	{"ports", header + "listen_port: 65536\nhosts:\n  - name: s1\n    address: 192.168.100.1\n    keepalive: 25\n    listen_port: 0\n" +
		"  - {name: s2, address: 192.168.100.2, endpoint: 1.2.3.4:51820, listen_port: random}\n  - {name: s3, address: 192.168.100.3, keepalive: 25, listen_port: any}\n", []string{
		"spec-port: wgnet.yaml:5: listen_port 65536: must be 1-65535",
		"spec-port: wgnet.yaml:10: hosts[0].listen_port 0: must be 1-65535, or random (leave it out for the default)",
		"spec-port: wgnet.yaml:11: hosts[1].listen_port \"random\": the others dial s2 at its endpoint 1.2.3.4:51820, so it needs a fixed port",
		`spec-type: wgnet.yaml:12: hosts[2].listen_port "any": must be a whole number`,
	}},
	{"mtu range", header + "mtu: 500\n", []string{"spec-mtu: wgnet.yaml:5: mtu 500: must be 576-9216"}},
	{"mtu ipv6", "version: 1\nnetwork: prod\nsubnets: [fd00::/64]\ntopology: mesh\nmtu: 1200\n", []string{
		"spec-mtu: wgnet.yaml:5: mtu 1200: IPv6 needs at least 1280 and the network has an IPv6 subnet"}},
	{"mtu ipv6 from underlay", "version: 1\nnetwork: prod\nsubnets: [fd00::/64]\ntopology: mesh\nhosts:\n  - name: s1\n    address: fd00::1\n    keepalive: 25\n    underlay_mtu: 1300\n", []string{
		"spec-mtu: wgnet.yaml:9: hosts[0].underlay_mtu 1300: leaves an overlay MTU of 1220, below the 1280 IPv6 needs; set mtu or drop the IPv6 subnet"}},
	{"topology", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24]\ntopology: star\n", []string{
		`spec-topology: wgnet.yaml:4: topology "star": must be hub or mesh`}},
	{"hub missing", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24]\ntopology: hub\nhosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820}\n", []string{
		"spec-hub: wgnet.yaml:4: hub: topology hub needs hub: the name of the hub host"}},
	{"hub unknown", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24]\ntopology: hub\nhub: s9\n", []string{
		`spec-hub: wgnet.yaml:5: hub "s9": no host has that name`}},
	{"hub in mesh", header + "hub: s1\nhosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820}\n", []string{
		`spec-hub: wgnet.yaml:5: hub "s1": a hub is only for topology hub (this network is a mesh)`}},
	{"host names", header + "hosts:\n  - address: 192.168.100.1\n    endpoint: 1.2.3.4:51820\n  - name: -x\n    address: 192.168.100.2\n    endpoint: 1.2.3.5:51820\n", []string{
		"spec-host-name: wgnet.yaml:6: hosts[0].name: a host name is required",
		`spec-host-name: wgnet.yaml:8: hosts[1].name "-x": must be 1-63 of a-z 0-9 _ . - starting with a letter or digit`,
	}},
	{"host duplicate", header + "hosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820}\n  - {name: s1, address: 192.168.100.2, endpoint: 1.2.3.5:51820}\n", []string{
		`spec-host-duplicate: wgnet.yaml:7: hosts[1].name "s1": also the name of hosts[0] (line 6)`}},
	{"endpoints", header + "hosts:\n" +
		"  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4}\n" +
		"  - {name: s2, address: 192.168.100.2, endpoint: \"[2001:db8::1]\"}\n" +
		"  - {name: s3, address: 192.168.100.3, endpoint: 2001:db8::1:51820}\n" +
		"  - {name: s4, address: 192.168.100.4, endpoint: \"udp://1.2.3.4:51820\"}\n" +
		"  - {name: s5, address: 192.168.100.5, endpoint: 1.2.3.4:0}\n" +
		"  - {name: s6, address: 192.168.100.6, endpoint: \"bad host:51820\"}\n", []string{
		`spec-endpoint: wgnet.yaml:6: hosts[0].endpoint "1.2.3.4": missing port`,
		`spec-endpoint: wgnet.yaml:7: hosts[1].endpoint "[2001:db8::1]": missing port`,
		`spec-endpoint: wgnet.yaml:8: hosts[2].endpoint "2001:db8::1:51820": an IPv6 address needs brackets: [addr]:port`,
		`spec-endpoint: wgnet.yaml:9: hosts[3].endpoint "udp://1.2.3.4:51820": must be host:port, without a scheme`,
		`spec-endpoint: wgnet.yaml:10: hosts[4].endpoint "1.2.3.4:0": port "0" must be 1-65535`,
		`spec-endpoint: wgnet.yaml:11: hosts[5].endpoint "bad host:51820": "bad host" is not an IP address or host name`,
	}},
	{"addresses", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24]\ntopology: mesh\nhosts:\n  - name: s1\n    keepalive: 25\n    address:\n" +
		"      - 192.168.100.0\n      - 192.168.100.255\n      - 10.0.0.1\n      - fd00::1\n      - 192.168.100.1/0\n      - banana\n      - 192.168.100.7/33\n", []string{
		`spec-address: wgnet.yaml:9: hosts[0].address[0] "192.168.100.0": is the network address of 192.168.100.0/24`,
		`spec-address: wgnet.yaml:10: hosts[0].address[1] "192.168.100.255": is the broadcast address of 192.168.100.0/24`,
		`spec-address: wgnet.yaml:11: hosts[0].address[2] "10.0.0.1": is outside 192.168.100.0/24`,
		`spec-address: wgnet.yaml:12: hosts[0].address[3] "fd00::1": the network has no IPv6 subnet`,
		`spec-address: wgnet.yaml:13: hosts[0].address[4] "192.168.100.1/0": a /0 address claims every address; give the address alone (the subnet's length) or with its own length (/32)`,
		`spec-address: wgnet.yaml:14: hosts[0].address[5] "banana": not an IP address`,
		`spec-address: wgnet.yaml:15: hosts[0].address[6] "192.168.100.7/33": not an IP address, nor one with a prefix length (10.8.0.2/32)`,
	}},
	{"assign_address", header + "hosts:\n  - name: s1\n    keepalive: 25\n    assign_address: no\n", []string{
		"spec-address-missing: wgnet.yaml:6: hosts[0].address: host s1 has no overlay address",
		`spec-type: wgnet.yaml:8: hosts[0].assign_address "no": must be true or false`}},
	{"external", header + "hosts:\n  - {name: s1, external: true, endpoint: 1.2.3.4:4500}\n", []string{
		"spec-public-key-missing: wgnet.yaml:6: hosts[0].external: an external host needs public_key: wgnet writes no config for it and never holds its key"}},
	{"host mtu", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24, fd00::/64]\ntopology: mesh\nmtu: -1\nhosts:\n" +
		"  - {name: s1, address: [192.168.100.1, fd00::1], endpoint: 1.2.3.4:51820, mtu: 1200}\n" +
		"  - {name: s2, address: 192.168.100.2, endpoint: 1.2.3.5:51820, mtu: 10000}\n" +
		"  - {name: s3, address: 192.168.100.3, endpoint: 1.2.3.6:51820, mtu: automatic}\n", []string{
		"spec-mtu: wgnet.yaml:5: mtu -1: must be 576-9216, or auto",
		"spec-mtu: wgnet.yaml:7: hosts[0].mtu 1200: IPv6 needs at least 1280 and the host has an IPv6 address",
		"spec-mtu: wgnet.yaml:8: hosts[1].mtu 10000: must be 576-9216, or auto",
		`spec-mtu: wgnet.yaml:9: hosts[2].mtu "automatic": must be a number (576-9216) or auto`,
	}},
	{"dns table fwmark", header + "hosts:\n  - name: s1\n    keepalive: 25\n    address: 192.168.100.1\n" +
		"    dns: [1.1.1.1, example.com, \"bad name\", a..b]\n    table: \"my table\"\n    fwmark: 0x1_0000_0000\n", []string{
		`spec-dns: wgnet.yaml:9: hosts[0].dns[2] "bad name": must be an IP address (a resolver) or a domain name (a search domain)`,
		`spec-dns: wgnet.yaml:9: hosts[0].dns[3] "a..b": must be an IP address (a resolver) or a domain name (a search domain)`,
		`spec-table: wgnet.yaml:10: hosts[0].table "my table": must be off, auto, main, a table number or a name from rt_tables`,
		`spec-fwmark: wgnet.yaml:11: hosts[0].fwmark "0x1_0000_0000": must be a number, decimal or 0x hex, below 2^32 (or off)`,
	}},
	{"full tunnel", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24]\ntopology: hub\nhub: s1\nhosts:\n" +
		"  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820, full_tunnel: [0.0.0.0/0]}\n" +
		"  - {name: s2, address: 192.168.100.2, keepalive: 25, full_tunnel: [10.0.0.0/8, 0.0.0.0/0, 0.0.0.0/0, x]}\n", []string{
		"spec-full-tunnel: wgnet.yaml:7: hosts[0].full_tunnel: only a spoke of a hub network sends all its traffic through the hub (topology hub, and not the hub itself)",
		`spec-full-tunnel: wgnet.yaml:8: hosts[1].full_tunnel[0] "10.0.0.0/8": must be a default route, 0.0.0.0/0 or ::/0 (a subnet behind the hub is one of the hub's routes)`,
		`spec-full-tunnel: wgnet.yaml:8: hosts[1].full_tunnel[2] "0.0.0.0/0": given twice`,
		`spec-full-tunnel: wgnet.yaml:8: hosts[1].full_tunnel[3] "x": not a default route, 0.0.0.0/0 or ::/0`,
	}},
	{"address family", header + "hosts:\n  - name: s1\n    keepalive: 25\n    address: [192.168.100.1, 192.168.100.2]\n", []string{
		`spec-address-family: wgnet.yaml:8: hosts[0].address[1] "192.168.100.2": a second IPv4 address; a host has at most one per family`}},
	{"address missing", header + "hosts:\n  - name: s1\n    keepalive: 25\n", []string{
		"spec-address-missing: wgnet.yaml:6: hosts[0].address: host s1 has no overlay address"}},
	{"address duplicate", header + "hosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820}\n  - {name: s2, address: 192.168.100.1, endpoint: 1.2.3.5:51820}\n", []string{
		`spec-address-duplicate: wgnet.yaml:7: hosts[1].address[0] "192.168.100.1": also the address of s1 (line 6)`}},
	{"routes", header + "hosts:\n  - name: s1\n    keepalive: 25\n    address: 192.168.100.1\n    routes: [10.0.4.1/24, 10.0.4.0/33]\n", []string{
		`spec-route: wgnet.yaml:9: hosts[0].routes[0] "10.0.4.1/24": host bits are set; did you mean 10.0.4.0/24?`,
		`spec-route: wgnet.yaml:9: hosts[0].routes[1] "10.0.4.0/33": not a CIDR prefix like 10.0.4.0/24`,
	}},
	{"route overlaps", header + "hosts:\n  - name: s1\n    endpoint: 1.2.3.4:51820\n    address: 192.168.100.1\n    routes: [10.0.0.0/16, 10.0.0.0/16, 0.0.0.0/0]\n  - name: s2\n    endpoint: 1.2.3.5:51820\n    address: 192.168.100.2\n    routes:\n      - 10.0.4.0/24\n", []string{
		`spec-route-overlap: wgnet.yaml:9: hosts[0].routes[1] "10.0.0.0/16" overlaps 10.0.0.0/16, another route of this host (line 9)`,
		`spec-route-overlap: wgnet.yaml:9: hosts[0].routes[2] "0.0.0.0/0" overlaps the overlay subnet 192.168.100.0/24`,
		`spec-route-overlap: wgnet.yaml:14: hosts[1].routes[0] "10.0.4.0/24" overlaps 10.0.0.0/16, a route of s1 (line 9)`,
	}},
	{"keepalive", header + "hosts:\n  - name: s1\n    address: 192.168.100.1\n    keepalive: 65536\n", []string{
		"spec-keepalive: wgnet.yaml:8: hosts[0].keepalive 65536: must be 0-65535 seconds (0 = off)"}},
	{"public keys", header + "hosts:\n  - name: s1\n    keepalive: 25\n    address: 192.168.100.1\n    public_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" +
		"  - name: s2\n    keepalive: 25\n    address: 192.168.100.2\n    public_key: " + key1 + "x\n" +
		"  - name: s3\n    keepalive: 25\n    address: 192.168.100.3\n    public_key: " + key1[:42] + "B=\n", []string{
		"spec-public-key: wgnet.yaml:9: hosts[0].public_key: is all zeros, which WireGuard reads as no key",
		`spec-public-key: wgnet.yaml:13: hosts[1].public_key: key "CbkM…EM=x": must be 44 base64 characters ending in '='`,
		`spec-public-key: wgnet.yaml:17: hosts[2].public_key: key "CbkM…XEB=": invalid base64 (or non-zero trailing bits)`,
	}},
	{"public key duplicate", header + "hosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820, public_key: " + key1 + "}\n" +
		"  - {name: s2, address: 192.168.100.2, endpoint: 1.2.3.5:51820, public_key: " + key1 + "}\n", []string{
		"spec-public-key-duplicate: wgnet.yaml:7: hosts[1].public_key: also the public key of s1 (line 6)"}},
	{"own key needs public key", header + "hosts:\n  - name: s1\n    keepalive: 25\n    address: 192.168.100.1\n    private_key_file: /etc/wireguard/wg0.key\n", []string{
		"spec-public-key-missing: wgnet.yaml:9: hosts[0].private_key_file: a host that keeps its own private key needs public_key in the spec"}},
	{"private key file", header + "hosts:\n  - name: s1\n    keepalive: 25\n    address: 192.168.100.1\n    public_key: " + key1 + "\n    private_key_file: wg0.key\n", []string{
		`spec-private-key-file: wgnet.yaml:10: hosts[0].private_key_file "wg0.key": must be an absolute path on the host`}},
	{"host firewall", header + "hosts:\n  - name: s1\n    keepalive: 25\n    address: 192.168.100.1\n    host_firewall: ufw\n  - name: s2\n    keepalive: 25\n    address: 192.168.100.2\n    host_firewall: docker\n", []string{
		`spec-host-firewall: wgnet.yaml:9: hosts[0].host_firewall "ufw": must be auto, docker or iptables (or off); see docs/docker.md`}},
	{"underlay mtu", header + "hosts:\n  - name: s1\n    keepalive: 25\n    address: 192.168.100.1\n    underlay_mtu: 600\n", []string{
		"spec-underlay-mtu: wgnet.yaml:9: hosts[0].underlay_mtu 600: must be 656-65535"}},
	{"hooks", header + "hosts:\n  - name: s1\n    keepalive: 25\n    address: 192.168.100.1\n    hooks:\n      pre_up: \"  \"\n      post_down: [\"a\\nb\"]\n      postup: x\n", []string{
		"spec-hook: wgnet.yaml:10: hosts[0].hooks.pre_up[0]: an empty command",
		`spec-hook: wgnet.yaml:11: hosts[0].hooks.post_down[0] "a\nb": must be one line (wg-quick reads one command per line)`,
		`spec-unknown-key: wgnet.yaml:12: hosts[0].hooks.postup: unknown key (did you mean "post_up"?)`,
	}},
	{"psk pairs", header + "hosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820}\n  - {name: s2, address: 192.168.100.2, endpoint: 1.2.3.5:51820}\n" +
		"preshared_keys:\n  - [s1, s2]\n  - [s2, s1]\n  - [s1, s1]\n  - [s1, s9]\n  - [s1]\n  - s1\n", []string{
		"spec-psk-pair: wgnet.yaml:10: preshared_keys[1] [s2, s1]: listed twice (also preshared_keys[0] (line 9))",
		"spec-psk-pair: wgnet.yaml:11: preshared_keys[2] [s1, s1]: a pair names two different hosts",
		`spec-psk-pair: wgnet.yaml:12: preshared_keys[3] "s9": no host has that name`,
		"spec-psk-pair: wgnet.yaml:13: preshared_keys[4]: a preshared pair names exactly two hosts: [a, b]",
		`spec-type: wgnet.yaml:14: preshared_keys[5]: must be a list, not "s1"`,
	}},
}

type problemTest struct {
	name string
	src  string
	want []string
}

func TestErrors(t *testing.T) {
	for _, tt := range errorTests {
		t.Run(tt.name, func(t *testing.T) {
			s, errs, _ := Check("wgnet.yaml", []byte(tt.src))
			if diff := cmp.Diff(tt.want, render(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			_, err := Parse("wgnet.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if got, want := err.Error(), strings.Join(plain(errs), "\n"); got != want {
				t.Errorf("Parse error = %q, want %q", got, want)
			}
			var p diag.Failure
			if !errors.As(err, &p) || p.Diagnostic != errs[0] {
				t.Errorf("errors.As(Parse error) = %v, want %v", p, errs[0])
			}
			if s != nil {
				// Lint on a partly decoded spec must not panic either.
				s.Lint()
			}
		})
	}
}

func plain(ps diag.List) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Located())
	}
	return out
}

// TestWarnings has a case for every warning code; the specs are otherwise valid.
var warningTests = []problemTest{
	{"docker bridge", "version: 1\nnetwork: prod\nsubnets: [172.17.0.0/24]\ntopology: mesh\nhosts:\n  - {name: s1, address: 172.17.0.1, endpoint: 1.2.3.4:51820}\n", []string{
		`spec-docker-overlap: wgnet.yaml:3: subnets[0] "172.17.0.0/24" overlaps Docker's default bridge 172.17.0.0/16: hosts running Docker route it to docker0`}},
	{"docker bridge route", header + "hosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820, routes: [172.17.0.0/16]}\n", []string{
		`spec-docker-overlap: wgnet.yaml:6: hosts[0].routes[0] "172.17.0.0/16" overlaps Docker's default bridge 172.17.0.0/16: hosts running Docker route it to docker0`}},
	{"endpoint port", header + "listen_port: 51000\nhosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820}\n  - {name: s2, address: 192.168.100.2, endpoint: 1.2.3.5:51821, listen_port: 51821}\n", []string{
		`spec-endpoint-listen-port: wgnet.yaml:7: hosts[0].endpoint "1.2.3.4:51820": port 51820 is not the host's listen port 51000 (fine only if something forwards it)`}},
	{"no endpoint, no keepalive", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24]\ntopology: hub\nhub: s1\nhosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820}\n  - {name: s2, address: 192.168.100.2}\n", []string{
		"spec-keepalive-missing: wgnet.yaml:8: hosts[1].endpoint: host s2 has no endpoint, so only it can start a handshake; if it is behind NAT, set keepalive: 25 to keep the NAT mapping open"}},
	{"mesh without endpoints", header + "hosts:\n  - {name: s1, address: 192.168.100.1, keepalive: 25}\n  - {name: s2, address: 192.168.100.2, endpoint: 1.2.3.5:51820}\n  - {name: s3, address: 192.168.100.3, keepalive: 25}\n", []string{
		"spec-unreachable: wgnet.yaml:8: hosts[2].endpoint: host s3 has no endpoint, nor has s1: they can't reach each other (give one an endpoint, or use topology hub)"}},
	{"hub without endpoint", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24]\ntopology: hub\nhub: s1\nhosts:\n  - {name: s1, address: 192.168.100.1, keepalive: 25}\n  - {name: s2, address: 192.168.100.2, keepalive: 25}\n  - {name: s3, address: 192.168.100.3, endpoint: 1.2.3.5:51820}\n", []string{
		"spec-unreachable: wgnet.yaml:5: hub: the hub s1 has no endpoint, so spokes without one (s2) can't reach it"}},
	{"mtu above underlay", header + "mtu: 1500\nhosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820, underlay_mtu: 1460}\n  - {name: s2, address: 192.168.100.2, endpoint: 1.2.3.5:51820, underlay_mtu: 9001}\n", []string{
		"spec-mtu-underlay: wgnet.yaml:5: mtu 1500: above 1380, the underlay MTU of s1 minus 80: large packets will be fragmented or lost"}},
	{"address family absent", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24, fd00::/64]\ntopology: mesh\nhosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820}\n", []string{
		"spec-address-family-absent: wgnet.yaml:6: hosts[0].address: host s1 has no address in the IPv6 subnet fd00::/64"}},
	{"route covers endpoint", header + "hosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 10.1.2.3:51820}\n  - {name: s2, address: 192.168.100.2, endpoint: 1.2.3.5:51820, routes: [10.0.0.0/8]}\n", []string{
		`spec-route-endpoint: wgnet.yaml:7: hosts[1].routes[0] "10.0.0.0/8" covers the endpoint of s1 (10.1.2.3:51820): its encrypted packets would be routed into the tunnel`}},
	{"psk between spokes", "version: 1\nnetwork: prod\nsubnets: [192.168.100.0/24]\ntopology: hub\nhub: s1\nhosts:\n  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820}\n  - {name: s2, address: 192.168.100.2, endpoint: 1.2.3.5:51820}\n  - {name: s3, address: 192.168.100.3, endpoint: 1.2.3.6:51820}\npreshared_keys: [[s1, s2], [s2, s3]]\n", []string{
		"spec-psk-not-peers: wgnet.yaml:10: preshared_keys[1] [s2, s3]: in a hub network only the hub peers with each host, so this key is never used"}},
}

func TestWarnings(t *testing.T) {
	for _, tt := range warningTests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, warns := Check("wgnet.yaml", []byte(tt.src))
			if len(errs) > 0 {
				t.Fatalf("unexpected errors: %v", render(errs))
			}
			if diff := cmp.Diff(tt.want, render(warns)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			for _, w := range warns {
				if w.Severity != diag.Warning {
					t.Errorf("%v: severity %v", w, w.Severity)
				}
			}
			if _, err := Parse("wgnet.yaml", []byte(tt.src)); err != nil {
				t.Errorf("Parse failed on warnings only: %v", err)
			}
		})
	}
}

// TestEveryCodeTested reads the Code constants from problem.go and checks that
// each one is produced by some test, so a new check can't go untested, and that
// each is in diag's table, reported by spec, with the severity the tests see.
func TestEveryCodeTested(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "problem.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && strings.HasPrefix(vs.Names[0].Name, "Code") {
			if lit, ok := vs.Values[0].(*ast.BasicLit); ok {
				s, _ := strconv.Unquote(lit.Value)
				codes = append(codes, s)
			}
		}
		return true
	})
	if len(codes) < 40 {
		t.Fatalf("found only %d codes in problem.go", len(codes))
	}
	seen := map[string]bool{}
	for _, p := range codesSeen(t) {
		seen[p.Code] = true
		if c, ok := diag.Lookup(p.Code); ok && c.Severity != p.Severity {
			t.Errorf("%s: %s in a test, %s in diag's table", p.Code, p.Severity, c.Severity)
		}
	}
	for _, c := range codes {
		if !seen[c] {
			t.Errorf("no test produces %s", c)
		}
		if e, ok := diag.Lookup(c); !ok || e.By != "spec" {
			t.Errorf("%s is not in diag's table as a spec code", c)
		}
	}
}

// codesSeen returns what the table tests and the secrets tests produce.
func codesSeen(t *testing.T) diag.List {
	var out diag.List
	collect := func(ps diag.List) {
		out = append(out, ps...)
	}
	for _, tt := range append(errorTests, warningTests...) {
		_, errs, warns := Check("x", []byte(tt.src))
		collect(errs)
		collect(warns)
	}
	for _, ps := range secretsProblems(t) {
		collect(ps)
	}
	collect(secretsWarnings(t))
	return out
}
