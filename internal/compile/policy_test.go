package compile

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/wgconf"

	"github.com/wgnet/wgnet/internal/policy"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// policySpecs are the policy package's test networks.
var policySpecs = []string{"hub", "mesh", "mesh-deny", "article"}

// loadPolicySpec loads ../policy/testdata/NAME.yaml with fixed keys.
func loadPolicySpec(t *testing.T, name string) (*spec.Spec, spec.Secrets) {
	t.Helper()
	s, err := spec.Load(filepath.Join("..", "policy", "testdata", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sec := spec.Secrets{PrivateKeys: map[string]wgkey.Private{}}
	for i, h := range s.Hosts {
		sec.PrivateKeys[h.Name] = testKey(byte(10 + i))
	}
	return s, sec
}

// TestPolicyGolden compiles the policy test networks and compares each host's
// filter and peers with testdata/policy/NAME.txt.
func TestPolicyGolden(t *testing.T) {
	for _, name := range policySpecs {
		t.Run(name, func(t *testing.T) {
			s, sec := loadPolicySpec(t, name)
			got := compiledPolicy(t, s, sec)
			path := filepath.Join("testdata", "policy", name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", path, diff)
			}
			if again := compiledPolicy(t, s, sec); again != got {
				t.Error("two compilations differ")
			}
		})
	}
}

// compiledPolicy compiles s and renders every host's filter and peers, then
// its wg-quick file.
func compiledPolicy(t *testing.T, s *spec.Spec, sec spec.Secrets) string {
	hcs, err := Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, hc := range hcs {
		fmt.Fprintf(&b, "## %s\n", hc.Name)
		b.WriteString(policy.Format(&hc.Firewall.Filter))
		for _, p := range hc.Peers {
			fmt.Fprintf(&b, "peer %s: %s\n", p.Name, joinPrefixes(p.AllowedIPs))
		}
	}
	for _, hc := range hcs {
		fmt.Fprintf(&b, "\n## %s.conf\n%s", hc.Name, hc.WgQuick())
	}
	return b.String()
}

// TestPolicyWgQuickRoundTrip: every host's filter, rendered into its wg-quick
// file as nft hook lines, reads back (wgconf.Parse, intent.FromConfig) as the
// same typed filter, with its origins; the hooks are not left as user hooks.
func TestPolicyWgQuickRoundTrip(t *testing.T) {
	for _, name := range policySpecs {
		s, sec := loadPolicySpec(t, name)
		hcs, err := Compile(s, sec)
		if err != nil {
			t.Fatal(err)
		}
		for _, hc := range hcs {
			text := hc.WgQuick()
			c, err := wgconf.Parse(hc.Name+".conf", text)
			if err != nil {
				t.Fatalf("%s/%s: %v\n%s", name, hc.Name, err, text)
			}
			back, read := intent.FromConfig(c)
			if diff := cmp.Diff(hc.Firewall.Filter, back.Firewall.Filter, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("%s/%s: filter (-compiled +read back):\n%s\n%s", name, hc.Name, diff, text)
			}
			if len(back.Hooks.PostUp)+len(back.Hooks.PreDown) != 0 || len(read.Converted) == 0 {
				t.Errorf("%s/%s: user hooks %q %q left after reading", name, hc.Name, back.Hooks.PostUp, back.Hooks.PreDown)
			}
			if !cmp.Equal(back.Comments, hc.Comments) {
				t.Errorf("%s/%s: comments %q, want %q", name, hc.Name, back.Comments, hc.Comments)
			}
			if again := back.WgQuick(); string(again) != string(text) {
				t.Errorf("%s/%s: render → read → render differs:\n%s\n---\n%s", name, hc.Name, text, again)
			}
		}
	}
	// A filter line in a form wgnet does not write makes the whole filter the
	// user's hooks: wgnet never runs half of it.
	s, sec := loadPolicySpec(t, "hub")
	hcs, _ := Compile(s, sec)
	text := strings.Replace(string(hcs[2].WgQuick()), "tcp dport { 5432 } accept", "tcp dport { 5432 } counter accept", 1)
	c, err := wgconf.Parse("x.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	back, _ := intent.FromConfig(c)
	if back.Firewall.Filter.Enabled || len(back.Hooks.PostUp) == 0 {
		t.Errorf("an edited filter line was read as wgnet's filter: %+v", back.Firewall.Filter)
	}
}

// TestPolicyHooksInNetns runs a host's rendered filter hooks as wg-quick would
// (each PostUp line through bash, %i replaced) in a network namespace whose
// veth stands in for the tunnel, and probes it with real TCP: app1 reaches
// db1 on 5432 and not on 80, and db1's own connection out gets its replies
// (stateful). PreDown removes the table.
func TestPolicyHooksInNetns(t *testing.T) {
	netnstest.NeedsTool(t, "nftables", "nft")
	netnstest.NeedsTool(t, "bash", "bash")
	s, sec := loadPolicySpec(t, "mesh")
	hcs, err := Compile(s, sec)
	if err != nil {
		t.Fatal(err)
	}
	var db1 *intent.Host
	for i := range hcs {
		if hcs[i].Name == "db1" {
			db1 = &hcs[i]
		}
	}
	app, db := netnstest.New(t, "app"), netnstest.New(t, "db")
	iface := "wgp" + netnstest.Unique(6)
	netnstest.Veth(t, app, "veth0", db, iface)
	app.Run(t, "ip", "addr", "add", "192.168.100.11/24", "dev", "veth0")
	db.Run(t, "ip", "addr", "add", "192.168.100.21/24", "dev", iface)
	c := db1.Config()
	run := func(lines []string) {
		for _, l := range lines {
			db.Run(t, "bash", "-c", strings.ReplaceAll(l, "%i", iface))
		}
	}
	run(c.Interface.PostUp[1:]) // after the forwarding sysctl, which a namespace may lack
	run(c.Interface.PostUp[1:]) // twice, as a second wg-quick up would: no duplicate rules
	listing := db.Run(t, "nft", "list", "table", "inet", "wgnet-policy-"+iface)
	if n := strings.Count(listing, "tcp dport 5432 accept"); n != 1 {
		t.Errorf("the accept rule is there %d times:\n%s", n, listing)
	}
	var lns []net.Listener
	for _, port := range []string{"5432", "80"} {
		if err := db.Do(func() error {
			ln, err := net.Listen("tcp", "192.168.100.21:"+port)
			lns = append(lns, ln)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	var appLn net.Listener
	if err := app.Do(func() (err error) { appLn, err = net.Listen("tcp", "192.168.100.11:7"); return err }); err != nil {
		t.Fatal(err)
	}
	defer appLn.Close()
	for _, ln := range lns {
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	go func() {
		for {
			c, err := appLn.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := func(ns *netnstest.NS, addr string) error {
		var conn net.Conn
		err := ns.Do(func() (err error) { conn, err = net.DialTimeout("tcp", addr, time.Second); return err })
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(app, "192.168.100.21:5432"); err != nil {
		t.Errorf("app1 → db1 tcp/5432: %v, want it to pass (policy.rules[0])", err)
	}
	if err := dial(app, "192.168.100.21:80"); err == nil {
		t.Error("app1 → db1 tcp/80 passed, want it dropped (policy.rules[1])")
	}
	if err := dial(db, "192.168.100.11:7"); err != nil {
		t.Errorf("db1 → app1 tcp/7 from db1's side: %v; the replies must pass (established)", err)
	}
	run(c.Interface.PreDown)
	if out, err := db.Try("nft", "list", "table", "inet", "wgnet-policy-"+iface); err == nil {
		t.Errorf("PreDown left the table:\n%s", out)
	}
	if err := dial(app, "192.168.100.21:80"); err != nil {
		t.Errorf("app1 → db1 tcp/80 after PreDown: %v", err)
	}
}
