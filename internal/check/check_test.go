package check

import (
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// testPriv is a fixed private key per name, so messages are reproducible.
func testPriv(name string) wgkey.Private { return wgkey.Private(sha256.Sum256([]byte(name))) }

func testPub(name string) wgkey.Key { return testPriv(name).Public() }

var keyFuncs = template.FuncMap{
	"priv": func(name string) string { return testPriv(name).Base64() },
	"pub":  func(name string) string { return testPub(name).String() },
	"psk":  func(name string) string { return wgkey.Key(sha256.Sum256([]byte("psk " + name))).String() },
}

// expand fills in {{priv "s1"}}, {{pub "s1"}} and {{psk "x"}}.
func expand(t testing.TB, src string) string {
	t.Helper()
	tmpl, err := template.New("").Funcs(keyFuncs).Parse(src)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, nil); err != nil {
		t.Fatalf("template: %v", err)
	}
	return b.String()
}

// A clean hub: s1 is the hub everybody dials; s2 and s3 are spokes behind NAT
// that reach each other through it. Line numbers matter to the tests: edits keep
// them where they can.
var hubSet = map[string]string{
	"s1.conf": `[Interface]
PrivateKey = {{priv "s1"}}
Address = 10.0.0.1/24
ListenPort = 51820
PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1

# s2
[Peer]
PublicKey = {{pub "s2"}}
AllowedIPs = 10.0.0.2/32

# s3
[Peer]
PublicKey = {{pub "s3"}}
AllowedIPs = 10.0.0.3/32
`,
	"s2.conf": `[Interface]
PrivateKey = {{priv "s2"}}
Address = 10.0.0.2/24

# s1
[Peer]
PublicKey = {{pub "s1"}}
AllowedIPs = 10.0.0.0/24
Endpoint = 198.18.0.1:51820
PersistentKeepalive = 25
`,
	"s3.conf": `[Interface]
PrivateKey = {{priv "s3"}}
Address = 10.0.0.3/24

# s1
[Peer]
PublicKey = {{pub "s1"}}
AllowedIPs = 10.0.0.0/24
Endpoint = 198.18.0.1:51820
PersistentKeepalive = 25
`,
}

// A clean full mesh of three public hosts.
var meshSet = func() map[string]string {
	m := map[string]string{}
	for i := 1; i <= 3; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, "[Interface]\nPrivateKey = {{priv \"s%d\"}}\nAddress = 10.0.0.%d/24\nListenPort = 51820\n", i, i)
		for j := 1; j <= 3; j++ {
			if j != i {
				fmt.Fprintf(&b, "\n# s%d\n[Peer]\nPublicKey = {{pub \"s%d\"}}\nAllowedIPs = 10.0.0.%d/32\nEndpoint = 198.18.0.%d:51820\n", j, j, j, j)
			}
		}
		m[fmt.Sprintf("s%d.conf", i)] = b.String()
	}
	return m
}()

// edit is one change to a config of a set: replace old (which must be there) by new.
type edit struct{ file, old, new string }

const postUp = "PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1\n"

// spokeForwards gives spoke f a PostUp on its (blank) line 4.
func spokeForwards(f string) edit {
	return edit{f, "/24\n\n# s1", "/24\n" + postUp + "# s1"}
}

func build(t *testing.T, set map[string]string, edits []edit) []*wgconf.Config {
	t.Helper()
	files := map[string]string{}
	for f, src := range set {
		files[f] = src
	}
	for _, e := range edits {
		src, ok := files[e.file]
		switch {
		case !ok:
			src = ""
		case !strings.Contains(src, e.old):
			t.Fatalf("edit %s: %q not found", e.file, e.old)
		}
		files[e.file] = strings.Replace(src, e.old, e.new, 1)
	}
	var cfgs []*wgconf.Config
	names := slices.Sorted(func(yield func(string) bool) {
		for f := range files {
			if !yield(f) {
				return
			}
		}
	})
	for _, f := range names {
		if files[f] == "" {
			continue // deleted
		}
		c, err := wgconf.Parse(f, []byte(expand(t, files[f])))
		if err != nil {
			t.Fatalf("test config %s: %v", f, err)
		}
		cfgs = append(cfgs, c)
	}
	return cfgs
}

// short is what the tests compare: where, how bad and which check.
func short(fs []diag.Diagnostic) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s:%d %s %s", f.File, f.Line, f.Severity, f.Code))
	}
	return out
}

func TestConfigs(t *testing.T) {
	tests := []struct {
		name     string
		set      map[string]string // default hubSet
		edits    []edit
		topology string
		hub      string
		modes    map[string]os.FileMode
		// publicKeys are Input.PublicKeys.
		publicKeys map[string]wgkey.Key
		want       []string
		// msgs are substrings the message of the finding at the same index must have.
		msgs map[int][]string
	}{
		{name: "clean hub", want: []string{}},
		{name: "clean hub, explicit", topology: TopologyHub, hub: "s1", want: []string{}},
		{name: "clean mesh", set: meshSet, want: []string{}},
		{name: "clean mesh, explicit", set: meshSet, topology: TopologyMesh, want: []string{}},
		{
			name:  "full-tunnel spoke: said what it means, nothing else",
			edits: []edit{{"s2.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 0.0.0.0/0"}},
			want:  []string{"s2.conf:8 warning full-tunnel"},
			msgs:  map[int][]string{0: {`0.0.0.0/0 on peer "s1" (line 6) makes a full tunnel`, "s1 must forward and masquerade"}},
		},
		{
			name:  "keyless host is matched by its peers' evidence",
			edits: []edit{{"s2.conf", `PrivateKey = {{priv "s2"}}`, "# PrivateKey from PostUp"}},
			want:  []string{},
		},
		{
			name:       "keyless host with its public key given",
			edits:      []edit{{"s2.conf", `PrivateKey = {{priv "s2"}}`, "# PrivateKey from PostUp"}},
			publicKeys: map[string]wgkey.Key{"s2": testPub("s2")},
			want:       []string{},
		},
		{
			name:       "keyless host with the wrong public key given",
			edits:      []edit{{"s2.conf", `PrivateKey = {{priv "s2"}}`, "# PrivateKey from PostUp"}},
			publicKeys: map[string]wgkey.Key{"s2": testPub("other")},
			want:       []string{"s1.conf:9 error unknown-peer-key"},
		},
		{
			name:  "dup-key",
			edits: []edit{{"s3.conf", `{{priv "s3"}}`, `{{priv "s2"}}`}},
			want:  []string{"s3.conf:2 error dup-key"},
			msgs:  map[int][]string{0: {"s3 has the same private key as s2 (s2.conf:2)"}},
		},
		{
			name: "self-peer",
			edits: []edit{{"s2.conf", "PersistentKeepalive = 25\n",
				"PersistentKeepalive = 25\n\n[Peer]\nPublicKey = {{pub \"s2\"}}\nAllowedIPs = 10.0.0.99/32\n"}},
			want: []string{"s2.conf:13 error self-peer"},
		},
		{
			name:  "dup-peer, meant for s3 by its name",
			edits: []edit{{"s1.conf", `PublicKey = {{pub "s3"}}`, `PublicKey = {{pub "s2"}}`}},
			want:  []string{"s1.conf:14 error dup-peer"},
			msgs: map[int][]string{0: {
				`peer "s3" (line 13) has the same public key as peer "s2" (line 8)`,
				"by its name it is probably s3 (10.0.0.3), whose key is " + testPub("s3").String(),
			}},
		},
		{
			name: "unknown-peer-key, by address",
			edits: []edit{
				{"s1.conf", "# s2\n", "# the second server\n"},
				{"s1.conf", `PublicKey = {{pub "s2"}}`, `PublicKey = {{pub "nobody"}}`},
			},
			want: []string{"s1.conf:9 error unknown-peer-key"},
			msgs: map[int][]string{0: {fmt.Sprintf(
				"peer %s (line 8): public key %s is held by no host of this set; by address it is probably s2 (10.0.0.2), whose key is %s",
				abbrev(testPub("nobody")), testPub("nobody"), testPub("s2"))}},
		},
		{
			name: "unknown-peer-key, by endpoint",
			edits: []edit{
				{"s2.conf", "# s1\n", "# the hub\n"},
				{"s2.conf", `PublicKey = {{pub "s1"}}`, `PublicKey = {{pub "nobody"}}`},
			},
			want: []string{"s2.conf:7 error unknown-peer-key"},
			msgs: map[int][]string{0: {"by its endpoint 198.18.0.1:51820 it is probably s1 (10.0.0.1), whose key is " + testPub("s1").String()}},
		},
		{
			name: "peer-not-in-set",
			edits: []edit{{"s1.conf", "AllowedIPs = 10.0.0.3/32\n",
				"AllowedIPs = 10.0.0.3/32\n\n[Peer]\nPublicKey = {{pub \"laptop\"}}\nAllowedIPs = 10.0.0.50/32\n"}},
			want: []string{"s1.conf:18 warning peer-not-in-set"},
		},
		{
			name:  "asymmetric-peer",
			edits: []edit{{"s1.conf", "\n# s3\n[Peer]\nPublicKey = {{pub \"s3\"}}\nAllowedIPs = 10.0.0.3/32\n", ""}},
			want:  []string{"s3.conf:6 error asymmetric-peer"},
			msgs:  map[int][]string{0: {"s3 lists s1 as peer \"s1\" (line 6), but s1 has no [Peer] for s3", "PublicKey = " + testPub("s3").String()}},
		},
		{
			name:  "psk-mismatch",
			edits: []edit{{"s1.conf", "PublicKey = {{pub \"s2\"}}\n", "PublicKey = {{pub \"s2\"}}\nPresharedKey = {{psk \"x\"}}\n"}},
			want:  []string{"s1.conf:10 error psk-mismatch"},
		},
		{
			name:     "missing-peer, mesh",
			topology: TopologyMesh,
			want:     []string{"s2.conf:1 error missing-peer"},
		},
		{
			name:     "missing-peer, hub",
			topology: TopologyHub,
			hub:      "s1",
			edits: []edit{
				{"s1.conf", "\n# s3\n[Peer]\nPublicKey = {{pub \"s3\"}}\nAllowedIPs = 10.0.0.3/32\n", ""},
				{"s3.conf", "\n# s1\n[Peer]\nPublicKey = {{pub \"s1\"}}\nAllowedIPs = 10.0.0.0/24\nEndpoint = 198.18.0.1:51820\nPersistentKeepalive = 25\n", ""},
			},
			want: []string{"s3.conf:1 error missing-peer"},
		},
		{
			name:  "dup-allowedip",
			edits: []edit{{"s1.conf", "AllowedIPs = 10.0.0.3/32", "AllowedIPs = 10.0.0.3/32, 10.0.0.2/32"}},
			want:  []string{"s1.conf:15 error dup-allowedip"},
			msgs:  map[int][]string{0: {`10.0.0.2/32 is in AllowedIPs of peer "s2" (line 8) and peer "s3" (line 13): wg keeps it only on the last one set, peer "s3" (line 13)`}},
		},
		{
			name: "overlap-allowedip",
			edits: []edit{
				{"s2.conf", "PersistentKeepalive = 25\n", "PersistentKeepalive = 25\n\n# s3\n[Peer]\nPublicKey = {{pub \"s3\"}}\nAllowedIPs = 10.0.0.3/32\nEndpoint = 198.18.0.3:51820\nPersistentKeepalive = 25\n"},
				{"s3.conf", "Address = 10.0.0.3/24\n", "Address = 10.0.0.3/24\nListenPort = 51820\n"},
				{"s3.conf", "PersistentKeepalive = 25\n", "PersistentKeepalive = 25\n\n# s2\n[Peer]\nPublicKey = {{pub \"s2\"}}\nAllowedIPs = 10.0.0.2/32\n"},
			},
			want: []string{"s2.conf:15 warning overlap-allowedip", "s3.conf:16 warning overlap-allowedip"},
			msgs: map[int][]string{0: {`10.0.0.3/32 of peer "s3" (line 13) overlaps 10.0.0.0/24 of peer "s1" (line 6): peer "s3" (line 13) gets 10.0.0.3/32 (longest prefix)`}},
		},
		{
			name:  "dup-address",
			edits: []edit{{"s3.conf", "Address = 10.0.0.3/24", "Address = 10.0.0.2/24"}},
			want:  []string{"s3.conf:3 error dup-address"},
		},
		{
			name:  "address-not-routed",
			edits: []edit{{"s1.conf", "AllowedIPs = 10.0.0.2/32", "AllowedIPs = 10.0.0.12/32"}},
			want:  []string{"s1.conf:10 error address-not-routed"},
			msgs:  map[int][]string{0: {"do not cover s2's address 10.0.0.2", "add 10.0.0.2/32"}},
		},
		{
			name: "address-not-routed, another peer wins",
			edits: []edit{
				{"s2.conf", "PersistentKeepalive = 25\n", "PersistentKeepalive = 25\n\n# s3\n[Peer]\nPublicKey = {{pub \"s3\"}}\nAllowedIPs = 10.0.0.33/32\nEndpoint = 198.18.0.3:51820\nPersistentKeepalive = 25\n"},
				{"s3.conf", "Address = 10.0.0.3/24\n", "Address = 10.0.0.3/24\nListenPort = 51820\n"},
				{"s3.conf", "PersistentKeepalive = 25\n", "PersistentKeepalive = 25\n\n# s2\n[Peer]\nPublicKey = {{pub \"s2\"}}\nAllowedIPs = 10.0.0.2/32\n"},
			},
			want: []string{"s2.conf:15 error address-not-routed", "s2.conf:15 warning overlap-allowedip", "s3.conf:16 warning overlap-allowedip"},
			msgs: map[int][]string{0: {`s3's address 10.0.0.3 goes to peer "s1" (line 6) by 10.0.0.0/24 instead`}},
		},
		{
			name: "no-route: spokes scoped to the hub's address",
			edits: []edit{
				{"s2.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.1/32"},
				{"s3.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.1/32"},
			},
			want: []string{"s2.conf:8 warning no-route", "s3.conf:8 warning no-route"},
			msgs: map[int][]string{0: {"s2 has no route to s3", `add 10.0.0.3/32 (or the overlay subnet) to AllowedIPs of peer "s1" (line 6)`}},
		},
		{
			name: "route-overlap between hosts",
			edits: []edit{
				spokeForwards("s2.conf"), spokeForwards("s3.conf"),
				{"s1.conf", "AllowedIPs = 10.0.0.2/32", "AllowedIPs = 10.0.0.2/32, 10.2.0.0/24"},
				{"s1.conf", "AllowedIPs = 10.0.0.3/32", "AllowedIPs = 10.0.0.3/32, 10.2.0.0/16"},
				{"s2.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.0/24, 10.2.0.0/16"},
				{"s3.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.0/24, 10.2.0.0/24"},
			},
			want: []string{"s1.conf:15 error route-overlap"},
			msgs: map[int][]string{0: {"subnet 10.2.0.0/16 routed to s3 overlaps 10.2.0.0/24 routed to s2 (s1.conf:10): packets for 10.2.0.0/24 go to s2"}},
		},
		{
			name: "routed subnets through a hub are clean",
			edits: []edit{
				spokeForwards("s2.conf"), spokeForwards("s3.conf"),
				{"s1.conf", "AllowedIPs = 10.0.0.2/32", "AllowedIPs = 10.0.0.2/32, 10.2.0.0/24"},
				{"s1.conf", "AllowedIPs = 10.0.0.3/32", "AllowedIPs = 10.0.0.3/32, 10.3.0.0/24"},
				{"s2.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.0/24, 10.3.0.0/24"},
				{"s3.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.0/24, 10.2.0.0/24"},
			},
			want: []string{},
		},
		{
			name: "route-overlap with the overlay",
			edits: []edit{
				spokeForwards("s2.conf"),
				{"s1.conf", "AllowedIPs = 10.0.0.2/32", "AllowedIPs = 10.0.0.2/32, 10.0.0.128/25"},
			},
			want: []string{"s1.conf:10 error route-overlap"},
			msgs: map[int][]string{0: {"overlaps the overlay subnet 10.0.0.0/24"}},
		},
		{
			name: "docker-overlap",
			edits: []edit{
				spokeForwards("s2.conf"),
				{"s1.conf", "AllowedIPs = 10.0.0.2/32", "AllowedIPs = 10.0.0.2/32, 172.17.0.0/16"},
				{"s3.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.0/24, 172.17.0.0/16"},
			},
			want: []string{"s1.conf:10 warning docker-overlap"},
		},
		{
			name:  "endpoint-loop",
			edits: []edit{{"s2.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.0/24, 198.18.0.0/24"}},
			want:  []string{"s2.conf:8 error endpoint-loop"},
		},
		{
			// The finding is on the line of the entry that holds the Endpoint,
			// not on the first AllowedIPs line of the section. 203.0.113.0/24
			// sorts after it, so its place in the route table (1) is not its
			// place in the peer's AllowedIPs (2).
			name:  "endpoint-loop on a second AllowedIPs line",
			edits: []edit{{"s2.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.0/24, 203.0.113.0/24\nAllowedIPs = 198.18.0.0/24"}},
			want:  []string{"s2.conf:9 error endpoint-loop"},
			msgs:  map[int][]string{0: {"AllowedIPs 198.18.0.0/24 cover its own Endpoint"}},
		},
		{
			name: "endpoint-loop: not with Table = off",
			edits: []edit{
				{"s2.conf", "AllowedIPs = 10.0.0.0/24", "AllowedIPs = 10.0.0.0/24, 198.18.0.0/24"},
				{"s2.conf", "/24\n\n# s1", "/24\nTable = off\n# s1"},
			},
			want: []string{},
		},
		{
			name:  "no-endpoint",
			edits: []edit{{"s3.conf", "Endpoint = 198.18.0.1:51820", "# no endpoint"}},
			want:  []string{"s3.conf:6 error no-endpoint"},
			msgs:  map[int][]string{0: {"others reach s1 at 198.18.0.1:51820: add Endpoint = 198.18.0.1:51820 here"}},
		},
		{
			name:  "endpoint-port",
			edits: []edit{{"s2.conf", "198.18.0.1:51820", "198.18.0.1:51821"}},
			want:  []string{"s2.conf:9 error endpoint-port"},
		},
		{
			name:  "no-listen-port",
			edits: []edit{{"s1.conf", "ListenPort = 51820", "# no ListenPort"}},
			want:  []string{"s1.conf:1 warning no-listen-port"},
			msgs:  map[int][]string{0: {"add ListenPort = 51820"}},
		},
		{
			name:  "hub-no-forwarding",
			edits: []edit{{"s1.conf", "PostUp = sysctl", "# PostUp = sysctl"}},
			want:  []string{"s1.conf:1 warning hub-no-forwarding"},
			msgs:  map[int][]string{0: {"s1 is the hub", "IPv4 (s2 routes 10.0.0.0/24 to it)", "confirm on the host with `sysctl net.ipv4.ip_forward`", "PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1"}},
		},
		{
			name: "hub-no-forwarding: routed subnet behind a spoke",
			edits: []edit{
				{"s1.conf", "AllowedIPs = 10.0.0.2/32", "AllowedIPs = 10.0.0.2/32, 10.2.0.0/24"},
			},
			want: []string{"s2.conf:1 warning hub-no-forwarding"},
			msgs: map[int][]string{0: {"s2 relays traffic for its peers"}},
		},
		{
			// The form `wg setconf` reads (wgnet render -o wg): no Address, no
			// hooks; whatever brings it up sets forwarding too.
			name: "hub-no-forwarding: none for a file without Address",
			edits: []edit{
				{"s1.conf", "Address = 10.0.0.1/24\nListenPort = 51820\nPostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1", "ListenPort = 51820"},
				{"s1.conf", "AllowedIPs = 10.0.0.2/32", "AllowedIPs = 10.0.0.2/32, 10.2.0.0/24"},
				{"s2.conf", "Address = 10.0.0.2/24", "# no Address"},
			},
			want: []string{},
		},
		{
			name: "default-route",
			edits: []edit{
				spokeForwards("s2.conf"),
				{"s1.conf", "AllowedIPs = 10.0.0.2/32", "AllowedIPs = 0.0.0.0/0"},
			},
			want: []string{"s1.conf:10 warning default-route"},
		},
		{
			name: "default-route: not with Table = off",
			edits: []edit{
				spokeForwards("s2.conf"),
				{"s1.conf", "AllowedIPs = 10.0.0.2/32", "AllowedIPs = 0.0.0.0/0"},
				{"s1.conf", "forwarding=1\n\n", "forwarding=1\nTable = off\n"},
			},
			want: []string{},
		},
		{
			name:  "keepalive-nat",
			edits: []edit{{"s2.conf", "PersistentKeepalive = 25", "# no keepalive"}},
			want:  []string{"s2.conf:6 warning keepalive-nat"},
		},
		{
			name: "mtu",
			edits: []edit{
				{"s1.conf", "forwarding=1\n\n", "forwarding=1\nMTU = 1500\n"},
				{"s2.conf", "/24\n\n# s1", "/24\nMTU = 1380\n# s1"},
				{"s3.conf", "/24\n\n# s1", "/24\nMTU = 1420\n# s1"},
			},
			want: []string{"s1.conf:6 warning mtu", "s3.conf:4 warning mtu"},
			msgs: map[int][]string{1: {"MTUs differ between hosts (s1 1500, s2 1380, s3 1420)"}},
		},
		{
			name: "key-hook",
			edits: []edit{
				{"s2.conf", `PrivateKey = {{priv "s2"}}`, "PostUp = wg set %i private-key /etc/wireguard/wg0.key; touch /tmp/x"},
				{"s3.conf", `PrivateKey = {{priv "s3"}}`, "PreUp = wg set %i private-key /etc/wireguard/wg0.key\nPostUp = wg set %i private-key /etc/wireguard/wg0.key"},
			},
			publicKeys: map[string]wgkey.Key{"s2": testPriv("s2").Public(), "s3": testPriv("s3").Public()},
			want:       []string{"s2.conf:2 warning key-hook", "s3.conf:2 warning key-hook"},
			msgs: map[int][]string{
				0: {"loads a private key from a path that is not plain data"},
				1: {"PreUp", "loads the private key outside PostUp"},
			},
		},
		{
			name:  "world-readable",
			modes: map[string]os.FileMode{"s1.conf": 0o644, "s2.conf": 0o600, "s3.conf": 0o400},
			want:  []string{"s1.conf:0 warning world-readable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := tt.set
			if set == nil {
				set = hubSet
			}
			got := Configs(Input{Configs: build(t, set, tt.edits), Modes: tt.modes, Topology: tt.topology, Hub: tt.hub, PublicKeys: tt.publicKeys})
			if os.Getenv("CHECK_DEBUG") != "" {
				for _, f := range got {
					t.Log(f)
				}
			}
			if diff := cmp.Diff(tt.want, short(got)); diff != "" {
				for _, f := range got {
					t.Log(f)
				}
				t.Fatalf("findings (-want +got):\n%s", diff)
			}
			for i, subs := range tt.msgs {
				for _, s := range subs {
					if !strings.Contains(got[i].Message, s) {
						t.Errorf("finding %d: message\n\t%s\nlacks\n\t%s", i, got[i].Message, s)
					}
				}
			}
		})
	}
}
