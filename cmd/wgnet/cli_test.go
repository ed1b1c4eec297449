package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// wgnetBin builds the wgnet binary once per test run.
func wgnetBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wgnet-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wgnet")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build wgnet: %v", buildErr)
	}
	return binPath
}

// cli runs wgnet in dir and returns stdout, stderr and the exit code.
func cli(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wgnetBin(t), args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("wgnet %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func mustCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, dir, args...)
	if code != 0 {
		t.Fatalf("wgnet %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// threeHostSpec makes the classic network with the CLI: s1 the hub, each host
// with a routed /24.
func threeHostSpec(t *testing.T) string {
	dir := t.TempDir()
	mustCLI(t, dir, "init", "prod", "--subnet", "192.168.100.0/24", "--topology", "hub")
	mustCLI(t, dir, "add", "s1", "--hub", "--endpoint", "198.18.0.1:51820", "--route", "10.0.4.0/24")
	mustCLI(t, dir, "add", "s2", "--endpoint", "198.18.0.2:51820", "--route", "10.0.5.0/24")
	mustCLI(t, dir, "add", "s3", "--route", "10.0.7.0/24", "--keepalive", "25")
	return dir
}

func readConfigs(t *testing.T, dir string) map[string]*wgconf.Config {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "out", "*", "wg0.conf"))
	cfgs := map[string]*wgconf.Config{}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := wgconf.Parse(p, src)
		if err != nil {
			t.Fatalf("rendered file does not parse: %v", err)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
		}
		cfgs[filepath.Base(filepath.Dir(p))] = c
	}
	return cfgs
}

func TestCLIRenderHubWithRoutes(t *testing.T) {
	dir := threeHostSpec(t)
	mustCLI(t, dir, "render")
	cfgs := readConfigs(t, dir)
	if len(cfgs) != 3 {
		t.Fatalf("rendered %d configs, want 3", len(cfgs))
	}
	allowed := func(host string) map[string]string {
		m := map[string]string{}
		for _, p := range cfgs[host].Peers {
			var s []string
			for _, a := range p.AllowedIPs {
				s = append(s, a.String())
			}
			m[p.Name] = strings.Join(s, ",")
		}
		return m
	}
	want := map[string]map[string]string{
		"s1": {"s2": "10.0.5.0/24,192.168.100.2/32", "s3": "10.0.7.0/24,192.168.100.3/32"},
		"s2": {"s1": "10.0.4.0/24,10.0.7.0/24,192.168.100.0/24"},
		"s3": {"s1": "10.0.4.0/24,10.0.5.0/24,192.168.100.0/24"},
	}
	for h, w := range want {
		if diff := cmp.Diff(w, allowed(h)); diff != "" {
			t.Errorf("%s AllowedIPs (-want +got):\n%s", h, diff)
		}
	}
	// Every peer key is the public key of the other side's private key, as the real
	// `wg pubkey` derives it.
	if _, err := exec.LookPath("wg"); err == nil {
		pub := map[string]string{}
		for h, c := range cfgs {
			cmd := exec.Command("wg", "pubkey")
			cmd.Stdin = strings.NewReader(c.Interface.PrivateKey.Base64() + "\n")
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			pub[h] = strings.TrimSpace(string(out))
		}
		for h, c := range cfgs {
			for _, p := range c.Peers {
				if p.PublicKey.String() != pub[p.Name] {
					t.Errorf("%s's peer %s has key %s; wg pubkey of %s's private key is %s", h, p.Name, p.PublicKey, p.Name, pub[p.Name])
				}
			}
		}
	}

	// A 4th host without routes changes only the hub's file, by one peer.
	before := map[string][]byte{}
	for h := range cfgs {
		before[h], _ = os.ReadFile(filepath.Join(dir, "out", h, "wg0.conf"))
	}
	mustCLI(t, dir, "add", "s4")
	out := mustCLI(t, dir, "render")
	for h, b := range before {
		after, _ := os.ReadFile(filepath.Join(dir, "out", h, "wg0.conf"))
		if changed := !bytes.Equal(b, after); changed != (h == "s1") {
			t.Errorf("%s changed=%v after adding s4; want only s1 changed\nrender said:\n%s", h, changed, out)
		}
	}
	cfgs2 := readConfigs(t, dir)
	if got, want := len(cfgs2["s1"].Peers), len(cfgs["s1"].Peers)+1; got != want {
		t.Errorf("hub has %d peers after adding s4, want %d", got, want)
	}
}

// TestCLIRenderIntoRealWg loads every rendered config into a throw-away Debian
// wireguard-go device with the real `wg setconf` and compares `wg showconf`.
func TestCLIRenderIntoRealWg(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "wireguard-tools, wireguard-go", "wg", "wg-quick", "wireguard-go")
	dir := threeHostSpec(t)
	mustCLI(t, dir, "render")
	cfgs := readConfigs(t, dir)
	for h, c := range cfgs {
		ns := netnstest.New(t, "setconf") // one each: every host listens on 51820
		ifname := "wgc" + netnstest.Unique(6)
		ctx, cancel := context.WithCancel(context.Background())
		dev := ns.Command(ctx, "wireguard-go", "-f", ifname)
		dev.Env = append(os.Environ(), "WG_PROCESS_FOREGROUND=1")
		if err := dev.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		sock := "/var/run/wireguard/" + ifname + ".sock"
		t.Cleanup(func() {
			// SIGTERM lets wireguard-go remove its UAPI socket; kill it if it lingers.
			dev.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { dev.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cancel()
				<-done
			}
			cancel()
			os.Remove(sock)
		})
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		stripped, err := exec.Command("wg-quick", "strip", filepath.Join(dir, "out", h, "wg0.conf")).Output()
		if err != nil {
			t.Fatalf("wg-quick strip %s: %v", h, err)
		}
		sf := filepath.Join(t.TempDir(), h+".conf")
		os.WriteFile(sf, stripped, 0o600)
		ns.Run(t, "wg", "setconf", ifname, sf)
		shown := ns.Run(t, "wg", "showconf", ifname)
		got, err := wgconf.Parse("showconf:"+h, []byte(shown))
		if err != nil {
			t.Fatalf("wg showconf output does not parse: %v\n%s", err, shown)
		}
		if diff := cmp.Diff(devicePeers(c), devicePeers(got)); diff != "" {
			t.Errorf("%s: wg showconf differs from the rendered peers (-rendered +showconf):\n%s", h, diff)
		}
		if !got.Interface.PrivateKey.Equal(c.Interface.PrivateKey) || *got.Interface.ListenPort != *c.Interface.ListenPort {
			t.Errorf("%s: interface key or port not as rendered", h)
		}
	}
}

type devPeer struct {
	Key, Allowed, Endpoint string
	Keepalive              int
}

func devicePeers(c *wgconf.Config) map[string]devPeer {
	m := map[string]devPeer{}
	for _, p := range c.Peers {
		var a []string
		for _, x := range p.AllowedIPs {
			a = append(a, x.String())
		}
		d := devPeer{Key: p.PublicKey.String(), Allowed: strings.Join(sorted(a), ","), Keepalive: p.PersistentKeepalive}
		if p.Endpoint != nil {
			d.Endpoint = p.Endpoint.String()
		}
		m[d.Key] = d
	}
	return m
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func TestCLIExitCodes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"add", "s1"}, 2, "wgnet.yaml"},
		{[]string{"init", "prod"}, 2, "--subnet is required"},
		{[]string{"init", "prod", "--subnet", "10.0.0.1/24"}, 2, "host bits set"},
		{[]string{"nosuchcommand"}, 2, "unknown command"},
		{[]string{"list", "-o", "yaml"}, 2, `-o "yaml"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := cli(t, dir, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.err) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.err)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
				t.Errorf("stack trace on bad input:\n%s", stderr)
			}
		})
	}
	mustCLI(t, dir, "init", "prod", "--subnet", "192.168.100.0/24")
	if _, stderr, code := cli(t, dir, "init", "prod", "--subnet", "192.168.100.0/24"); code != 2 || !strings.Contains(stderr, "exists") {
		t.Errorf("second init: exit %d %q, want 2 and a refusal to overwrite", code, stderr)
	}
}

// TestCLIImportReproduces imports a rendered network and renders it again: the
// files come out byte for byte the same (peers, AllowedIPs, keys, comments).
func TestCLIImportReproduces(t *testing.T) {
	dir := threeHostSpec(t)
	mustCLI(t, dir, "add", "s4", "--public-key", "q58mKMMlwUHp+yQw8QaFD2KTC8PwsS3zmpuEpJx8HRI=")
	mustCLI(t, dir, "render")
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*", "wg0.conf"))
	_, stderr, code := cli(t, dir, append([]string{"import", "-f", "imported.yaml", "--network", "prod"}, files...)...)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "dropped") || strings.Contains(stderr, "not carried over") {
		t.Errorf("import reported losses for a wgnet-rendered network:\n%s", stderr)
	}
	mustCLI(t, dir, "-f", "imported.yaml", "render", "--out", "again")
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join(dir, "out"), f)
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(dir, "again", rel))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(a), string(b)); diff != "" {
			t.Errorf("%s after import+render (-rendered +reimported):\n%s", rel, diff)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "imported.secrets", "s1.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("imported private key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, "imported.secrets", "s4.key")); err == nil {
		t.Error("import invented a private key for s4, which keeps its own")
	}
}

// TestCLIImportWgEasy adopts a wg-easy fleet from the import corpus with the
// command, renders it in both forms, and finds every host's file again: the
// peers (keys, AllowedIPs as sets, endpoints, keepalives, preshared keys) in
// the stripped form `render -o wg` writes, and Address, MTU, DNS and the hooks
// in the wg-quick form; the one change, the hub's forwarding, is printed at its
// file:line. (internal/importer's TestCorpusRoundTrip does this for every fleet
// of the corpus through the real wg-quick strip.)
func TestCLIImportWgEasy(t *testing.T) {
	dir := t.TempDir()
	fleet, err := filepath.Abs("../../internal/importer/testdata/corpus/wg-easy")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(fleet, "*.conf"))
	_, stderr, code := cli(t, dir, append([]string{"import", "--network", "easy"}, files...)...)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	if want := filepath.Join(fleet, "server.conf") + ":5: the rendered config also turns on IPv4 forwarding"; !strings.Contains(stderr, want) || strings.Count(stderr, "wgnet: import: ") != 1 {
		t.Errorf("import printed:\n%s\nwant exactly one note: %s", stderr, want)
	}
	mustCLI(t, dir, "render", "-o", "wg", "--out", "wg")
	mustCLI(t, dir, "render", "--out", "quick")
	for _, f := range files {
		host := strings.TrimSuffix(filepath.Base(f), ".conf")
		in := parseFile(t, f)
		stripped := parseFile(t, filepath.Join(dir, "wg", host, "wg0.conf"))
		quick := parseFile(t, filepath.Join(dir, "quick", host, "wg0.conf"))
		if diff := cmp.Diff(peerSet(in), peerSet(stripped)); diff != "" {
			t.Errorf("%s: peers (-file +render -o wg):\n%s", host, diff)
		}
		if len(stripped.Interface.Addresses) != 0 || stripped.Interface.PrivateKey != in.Interface.PrivateKey {
			t.Errorf("%s: the stripped form has Address %v, or another private key", host, stripped.Interface.Addresses)
		}
		ic, qc := in.Interface, quick.Interface
		if fmt.Sprint(ic.Addresses, ic.MTU, ic.DNS, ic.PreUp, ic.PreDown, ic.PostDown, ic.ListenPort == nil) !=
			fmt.Sprint(qc.Addresses, qc.MTU, qc.DNS, qc.PreUp, qc.PreDown, qc.PostDown, qc.ListenPort == nil) {
			t.Errorf("%s: [Interface] %v, rendered %v", host, ic, qc)
		}
		if host != "server" && !slices.Equal(ic.PostUp, qc.PostUp) || host == "server" && !slices.Equal(ic.PostUp, qc.PostUp[1:]) {
			t.Errorf("%s: PostUp %q, rendered %q (the server's with wgnet's forwarding first)", host, ic.PostUp, qc.PostUp)
		}
	}
}

func parseFile(t *testing.T, path string) *wgconf.Config {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wgconf.Parse(path, src)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// peerSet is what wg keeps of each peer, by public key, AllowedIPs sorted.
func peerSet(c *wgconf.Config) map[string]string {
	out := map[string]string{}
	for _, p := range c.Peers {
		allowed := slices.Clone(p.AllowedIPs)
		slices.SortFunc(allowed, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
		out[p.PublicKey.String()] = fmt.Sprint(allowed, p.Endpoint, p.PersistentKeepalive, p.PresharedKey.String())
	}
	return out
}

func TestCLIEdits(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init", "p", "--subnet", "10.9.0.0/24", "--subnet", "fd00:9::/64")
	out := mustCLI(t, dir, "-o", "json", "add", "a", "--endpoint", "198.18.0.1:51820")
	var added struct {
		Host      string   `json:"host"`
		Addresses []string `json:"addresses"`
	}
	if err := json.Unmarshal([]byte(out), &added); err != nil || added.Host != "a" || len(added.Addresses) != 2 {
		t.Fatalf("add -o json = %q (%v), want host a with two addresses", out, err)
	}
	mustCLI(t, dir, "add", "b")
	mustCLI(t, dir, "add", "c")

	// A new IPv4 address keeps the IPv6 one.
	mustCLI(t, dir, "set", "a", "--address", "10.9.0.50")
	var hosts []hostRow
	json.Unmarshal([]byte(mustCLI(t, dir, "list", "-o", "json")), &hosts)
	if diff := cmp.Diff([]string{"10.9.0.50", "fd00:9::1"}, hosts[0].Addresses); diff != "" {
		t.Errorf("addresses after set --address (-want +got):\n%s", diff)
	}

	if _, stderr, code := cli(t, dir, "set", "a"); code != 2 || !strings.Contains(stderr, "nothing to change") {
		t.Errorf("set with no flags: exit %d %q; want 2, nothing to change", code, stderr)
	}

	// b switches to keeping its own key: the key wgnet made for it goes.
	pub := strings.TrimSpace(mustCLI(t, dir, "-f", "/dev/null", "genkey"))
	cmd := exec.Command(wgnetBin(t), "pubkey")
	cmd.Stdin = strings.NewReader(pub + "\n")
	pubOut, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	mustCLI(t, dir, "set", "b", "--public-key", strings.TrimSpace(string(pubOut)))
	if _, err := os.Stat(filepath.Join(dir, "wgnet.secrets", "b.key")); err == nil {
		t.Error("b.key still in the secrets after b took its own key")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "wgnet.secrets", ".*")); len(left) != 0 {
		t.Errorf("left behind in the secrets: %v", left)
	}

	// A removed host's rendered file goes on the next render (it holds its key).
	mustCLI(t, dir, "render")
	mustCLI(t, dir, "remove", "c")
	out = mustCLI(t, dir, "render")
	if _, err := os.Stat(filepath.Join(dir, "out", "c", "wg0.conf")); err == nil || !strings.Contains(out, "removed") {
		t.Errorf("out/c/wg0.conf still there after remove+render; render said:\n%s", out)
	}
	// A config made readable by others is made 0600 again even when unchanged.
	os.Chmod(filepath.Join(dir, "out", "a", "wg0.conf"), 0o644)
	mustCLI(t, dir, "render")
	if fi, _ := os.Stat(filepath.Join(dir, "out", "a", "wg0.conf")); fi.Mode().Perm() != 0o600 {
		t.Errorf("out/a/wg0.conf mode %v after render, want 0600", fi.Mode().Perm())
	}
}

// TestSetHostFirewall: `set --host-firewall` writes the opt-in into the spec,
// render carries it into the host's file as the comment up reads, "off" takes
// it away, and a value that is not a mode is a usage error.
func TestSetHostFirewall(t *testing.T) {
	dir := threeHostSpec(t)
	mustCLI(t, dir, "set", "s2", "--host-firewall", "docker")
	if b, _ := os.ReadFile(filepath.Join(dir, "wgnet.yaml")); !strings.Contains(string(b), "host_firewall: docker") {
		t.Fatalf("spec:\n%s", b)
	}
	mustCLI(t, dir, "render")
	cfgs := readConfigs(t, dir)
	h, _ := intent.FromConfig(cfgs["s2"])
	if m := intent.CommentedHostFirewall(h.Comments); m != "docker" {
		t.Errorf("s2's rendered file opts in to %q, want docker", m)
	}
	if h, _ := intent.FromConfig(cfgs["s3"]); intent.CommentedHostFirewall(h.Comments) != "" {
		t.Errorf("s3 opted in without asking")
	}
	mustCLI(t, dir, "set", "s2", "--host-firewall", "off")
	if b, _ := os.ReadFile(filepath.Join(dir, "wgnet.yaml")); strings.Contains(string(b), "host_firewall") {
		t.Errorf("off left it:\n%s", b)
	}
	if _, errs, code := cli(t, dir, "set", "s2", "--host-firewall", "ufw"); code != 2 || !strings.Contains(errs, "must be auto, docker or iptables") {
		t.Errorf("ufw: exit %d: %s", code, errs)
	}
}

// TestCLIWgQuickFlags: add and set write the per-host wg-quick fields into the
// spec (keeping its comments), render carries them into the host's file, a bad
// value is refused with the error a hand-edited file gets, and set takes each
// back out.
func TestCLIWgQuickFlags(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init", "vpn", "--subnet", "10.8.0.0/24", "--subnet", "fd00:8::/64", "--topology", "hub")
	mustCLI(t, dir, "add", "hub", "--endpoint", "198.18.0.1:51820")
	path := filepath.Join(dir, "wgnet.yaml")
	src, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(src), "network: vpn", "network: vpn # kept comment", 1)), 0o644)
	mustCLI(t, dir, "add", "phone", "--full-tunnel", "0.0.0.0/0", "--full-tunnel", "::/0", "--dns", "10.8.0.1",
		"--dns", "vpn.internal", "--mtu", "auto", "--listen-port", "random", "--table", "off", "--fwmark", "0xca6c")
	pub := "q58mKMMlwUHp+yQw8QaFD2KTC8PwsS3zmpuEpJx8HRI="
	mustCLI(t, dir, "add", "prov", "--external", "--public-key", pub, "--endpoint", "198.18.0.9:51820", "--no-address")
	s, err := spec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ph, _ := s.HostByName("phone")
	prov, _ := s.HostByName("prov")
	if diff := cmp.Diff([]string{"0.0.0.0/0", "::/0", "10.8.0.1", "vpn.internal", "off"},
		append(append(sortedPrefixes(ph.FullTunnel), ph.DNS...), ph.Table)); diff != "" || ph.MTU != spec.MTUAuto || !ph.RandomPort || ph.FwMark != 0xca6c {
		t.Errorf("phone as added: %+v (-want +got):\n%s", ph, diff)
	}
	if !prov.External || !prov.AddressElsewhere {
		t.Errorf("prov as added: external %v, assign_address false %v; want both", prov.External, prov.AddressElsewhere)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "# kept comment") {
		t.Errorf("the comment went:\n%s", b)
	}
	mustCLI(t, dir, "render")
	conf, _ := os.ReadFile(filepath.Join(dir, "out", "phone", "wg0.conf"))
	for _, want := range []string{"DNS = 10.8.0.1, vpn.internal", "Table = off", "FwMark = 0xca6c", "AllowedIPs = 0.0.0.0/0, ::/0"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("phone's file has no %q:\n%s", want, conf)
		}
	}
	if strings.Contains(string(conf), "MTU") || strings.Contains(string(conf), "ListenPort") {
		t.Errorf("phone's file has an MTU or ListenPort (auto, random):\n%s", conf)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "prov")); err == nil {
		t.Error("render wrote a file for the external prov")
	}

	// A bad value: the same error as the same value written into the file.
	mustCLI(t, dir, "add", "bare")
	for _, c := range []struct{ flag, value, key, yaml string }{
		{"--mtu", "abc", "mtu", "abc"}, {"--fwmark", "09", "fwmark", `"09"`},
		{"--table", "a b", "table", `"a b"`}, {"--dns", "not a name", "dns", `["not a name"]`},
	} {
		before, _ := os.ReadFile(path)
		_, errs, code := cli(t, dir, "set", "bare", c.flag, c.value)
		after, _ := os.ReadFile(path)
		hand := strings.Replace(string(before), "  - name: bare\n", "  - name: bare\n    "+c.key+": "+c.yaml+"\n", 1)
		_, want, _ := spec.Check("wgnet.yaml", []byte(hand))
		wantMsg := ""
		for _, p := range want {
			if strings.Contains(p.Message, "."+c.key) {
				wantMsg = p.Message
			}
		}
		if code != 2 || wantMsg == "" || !strings.Contains(errs, wantMsg) || string(after) != string(before) {
			t.Errorf("set %s %q: exit %d %q; want 2 with the file's error %q, spec unchanged", c.flag, c.value, code, errs, wantMsg)
		}
	}

	mustCLI(t, dir, "set", "phone", "--mtu", "", "--dns", "", "--table", "", "--fwmark", "", "--full-tunnel", "", "--listen-port", "51830")
	mustCLI(t, dir, "set", "prov", "--external=false", "--assign-address")
	b, _ := os.ReadFile(path)
	for _, k := range []string{"mtu:", "dns:", "table:", "fwmark:", "full_tunnel:", "random", "external:", "assign_address:"} {
		if strings.Contains(string(b), k) {
			t.Errorf("%s still in the spec after set took it out:\n%s", k, b)
		}
	}
	if !strings.Contains(string(b), "listen_port: 51830") || !strings.Contains(string(b), "# kept comment") {
		t.Errorf("spec after set:\n%s", b)
	}
	if _, errs, code := cli(t, dir, "set", "phone", "--listen-port", "any"); code != 2 || !strings.Contains(errs, "must be 1-65535, or random") {
		t.Errorf("--listen-port any: exit %d %q", code, errs)
	}
}

func sortedPrefixes(ps []netip.Prefix) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return s
}
