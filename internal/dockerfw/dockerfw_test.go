package dockerfw_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/dockerfw/dockerfwtest"
)

var (
	subnet = netip.MustParsePrefix("10.10.1.0/24")
	ctr    = netip.MustParseAddr("10.10.1.2")
)

func read(t *testing.T, f *dockerfwtest.Fake) []*dockerfw.View {
	t.Helper()
	var out []*dockerfw.View
	for _, fam := range []int{4, 6} {
		v, err := dockerfw.Read(context.Background(), f, fam)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func want(views []*dockerfw.View, mode dockerfw.Mode, relay bool) []dockerfw.Rule {
	var out []dockerfw.Rule
	for _, v := range views {
		out = append(out, v.Want(mode, "wg0", []netip.Prefix{subnet, netip.MustParsePrefix("fd00:10:1::/64")}, relay)...)
	}
	return out
}

func apply(t *testing.T, f *dockerfwtest.Fake, steps []dockerfw.Step) {
	t.Helper()
	if _, err := dockerfw.Apply(context.Background(), f, steps); err != nil {
		t.Fatal(err)
	}
}

// The backend holding Docker's chains is the one used, whichever it is.
func TestReadPicksDockersBackend(t *testing.T) {
	for _, b := range []dockerfw.Backend{dockerfw.Nft, dockerfw.Legacy} {
		f := dockerfwtest.New()
		other := dockerfw.Nft
		if b == dockerfw.Nft {
			other = dockerfw.Legacy
		}
		f.Load(dockerfw.Binary(other, 4, ""), "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\nCOMMIT\n")
		f.Load(dockerfw.Binary(b, 4, ""), dockerfwtest.DockerRules(dockerfwtest.Docker20, "docker0", subnet, []netip.Addr{ctr}))
		v, err := dockerfw.Read(context.Background(), f, 4)
		if err != nil {
			t.Fatal(err)
		}
		if v.Backend != b || !v.Docker() || !v.ForwardDrop() || v.Where(dockerfw.Auto) != "DOCKER-USER" {
			t.Errorf("Docker in %s: read %s (docker %v, forward drop %v, where %q)", b, v.Backend, v.Docker(), v.ForwardDrop(), v.Where(dockerfw.Auto))
		}
	}
	// No iptables at all: nothing to do, no error.
	v, err := dockerfw.Read(context.Background(), dockerfwtest.New(), 4)
	if err != nil || v.Backend != "" || v.Where(dockerfw.Docker) != "" {
		t.Errorf("no iptables: %+v, %v", v, err)
	}
}

func TestWantAndDiff(t *testing.T) {
	f := dockerfwtest.New()
	f.Load("iptables-nft", dockerfwtest.DockerRules(dockerfwtest.Docker28, "docker0", subnet, []netip.Addr{ctr}))
	f.Load("ip6tables-nft", "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
	views := read(t, f)
	w := want(views, dockerfw.Auto, true)
	var got []string
	for _, r := range w {
		got = append(got, r.String())
	}
	wantText := []string{
		"iptables-nft -t filter -A DOCKER-USER -i wg0 -o wg0 -m comment --comment wgnet:wg0 -j ACCEPT",
		"iptables-nft -t filter -A DOCKER-USER -d 10.10.1.0/24 -i wg0 -m comment --comment wgnet:wg0 -j ACCEPT",
		"iptables-nft -t filter -A DOCKER-USER -s 10.10.1.0/24 -o wg0 -m comment --comment wgnet:wg0 -j ACCEPT",
		"iptables-nft -t nat -A POSTROUTING -s 10.10.1.0/24 -o wg0 -m comment --comment wgnet:wg0 -j RETURN",
	}
	// IPv6: FORWARD is ACCEPT and there is no Docker: nothing.
	if !slices.Equal(got, wantText) {
		t.Fatalf("want:\n%s\ngot:\n%s", strings.Join(wantText, "\n"), strings.Join(got, "\n"))
	}
	steps := dockerfw.Diff(views, w, "wg0")
	if len(steps) != 4 {
		t.Fatalf("first diff: %d steps, want 4 inserts: %v", len(steps), steps)
	}
	apply(t, f, steps)
	after := f.Save("iptables-nft")
	if !strings.Contains(after, "-A DOCKER-USER -i wg0 -o wg0 -m comment --comment \"wgnet:wg0\" -j ACCEPT\n-A DOCKER-USER -d 10.10.1.0/24") {
		t.Errorf("rules not at the top in order:\n%s", after)
	}
	// Applied: nothing left to do.
	if s := dockerfw.Diff(read(t, f), w, "wg0"); len(s) != 0 {
		t.Errorf("second diff: %v", s)
	}

	// Docker recreates its chains: its own rules go first again. Re-asserted:
	// ours deleted and inserted at the top.
	f.Run(context.Background(), []string{"iptables-nft", "-w", "-t", "nat", "-I", "POSTROUTING", "1", "-s", "10.10.1.0/24", "!", "-o", "docker0", "-j", "MASQUERADE"})
	steps = dockerfw.Diff(read(t, f), w, "wg0")
	if len(steps) != 2 || !steps[0].Delete || steps[1].Delete || steps[1].Pos != 1 || steps[1].Rule.Chain != "POSTROUTING" {
		t.Fatalf("re-assert: %v", steps)
	}
	apply(t, f, steps)
	nat := f.Save("iptables-nft")
	if i, j := strings.Index(nat, "-j RETURN"), strings.Index(nat, "-j MASQUERADE"); i < 0 || j < 0 || i > j {
		t.Errorf("RETURN not before MASQUERADE:\n%s", nat)
	}

	// A rule of ours lost entirely (iptables -F DOCKER-USER): re-added.
	f.Load("iptables-nft", strings.Replace(f.Save("iptables-nft"), "-A DOCKER-USER -s 10.10.1.0/24 -o wg0 -m comment --comment \"wgnet:wg0\" -j ACCEPT\n", "", 1))
	steps = dockerfw.Diff(read(t, f), w, "wg0")
	apply(t, f, steps)
	if s := dockerfw.Diff(read(t, f), w, "wg0"); len(s) != 0 {
		t.Errorf("after re-adding: %v", s)
	}

	// No longer wanted (relay off): the extra rule goes.
	w2 := want(read(t, f), dockerfw.Auto, false)
	apply(t, f, dockerfw.Diff(read(t, f), w2, "wg0"))
	if strings.Contains(f.Save("iptables-nft"), "-i wg0 -o wg0") {
		t.Errorf("relay rule left after relay went")
	}

	// Remove takes exactly ours away: Docker's rules as they were.
	if err := dockerfw.Remove(context.Background(), f, w2); err != nil {
		t.Fatal(err)
	}
	if s := f.Save("iptables-nft"); strings.Contains(s, "wgnet:") {
		t.Errorf("left after Remove:\n%s", s)
	}
	// And again: nothing there, nothing done, no error.
	if err := dockerfw.Remove(context.Background(), f, w2); err != nil {
		t.Fatal(err)
	}
}

// Mode iptables uses FORWARD; auto on a host with FORWARD DROP and no Docker
// too; auto on an open host adds nothing.
func TestWhere(t *testing.T) {
	f := dockerfwtest.New()
	f.Load("iptables-legacy", "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:ufw-before-forward - [0:0]\n-A FORWARD -j ufw-before-forward\nCOMMIT\n")
	v, _ := dockerfw.Read(context.Background(), f, 4)
	if v.Where(dockerfw.Auto) != "FORWARD" || v.Where(dockerfw.Docker) != "FORWARD" || v.Where(dockerfw.Forward) != "FORWARD" || v.Where(dockerfw.Off) != "" {
		t.Errorf("ufw-like host: %q %q", v.Where(dockerfw.Auto), v.Where(dockerfw.Forward))
	}
	for _, r := range v.Want(dockerfw.Auto, "wg0", []netip.Prefix{subnet}, false) {
		if r.Table == "nat" || r.Backend != dockerfw.Legacy {
			t.Errorf("no Docker: %s", r)
		}
	}
	f.Load("iptables-legacy", "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
	v, _ = dockerfw.Read(context.Background(), f, 4)
	if w := v.Want(dockerfw.Auto, "wg0", []netip.Prefix{subnet}, true); len(w) != 0 {
		t.Errorf("open host, auto: %v", w)
	}
	if w := v.Want(dockerfw.Forward, "wg0", []netip.Prefix{subnet}, true); len(w) != 3 {
		t.Errorf("open host, iptables: %v", w)
	}
}

func TestRawDrops(t *testing.T) {
	f := dockerfwtest.New()
	f.Load("iptables-nft", dockerfwtest.DockerRules(dockerfwtest.Docker28, "docker0", subnet, []netip.Addr{ctr}))
	v, _ := dockerfw.Read(context.Background(), f, 4)
	d := v.RawDrops(subnet, "wg0")
	if len(d) != 1 || d[0] != "-A PREROUTING -d 10.10.1.2/32 ! -i docker0 -j DROP" {
		t.Errorf("raw drops: %q", d)
	}
	if d := v.RawDrops(netip.MustParsePrefix("10.10.2.0/24"), "wg0"); len(d) != 0 {
		t.Errorf("other subnet: %q", d)
	}
	// A trusted-interface accept for wg0 before it lets the tunnel through.
	f.Run(context.Background(), []string{"iptables-nft", "-w", "-t", "raw", "-I", "PREROUTING", "1", "-d", "10.10.1.0/24", "-i", "wg0", "-j", "ACCEPT"})
	v, _ = dockerfw.Read(context.Background(), f, 4)
	if d := v.RawDrops(subnet, "wg0"); len(d) != 0 {
		t.Errorf("after a raw accept for wg0: %q", d)
	}
	// Routed mode has none.
	f.Load("iptables-nft", dockerfwtest.DockerRules(dockerfwtest.Docker28Routed, "docker0", subnet, []netip.Addr{ctr}))
	v, _ = dockerfw.Read(context.Background(), f, 4)
	if d := v.RawDrops(subnet, "wg0"); len(d) != 0 {
		t.Errorf("routed mode: %q", d)
	}
	f.NftTables = []string{"table inet wgnet-wg0", "table ip docker-bridges"}
	if !dockerfw.NftablesDocker(context.Background(), f) {
		t.Error("docker-bridges not seen")
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]dockerfw.Mode{"": dockerfw.Off, "off": dockerfw.Off, "docker": dockerfw.Docker, "auto": dockerfw.Auto, "iptables": dockerfw.Forward} {
		if m, err := dockerfw.ParseMode(in); err != nil || m != want {
			t.Errorf("%q: %q, %v", in, m, err)
		}
	}
	if _, err := dockerfw.ParseMode("ufw"); err == nil || !strings.Contains(err.Error(), dockerfw.Modes) {
		t.Errorf("ufw: %v", err)
	}
}
