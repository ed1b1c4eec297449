package spec

import (
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// copyToTemp copies a testdata file into a temporary directory.
func copyToTemp(t *testing.T, name string) string {
	t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wgnet.yaml")
	must(t, os.WriteFile(path, src, 0o644))
	return path
}

func docFrom(t *testing.T, src string) *Document {
	t.Helper()
	d, err := ParseDocument("wgnet.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func bytesOf(t *testing.T, d *Document) string {
	t.Helper()
	b, err := d.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocumentRoundTrip: opening and rendering a file without edits changes
// nothing, not even spacing or comment alignment.
func TestDocumentRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/edit/*.yaml")
	files = append(files, "testdata/example.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, _ := os.ReadFile(f)
			d, err := ParseDocument(f, src)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(src), bytesOf(t, d)); diff != "" {
				t.Errorf("render without edits (-file +rendered):\n%s", diff)
			}
		})
	}
}

// TestEditKeepsComments loads a commented file, adds a host, removes another,
// changes a third and saves: every comment not about the removed host is still
// there, in order, and the result is the golden file.
func TestEditKeepsComments(t *testing.T) {
	path := copyToTemp(t, "testdata/edit/commented.yaml")
	d, err := LoadDocument(path)
	if err != nil {
		t.Fatal(err)
	}
	added, err := d.AddHost(Host{Name: "s4", Endpoint: "198.18.0.4:51820", PublicKey: wgkey.MustParseKey(key2)})
	must(t, err)
	if diff := cmp.Diff(addrs("10.99.0.4", "fd00:99::4"), added.Addresses, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("AddHost addresses (-want +got):\n%s", diff)
	}
	must(t, d.RemoveHost("s2", ""))
	ka := 30
	must(t, d.SetHost("laptop", HostChanges{Keepalive: &ka, Routes: pfx("10.0.7.0/24")}))
	must(t, d.Save())

	got, _ := os.ReadFile(path)
	golden(t, "testdata/edit/commented.golden", got)

	orig, _ := os.ReadFile("testdata/edit/commented.yaml")
	var want []string
	for _, c := range comments(string(orig)) {
		if !strings.Contains(c, "s2 goes away") && !strings.Contains(c, "# containers") {
			want = append(want, c)
		}
	}
	if diff := cmp.Diff(want, comments(string(got))); diff != "" {
		t.Errorf("comments after edits (-want +got):\n%s", diff)
	}
	s, err := Load(path)
	must(t, err)
	if diff := cmp.Diff([]Pair{{"s1", "laptop"}}, s.PresharedKeys); diff != "" {
		t.Errorf("preshared pairs after removing s2 (-want +got):\n%s", diff)
	}
}

// comments returns the comment text of each line that has one.
func comments(src string) []string {
	var out []string
	for _, line := range strings.Split(src, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			out = append(out, strings.TrimSpace(line[i:]))
		}
	}
	return out
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		must(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

const hubDoc = `version: 1
network: lab
subnets: [10.99.0.0/24, fd00:99::/64]
topology: hub
hosts: []
`

func TestAddHost(t *testing.T) {
	d := docFrom(t, hubDoc)
	h, err := d.AddHost(Host{Name: "s1", Endpoint: "198.18.0.1:51820"})
	must(t, err)
	if got := bytesOf(t, d); got != `version: 1
network: lab
subnets: [10.99.0.0/24, fd00:99::/64]
topology: hub
hub: s1
hosts:
  - name: s1
    endpoint: 198.18.0.1:51820
    address: [10.99.0.1, fd00:99::1]
` {
		t.Errorf("after the first AddHost:\n%s", got)
	}
	if h.Addresses[0] != netip.MustParseAddr("10.99.0.1") {
		t.Errorf("AddHost returned %v", h.Addresses)
	}
	// A given address is kept; the missing family is allocated, skipping used ones.
	h, err = d.AddHost(Host{Name: "s2", Addresses: addrs("10.99.0.7"), Keepalive: 25})
	must(t, err)
	h3, err := d.AddHost(Host{Name: "s3", Keepalive: 25})
	must(t, err)
	want := [][]netip.Addr{addrs("10.99.0.7", "fd00:99::2"), addrs("10.99.0.2", "fd00:99::3")}
	if diff := cmp.Diff(want, [][]netip.Addr{h.Addresses, h3.Addresses}, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("allocated (-want +got):\n%s", diff)
	}
	must(t, d.Validate())
	s, err := d.Spec()
	must(t, err)
	if s.Hub != "s1" || len(s.Hosts) != 3 {
		t.Errorf("hub %q, %d hosts", s.Hub, len(s.Hosts))
	}

	for _, tt := range []struct {
		name string
		host Host
		want string
	}{
		{"same name", Host{Name: "s1"}, "add host s1: a host of that name exists"},
		{"case-insensitive", Host{Name: "S1"}, `add host "S1": a name is 1-63 of a-z 0-9 _ . - starting with a letter or digit`},
		{"bad name", Host{Name: "../x"}, `add host "../x": a name is 1-63 of a-z 0-9 _ . - starting with a letter or digit`},
	} {
		if _, err := d.AddHost(tt.host); err == nil || err.Error() != tt.want {
			t.Errorf("%s: AddHost = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestAddHostFull(t *testing.T) {
	d := docFrom(t, "version: 1\nnetwork: p2p\nsubnets: [10.0.0.4/30]\ntopology: mesh\nhosts: []\n")
	for _, n := range []string{"a", "b"} {
		if _, err := d.AddHost(Host{Name: n, Endpoint: "198.18.0.1:51820"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.AddHost(Host{Name: "c"}); err == nil || !strings.Contains(err.Error(), "add host c: allocate address in 10.0.0.4/30: no free address") {
		t.Errorf("AddHost to a full /30 = %v", err)
	}
}

const setDoc = `version: 1
network: lab
subnets: [10.99.0.0/24]
topology: hub
hub: s1
hosts:
  - name: s1
    endpoint: 198.18.0.1:51820
    address: 10.99.0.1
  - name: s2
    endpoint: 198.18.0.2:51820   # public
    address: [10.99.0.2]
    routes:            # block style stays block style
      - 10.0.5.0/24
      - 10.0.6.0/24
    keepalive: 25      # NAT
`

func TestSetHost(t *testing.T) {
	k := wgkey.MustParseKey(key1)
	str := func(s string) *string { return &s }
	num := func(n int) *int { return &n }
	tests := []struct {
		name    string
		host    string
		changes HostChanges
		want    string // the s2 entry after the change ("" = unchanged)
		wantErr string
	}{
		{"endpoint", "s2", HostChanges{Endpoint: str("s2.example.net:51821")}, `  - name: s2
    endpoint: s2.example.net:51821 # public
    address: [10.99.0.2]
    routes:            # block style stays block style
      - 10.0.5.0/24
      - 10.0.6.0/24
    keepalive: 25      # NAT
`, ""},
		{"remove endpoint, keepalive and routes", "s2", HostChanges{Endpoint: str(""), Keepalive: num(0), ReplaceRoutes: true}, `  - name: s2
    address: [10.99.0.2]
`, ""},
		{"add route, keep order, no duplicate", "s2", HostChanges{Routes: pfx("10.0.6.0/24", "10.0.7.0/24")}, `  - name: s2
    endpoint: 198.18.0.2:51820   # public
    address: [10.99.0.2]
    routes:            # block style stays block style
      - 10.0.5.0/24
      - 10.0.6.0/24
      - 10.0.7.0/24
    keepalive: 25      # NAT
`, ""},
		{"replace and remove routes", "s2", HostChanges{ReplaceRoutes: true, Routes: pfx("10.0.8.0/24", "10.0.9.0/24"), RemoveRoutes: pfx("10.0.8.0/24")}, `  - name: s2
    endpoint: 198.18.0.2:51820   # public
    address: [10.99.0.2]
    routes:            # block style stays block style
      - 10.0.9.0/24
    keepalive: 25      # NAT
`, ""},
		{"remove a route it has not", "s2", HostChanges{RemoveRoutes: pfx("10.0.8.0/24")}, "", "set host s2: it has no route 10.0.8.0/24"},
		{"new keys go in canonical order", "s2", HostChanges{
			Addresses: addrs("10.99.0.9"), Keepalive: num(30), PublicKey: &k, ListenPort: num(51821),
			UnderlayMTU: num(1460), PrivateKeyFile: str("/etc/wireguard/wg0.key"),
			Hooks: &Hooks{PostUp: []string{"echo up"}},
		}, `  - name: s2
    endpoint: 198.18.0.2:51820   # public
    address: [10.99.0.9]
    routes:            # block style stays block style
      - 10.0.5.0/24
      - 10.0.6.0/24
    public_key: ` + key1 + `
    keepalive: 30      # NAT
    listen_port: 51821
    underlay_mtu: 1460
    private_key_file: /etc/wireguard/wg0.key
    hooks:
      post_up:
        - echo up
`, ""},
		{"hub", "s2", HostChanges{Hub: true}, "", ""},
		{"unknown host", "s9", HostChanges{Keepalive: num(5)}, "", `no host called "s9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := docFrom(t, setDoc)
			err := d.SetHost(tt.host, tt.changes)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("SetHost = %v, want %q", err, tt.wantErr)
				}
				return
			}
			must(t, err)
			got := bytesOf(t, d)
			want := setDoc
			if tt.want != "" {
				want = setDoc[:strings.Index(setDoc, "  - name: s2")] + tt.want
			}
			if tt.changes.Hub {
				want = strings.Replace(want, "hub: s1", "hub: s2", 1)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("after SetHost (-want +got):\n%s", diff)
			}
			if err := d.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

const removeDoc = `version: 1
network: lab
subnets: [10.99.0.0/24]
topology: hub
hub: s1
hosts:
  - {name: s1, endpoint: 198.18.0.1:51820, address: 10.99.0.1}
  - {name: s2, endpoint: 198.18.0.2:51820, address: 10.99.0.2}
  - {name: s3, endpoint: 198.18.0.3:51820, address: 10.99.0.3}
preshared_keys: [[s1, s2], [s2, s3], [s1, s3]]
`

func TestRemoveHost(t *testing.T) {
	tests := []struct {
		name, host, newHub string
		wantHub            string
		wantHosts          []string
		wantPairs          []Pair
		wantErr            string
	}{
		{name: "spoke", host: "s2", wantHub: "s1", wantHosts: []string{"s1", "s3"}, wantPairs: []Pair{{"s1", "s3"}}},
		{name: "hub needs a successor", host: "s1", wantErr: "remove host s1: it is the hub; name the host that takes its place"},
		{name: "hub with successor", host: "s1", newHub: "s3", wantHub: "s3", wantHosts: []string{"s2", "s3"}, wantPairs: []Pair{{"s2", "s3"}}},
		{name: "successor is itself", host: "s1", newHub: "s1", wantErr: "remove host s1: the new hub must be another host"},
		{name: "successor unknown", host: "s1", newHub: "s9", wantErr: `remove host s1: no host called "s9"`},
		{name: "not the hub", host: "s2", newHub: "s3", wantErr: "remove host s2: it is not the hub, so it needs no replacement"},
		{name: "unknown", host: "s9", wantErr: `no host called "s9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := docFrom(t, removeDoc)
			err := d.RemoveHost(tt.host, tt.newHub)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("RemoveHost = %v, want %q", err, tt.wantErr)
				}
				if got := bytesOf(t, d); got != removeDoc {
					t.Errorf("a failed RemoveHost changed the document:\n%s", got)
				}
				return
			}
			must(t, err)
			must(t, d.Validate())
			s, err := d.Spec()
			must(t, err)
			var names []string
			for _, h := range s.Hosts {
				names = append(names, h.Name)
			}
			if diff := cmp.Diff(tt.wantHosts, names); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPairs, s.PresharedKeys); diff != "" {
				t.Errorf("pairs (-want +got):\n%s", diff)
			}
			if s.Hub != tt.wantHub {
				t.Errorf("hub = %q, want %q", s.Hub, tt.wantHub)
			}
		})
	}
}

func TestRemoveLastHost(t *testing.T) {
	d := docFrom(t, "version: 1\nnetwork: lab\nsubnets: [10.99.0.0/24]\ntopology: hub\nhub: s1\nhosts:\n  - {name: s1, address: 10.99.0.1}\n")
	must(t, d.RemoveHost("s1", ""))
	if got, want := bytesOf(t, d), "version: 1\nnetwork: lab\nsubnets: [10.99.0.0/24]\ntopology: hub\nhosts: []\n"; got != want {
		t.Errorf("after removing the last host:\n%s\nwant:\n%s", got, want)
	}
	must(t, d.Validate())
}

func TestSetHub(t *testing.T) {
	d := docFrom(t, removeDoc)
	must(t, d.SetHub("s3"))
	if s, _ := d.Spec(); s.Hub != "s3" {
		t.Errorf("hub = %q", s.Hub)
	}
	if err := d.SetHub("s9"); err == nil {
		t.Error("SetHub(unknown) succeeded")
	}
	mesh := docFrom(t, strings.Replace(strings.Replace(removeDoc, "topology: hub", "topology: mesh", 1), "hub: s1\n", "", 1))
	if err := mesh.SetHub("s1"); err == nil || err.Error() != "set hub s1: the network's topology is not hub" {
		t.Errorf("SetHub in a mesh = %v", err)
	}
}

func TestAddPresharedPair(t *testing.T) {
	d := docFrom(t, strings.Replace(removeDoc, "preshared_keys: [[s1, s2], [s2, s3], [s1, s3]]\n", "", 1))
	must(t, d.AddPresharedPair(Pair{"s3", "s1"}))
	must(t, d.AddPresharedPair(Pair{"s1", "s3"})) // already there: nothing
	must(t, d.AddPresharedPair(Pair{"s1", "s2"}))
	if err := d.AddPresharedPair(Pair{"s1", "s1"}); err == nil {
		t.Error("a pair of one host was added")
	}
	if err := d.AddPresharedPair(Pair{"s1", "s9"}); err == nil {
		t.Error("a pair with an unknown host was added")
	}
	if got := bytesOf(t, d); !strings.HasSuffix(got, "preshared_keys: [[s1, s3], [s1, s2]]\n") {
		t.Errorf("rendered:\n%s", got)
	}
}

func TestSaveRefusesInvalid(t *testing.T) {
	path := copyToTemp(t, "testdata/edit/commented.yaml")
	before, _ := os.ReadFile(path)
	d, err := LoadDocument(path)
	must(t, err)
	bad := "198.18.0.9"
	must(t, d.SetHost("s2", HostChanges{Endpoint: &bad}))
	err = d.Save()
	want := "not saving " + path + `: hosts[1].endpoint "198.18.0.9": missing port`
	if err == nil || err.Error() != want {
		t.Fatalf("Save = %v, want %q", err, want)
	}
	var p diag.Failure
	if !errors.As(err, &p) || p.Code != CodeEndpoint {
		t.Errorf("Save error carries no Problem: %#v", p)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("Save changed the file although it refused")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("Save left %d files in the directory", len(entries))
	}
}

func TestInit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wgnet.yaml")
	d, err := Init(path, InitOptions{Network: "prod", Subnets: pfx("192.168.100.0/24", "fd00:100::/64"), Topology: TopologyHub, ListenPort: 51821})
	must(t, err)
	must(t, d.Save())
	got, _ := os.ReadFile(path)
	want := `# WireGuard network "prod", managed by wgnet: edit it by hand or with
# ` + "`wgnet add/set/remove`, check it with `wgnet check`" + `. Private keys are not
# kept here but in wgnet.secrets/ beside this file.
version: 1
network: prod
subnets: [192.168.100.0/24, fd00:100::/64]
listen_port: 51821
topology: hub
hosts: []
`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("init (-want +got):\n%s", diff)
	}
	if m := mode(t, path); m != 0o644 {
		t.Errorf("spec mode %04o, want 0644", m)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("Load after Init: %v", err)
	}
	if _, err := Init(path, InitOptions{Network: "prod", Subnets: pfx("10.0.0.0/24")}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Init over an existing file = %v, want ErrExist", err)
	}
	for name, o := range map[string]InitOptions{
		"no subnet":  {Network: "x"},
		"bad name":   {Network: "X Y", Subnets: pfx("10.0.0.0/24")},
		"host bits":  {Network: "x", Subnets: pfx("10.0.0.1/24")},
		"bad port":   {Network: "x", Subnets: pfx("10.0.0.0/24"), ListenPort: 70000},
		"bad topo":   {Network: "x", Subnets: pfx("10.0.0.0/24"), Topology: "ring"},
		"two v4":     {Network: "x", Subnets: pfx("10.0.0.0/24", "10.0.1.0/24")},
		"bad iface":  {Network: "x", Subnets: pfx("10.0.0.0/24"), Interface: "a/b"},
		"small v6 m": {Network: "x", Subnets: pfx("fd00::/64"), MTU: 1000},
	} {
		if _, err := Init(filepath.Join(t.TempDir(), "w.yaml"), o); err == nil {
			t.Errorf("%s: Init accepted %+v", name, o)
		}
	}
}

func TestPrivateKeyFileOf(t *testing.T) {
	s := &Spec{Interface: "wg-lab"}
	if got := s.PrivateKeyFileOf(&Host{}); got != "/etc/wireguard/wg-lab.key" {
		t.Errorf("default = %q", got)
	}
	if got := (&Spec{}).PrivateKeyFileOf(&Host{}); got != "/etc/wireguard/wg0.key" {
		t.Errorf("default without interface = %q", got)
	}
	if got := s.PrivateKeyFileOf(&Host{PrivateKeyFile: "/k"}); got != "/k" {
		t.Errorf("given = %q", got)
	}
}

func TestFromSpec(t *testing.T) {
	s, err := Load("testdata/example.yaml")
	must(t, err)
	marshalRoundTrip(t, s)
	path := filepath.Join(t.TempDir(), "imported.yaml")
	must(t, FromSpec(path, s).Save())
	if _, err := Load(path); err != nil {
		t.Errorf("Load of a FromSpec file: %v", err)
	}
}

// marshalRoundTrip checks that Marshal writes s as a spec that parses back to s.
func marshalRoundTrip(t *testing.T, s *Spec) {
	t.Helper()
	out, err := Marshal(s)
	must(t, err)
	s2, err := Parse("marshalled", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if diff := cmp.Diff(s, s2, ignoreSource, cmpopts.IgnoreFields(Host{}, "Line")); diff != "" {
		t.Errorf("Marshal/Parse (-want +got):\n%s", diff)
	}
}

// TestSetRoutesKeepsItemComments: adding and removing routes edits the list in
// place, so comments on the routes that stay are kept.
func TestSetRoutesKeepsItemComments(t *testing.T) {
	src := `version: 1
network: p
subnets: [10.9.0.0/24]
topology: mesh
hosts:
  - name: s1
    address: [10.9.0.1]
    routes:
      - 10.0.4.0/24   # r1
      - 10.0.5.0/24   # r2
    public_key: +NzZ0fN7ex8LKUpEFzhEegID42WAaS1RTNe7PFho0mE=
`
	d, err := ParseDocument("wgnet.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	err = d.SetHost("s1", HostChanges{
		Routes:       []netip.Prefix{netip.MustParsePrefix("10.0.8.0/24")},
		RemoveRoutes: []netip.Prefix{netip.MustParsePrefix("10.0.4.0/24")},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10.0.5.0/24   # r2", "- 10.0.8.0/24"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("edited spec lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "10.0.4.0/24") {
		t.Errorf("removed route still there:\n%s", out)
	}
}

// TestWgQuickFields: the fields that keep a wg-quick file as it was (an
// address with its own prefix length, a host's MTU or "auto", DNS, Table,
// FwMark, full_tunnel, assign_address) parse, validate, and come back the same
// through Marshal; and SetHost keeps the other family's prefix length.
func TestWgQuickFields(t *testing.T) {
	src, err := os.ReadFile("testdata/wgquick-fields.yaml")
	must(t, err)
	s, err := Parse("wgnet.yaml", src)
	must(t, err)
	srv, laptop, router := &s.Hosts[0], &s.Hosts[1], &s.Hosts[2]
	if s.MTU != MTUAuto || s.EffectiveMTU() != 0 || s.MTUOf(srv) != 1380 || s.MTUOf(laptop) != 0 || router.MTU != MTUAuto {
		t.Errorf("mtu: network %d (effective %d), server %d, laptop %d, router %d", s.MTU, s.EffectiveMTU(), s.MTUOf(srv), s.MTUOf(laptop), router.MTU)
	}
	if srv.FwMark != 51820 || laptop.Table != "1234" || !slices.Equal(laptop.DNS, []string{"10.8.0.1", "vpn.internal"}) {
		t.Errorf("fwmark %d, table %q, dns %q", srv.FwMark, laptop.Table, laptop.DNS)
	}
	if !laptop.RandomPort || srv.RandomPort {
		t.Errorf("random port: laptop %v, server %v", laptop.RandomPort, srv.RandomPort)
	}
	if router.Table != "off" || router.FwMark != 0xca6c {
		t.Errorf("router: table %q, fwmark %#x", router.Table, router.FwMark)
	}
	if got := s.AddressPrefix(laptop, laptop.Addresses[1]); got != netip.MustParsePrefix("fd42::2/128") {
		t.Errorf("laptop's v6 address %s, want fd42::2/128", got)
	}
	if got := s.AddressPrefix(srv, srv.Addresses[0]); got != netip.MustParsePrefix("10.8.0.1/24") {
		t.Errorf("server's v4 address %s, want 10.8.0.1/24", got)
	}
	if !s.Hosts[3].External || len(s.Hosts[3].Addresses) != 0 {
		t.Errorf("partner: external %v, addresses %v", s.Hosts[3].External, s.Hosts[3].Addresses)
	}
	if !router.AddressElsewhere || !slices.Equal(laptop.FullTunnel, pfx("0.0.0.0/0")) {
		t.Errorf("router elsewhere %v, laptop full tunnel %v", router.AddressElsewhere, laptop.FullTunnel)
	}
	marshalRoundTrip(t, s)
	d, err := ParseDocument("wgnet.yaml", src)
	must(t, err)
	must(t, d.SetHost("laptop", HostChanges{Addresses: addrs("10.8.0.9")}))
	s3, err := d.Spec()
	must(t, err)
	if got := hostAddrList(&s3.Hosts[1]); len(got.Content) != 2 || got.Content[0].Value != "10.8.0.9" || got.Content[1].Value != "fd42::2/128" {
		t.Errorf("after SetHost: %v", got.Content)
	}
	// And a host without an address at all, when it is assigned elsewhere.
	s.Hosts[2].Addresses = nil
	must(t, s.Validate())
}
