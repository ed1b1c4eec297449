package up_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// The tests in this file build real networks out of network namespaces:
//
//	underlay: a bridge namespace, every host joined to it by a veth, 198.18.0.0/24
//	host N:   wgnet (or wg-quick) on a WireGuard interface with a unique name,
//	          overlay 10.99.0.N and fd00:99::N, ip_forward=0 and rp_filter=1 as on a
//	          real server, and a "container" namespace behind a veth on its routed
//	          subnets 10.10.N.0/24 and fd00:10:N::/64.
//
// Nothing touches the root namespace. They run the wgnet binary, built once.

var (
	buildOnce sync.Once
	wgnetBin  string
	buildErr  error
)

// wgnet builds cmd/wgnet into a temporary directory once per test binary.
func wgnet(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wgnet-bin-")
		if err != nil {
			buildErr = err
			return
		}
		wgnetBin = filepath.Join(dir, "wgnet")
		out, err := exec.Command("go", "build", "-o", wgnetBin, "github.com/wgnet/wgnet/cmd/wgnet").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return wgnetBin
}

func TestMain(m *testing.M) {
	if f := os.Getenv(policyHelperEnv); f != "" {
		os.Exit(policyHelper(f)) // one engine call in a host's namespace
	}
	code := m.Run()
	if wgnetBin != "" {
		os.RemoveAll(filepath.Dir(wgnetBin))
	}
	os.Exit(code)
}

type labHost struct {
	name     string // spec host name: hub, s1, s2
	n        int    // 1, 2, 3
	ns, ctr  *netnstest.NS
	ifname   string // unique: UAPI sockets share /var/run/wireguard
	under    netip.Addr
	overlay4 netip.Addr
	overlay6 netip.Addr
	route4   netip.Prefix
	route6   netip.Prefix
	ctr4     netip.Addr
	ctr6     netip.Addr
	conf     string // rendered config, path ends in ifname.conf
	hc       intent.Host
	priv     wgkey.Private  // kept across compiles
	routes   []netip.Prefix // routed subnets in the spec: route4 and route6 unless changed
}

type lab struct {
	t        *testing.T
	hosts    []*labHost
	ul       *netnstest.NS // the underlay: a bridge all hosts are joined to
	stateDir string
	dir      string
	mesh     bool // compile a mesh (every host has an endpoint), not hub and spokes
	// engineLog is the progress log of the last engine call (policy_linux_test.go).
	engineLog string
	// policy is the spec's policy section; zero: none.
	policy spec.Policy
	// env is more of the wgnet binary's environment (WGNET_FIREWALL=...).
	env []string
}

// newLab builds the namespaces, compiles a hub-and-spoke spec (hub first) and
// renders every host's config into a file named after its interface.
func newLab(t *testing.T, names ...string) *lab { return buildLab(t, false, names...) }

// newBareLab is newLab with each container behind a bridge (cbr0, holding the
// host's addresses in its routed subnets) and no forwarding turned on by hand
// anywhere: whatever forwards, wgnet turned on.
func newBareLab(t *testing.T, names ...string) *lab { return buildLab(t, true, names...) }

func buildLab(t *testing.T, bare bool, names ...string) *lab {
	netnstest.RequireRoot(t)
	for _, bin := range []string{"sysctl", "ping"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	l := &lab{t: t, stateDir: t.TempDir(), dir: t.TempDir()}
	br := netnstest.New(t, "ul")
	l.ul = br
	br.Run(t, "ip", "link", "add", "br0", "type", "bridge")
	br.Run(t, "ip", "link", "set", "br0", "up")
	tag := netnstest.Unique(6)
	for i, name := range names {
		n := i + 1
		h := &labHost{
			name:     name,
			n:        n,
			ns:       netnstest.New(t, name),
			ctr:      netnstest.New(t, name+"c"),
			ifname:   fmt.Sprintf("wgt%s%d", tag, n),
			under:    netip.MustParseAddr(fmt.Sprintf("198.18.0.%d", n)),
			overlay4: netip.MustParseAddr(fmt.Sprintf("10.99.0.%d", n)),
			overlay6: netip.MustParseAddr(fmt.Sprintf("fd00:99::%d", n)),
			route4:   netip.MustParsePrefix(fmt.Sprintf("10.10.%d.0/24", n)),
			route6:   netip.MustParsePrefix(fmt.Sprintf("fd00:10:%d::/64", n)),
			ctr4:     netip.MustParseAddr(fmt.Sprintf("10.10.%d.2", n)),
			ctr6:     netip.MustParseAddr(fmt.Sprintf("fd00:10:%d::2", n)),
		}
		h.routes = []netip.Prefix{h.route4, h.route6}
		ns, ctr := h.ns, h.ctr
		// Like a real server: no global forwarding, strict reverse-path filter.
		ns.Sysctl(t, "net.ipv4.ip_forward", "0")
		ns.Sysctl(t, "net.ipv6.conf.all.forwarding", "0")
		ns.Sysctl(t, "net.ipv4.conf.all.rp_filter", "1")
		ns.Sysctl(t, "net.ipv4.conf.default.rp_filter", "1")
		// Underlay.
		netnstest.Veth(t, ns, "ul0", br, fmt.Sprintf("p%d", n))
		br.Run(t, "ip", "link", "set", fmt.Sprintf("p%d", n), "master", "br0")
		ns.Run(t, "ip", "addr", "add", h.under.String()+"/24", "dev", "ul0")
		// The container, on the routed subnets. The host side forwards what the
		// container sends, as a container runtime would set it up; a bare lab
		// puts it behind a bridge and leaves forwarding to wgnet.
		netnstest.Veth(t, ns, "ctr0", ctr, "eth0")
		front := "ctr0"
		if bare {
			front = "cbr0"
			ns.Run(t, "ip", "link", "add", front, "type", "bridge")
			ns.Run(t, "ip", "link", "set", front, "up")
			ns.Run(t, "ip", "link", "set", "ctr0", "master", front)
		}
		ns.Run(t, "ip", "addr", "add", fmt.Sprintf("10.10.%d.1/24", n), "dev", front)
		ns.Run(t, "ip", "addr", "add", fmt.Sprintf("fd00:10:%d::1/64", n), "dev", front, "nodad")
		if !bare {
			ns.Sysctl(t, "net.ipv4.conf.ctr0.forwarding", "1")
			ns.Sysctl(t, "net.ipv6.conf.ctr0.force_forwarding", "1")
		}
		ctr.Run(t, "ip", "addr", "add", h.ctr4.String()+"/24", "dev", "eth0")
		ctr.Run(t, "ip", "addr", "add", h.ctr6.String()+"/64", "dev", "eth0", "nodad")
		ctr.Run(t, "ip", "route", "add", "default", "via", fmt.Sprintf("10.10.%d.1", n))
		ctr.Run(t, "ip", "-6", "route", "add", "default", "via", fmt.Sprintf("fd00:10:%d::1", n))
		l.hosts = append(l.hosts, h)
	}
	l.compile()
	t.Cleanup(l.stopDaemons)
	return l
}

// compile builds the spec of every host and renders each host's config.
func (l *lab) compile() { l.compileHosts(l.hosts) }

// compileHosts builds the spec of the given hosts (hub first) and renders their
// configs. A host keeps its key from one compile to the next.
func (l *lab) compileHosts(hosts []*labHost) {
	t := l.t
	s := &spec.Spec{
		Version:  spec.Version,
		Network:  "lab",
		Subnets:  []netip.Prefix{netip.MustParsePrefix("10.99.0.0/24"), netip.MustParsePrefix("fd00:99::/64")},
		Topology: spec.TopologyHub,
		Hub:      hosts[0].name,
	}
	if l.mesh {
		s.Topology, s.Hub = spec.TopologyMesh, ""
	}
	s.Policy = l.policy
	sec := spec.Secrets{PrivateKeys: map[string]wgkey.Private{}}
	for _, h := range hosts {
		if h.priv.IsZero() {
			k, err := wgkey.GeneratePrivate()
			if err != nil {
				t.Fatal(err)
			}
			h.priv = k
		}
		sec.PrivateKeys[h.name] = h.priv
		sh := spec.Host{
			Name:      h.name,
			Addresses: []netip.Addr{h.overlay4, h.overlay6},
			Routes:    h.routes,
			PublicKey: h.priv.Public(),
		}
		if h.n == 1 || l.mesh {
			sh.Endpoint = h.under.String() + ":51820"
		} else {
			sh.Keepalive = 25
		}
		s.Hosts = append(s.Hosts, sh)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("spec: %v", err)
	}
	hcs, err := compile.Compile(s, sec)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	for _, h := range hosts {
		for _, hc := range hcs {
			if hc.Name == h.name {
				h.hc = hc
			}
		}
		h.conf = filepath.Join(l.dir, h.ifname+".conf")
		if err := os.WriteFile(h.conf, h.hc.Config().WgQuick(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// wgnet runs the wgnet binary in h's namespace with the lab's state directory.
func (l *lab) wgnet(h *labHost, args ...string) (string, error) {
	return h.ns.Try(l.argv(args...)...)
}

// argv is the command line that runs the wgnet binary with the lab's state
// and config directories and its env.
func (l *lab) argv(args ...string) []string {
	return slices.Concat([]string{"env", "WGNET_STATE_DIR=" + l.stateDir, "WGNET_CONFIG_DIR=" + l.dir}, l.env, []string{wgnet(l.t)}, args)
}

func (l *lab) up(h *labHost, extra ...string) {
	l.t.Helper()
	out, err := l.wgnet(h, append([]string{"up", h.conf}, extra...)...)
	if err != nil {
		l.t.Fatalf("wgnet up on %s: %v", h.name, err)
	}
	l.t.Logf("wgnet up on %s:\n%s", h.name, out)
}

// stopDaemons kills every userspace daemon and confirmation timer the lab's wgnet
// started (by the PIDs in its state and pending files), so that the namespaces
// can go.
func (l *lab) stopDaemons() {
	pending, _ := filepath.Glob(filepath.Join(l.stateDir, "*.pending"))
	for _, f := range pending {
		n := strings.TrimSuffix(filepath.Base(f), ".pending")
		if p, err := up.LoadPending(l.stateDir, n); err == nil && p.TimerPID != 0 {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.TimerPID)); err == nil && strings.Contains(string(b), up.TimerCommand) {
				if proc, err := os.FindProcess(p.TimerPID); err == nil {
					proc.Kill()
				}
			}
		}
	}
	names, _ := up.Names(l.stateDir)
	for _, n := range names {
		if st, err := up.ReadState(l.stateDir, n); err == nil && st.PID != 0 {
			// SIGTERM lets the daemon remove its UAPI socket; Stop sends SIGKILL
			// if it does not stop, and signals nothing that is not the daemon of n.
			if err := device.Stop(st.PID, n, 2*time.Second); err != nil {
				l.t.Logf("stop the daemon of %s: %v", n, err)
			}
		}
	}
}

// ping checks that from reaches addr, retrying while handshakes complete: 7
// one-second tries outlast a first initiation lost and sent again after
// REKEY_TIMEOUT (5 s) plus jitter.
func ping(t *testing.T, from *netnstest.NS, addr netip.Addr) error {
	t.Helper()
	var err error
	for try := 0; try < 7; try++ {
		if _, err = from.Try("ping", "-c", "1", "-W", "1", addr.String()); err == nil {
			return nil
		}
	}
	return err
}

// noPing checks that from does not reach addr (two tries).
func noPing(from *netnstest.NS, addr netip.Addr) bool {
	_, err := from.Try("ping", "-c", "2", "-i", "0.2", "-W", "1", addr.String())
	return err != nil
}

// TestHubAndSpokes is the network of the README: a hub and two spokes, each with a
// routed container subnet. Every host reaches every overlay address and every
// container; every container reaches every other, spoke to spoke through the hub.
func TestHubAndSpokes(t *testing.T) {
	l := newLab(t, "hub", "s1", "s2")
	for _, h := range l.hosts {
		l.up(h)
	}
	var targets []netip.Addr
	for _, h := range l.hosts {
		targets = append(targets, h.overlay4, h.overlay6, h.ctr4, h.ctr6)
	}
	// Spokes first, so that their keepalive handshakes make the hub's way back.
	order := []*labHost{l.hosts[1], l.hosts[2], l.hosts[0]}
	for _, from := range order {
		for _, to := range targets {
			if err := ping(t, from.ns, to); err != nil {
				t.Errorf("host %s -> %s: %v", from.name, to, err)
			}
		}
	}
	for _, from := range l.hosts {
		for _, to := range l.hosts {
			if from == to {
				continue
			}
			for _, a := range []netip.Addr{to.ctr4, to.ctr6} {
				if err := ping(t, from.ctr, a); err != nil {
					t.Errorf("container of %s -> container %s: %v", from.name, a, err)
				}
			}
		}
	}

	// wgnet show names every peer by host and reports it up.
	out, err := l.wgnet(l.hosts[0], "show", l.hosts[0].ifname)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range l.hosts[1:] {
		if !strings.Contains(out, "peer: "+h.name+" (") {
			t.Errorf("wgnet show on the hub does not name peer %s:\n%s", h.name, out)
		}
	}
	if strings.Count(out, "state: up") != 2 {
		t.Errorf("wgnet show on the hub: want 2 peers up:\n%s", out)
	}

	for _, h := range l.hosts {
		if out, err := l.wgnet(h, "down", h.ifname); err != nil {
			t.Errorf("down on %s: %v\n%s", h.name, err, out)
		}
	}
}

// TestForwardingIsWhatMakesTheHubWork brings the hub up with --no-forwarding:
// spokes still reach the hub, but not each other, nor the hub's container. So the
// hub-and-spoke test passes because of wgnet's forwarding step.
func TestForwardingIsWhatMakesTheHubWork(t *testing.T) {
	l := newLab(t, "hub", "s1", "s2")
	hub, s1, s2 := l.hosts[0], l.hosts[1], l.hosts[2]
	l.up(hub, "--no-forwarding")
	l.up(s1)
	l.up(s2)
	if err := ping(t, s1.ns, hub.overlay4); err != nil {
		t.Fatalf("s1 -> hub without forwarding: %v (the tunnel itself must work)", err)
	}
	if err := ping(t, s2.ns, hub.overlay4); err != nil {
		t.Fatalf("s2 -> hub: %v", err)
	}
	for _, to := range []netip.Addr{s2.overlay4, s2.ctr4, hub.ctr4} {
		if !noPing(s1.ns, to) {
			t.Errorf("s1 reaches %s although the hub does not forward", to)
		}
	}
	if !noPing(s1.ctr, s2.ctr4) {
		t.Errorf("container s1 reaches container s2 although the hub does not forward")
	}
}

// TestDownRestoresEverything snapshots a host before up and after down: links,
// addresses, routes, rules, the nft ruleset and every net.* sysctl agree.
func TestDownRestoresEverything(t *testing.T) {
	l := newLab(t, "hub", "s1")
	hub := l.hosts[0]
	before := snapshot(t, hub.ns)
	l.up(hub)
	during := snapshot(t, hub.ns)
	if during == before {
		t.Fatal("up changed nothing visible")
	}
	if out, err := l.wgnet(hub, "down", hub.ifname); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	after := snapshot(t, hub.ns)
	if before != after {
		t.Errorf("down did not restore the host:\n%s", lineDiff(before, after))
	}
	if _, err := os.Stat(filepath.Join(l.stateDir, hub.ifname+".json")); !os.IsNotExist(err) {
		t.Errorf("state file left behind: %v", err)
	}
}

// settle waits, at most 5 s, until no IPv6 address in ns is still tentative
// (duplicate address detection running): until then the kernel is still adding
// link-local addresses and their local routes by itself, and two snapshots of
// the same state could differ.
func settle(t *testing.T, ns *netnstest.NS) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.TrimSpace(ns.Run(t, "ip", "-6", "addr", "show", "tentative")) != "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// timerRE matches a bridge's running timers in `ip -d link`.
var timerRE = regexp.MustCompile(`(_timer)\s+[0-9.]+`)

// snapshot prints what up may change in a namespace.
func snapshot(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	settle(t, ns)
	var b strings.Builder
	for _, argv := range [][]string{
		{"ip", "-d", "link"},
		{"ip", "addr"},
		{"ip", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"},
		{"ip", "rule"},
		{"ip", "-6", "rule"},
		{"nft", "list", "ruleset"},
	} {
		out := ns.Run(t, argv...)
		// A bridge's timers run by themselves; ip -d link complains now and then
		// about a veth peer's namespace id (on stderr, into out).
		out = timerRE.ReplaceAllString(out, "${1} T")
		out = strings.ReplaceAll(out, "Error: Peer netns reference is invalid.\n", "")
		fmt.Fprintf(&b, "$ %s\n%s", strings.Join(argv, " "), out)
	}
	out := ns.Run(t, "sysctl", "-a", "-r", `^net\.(ipv4|ipv6)\.`)
	for _, line := range strings.Split(out, "\n") {
		// Counters and per-boot secrets that change by themselves.
		if strings.Contains(line, "stable_secret") || strings.Contains(line, "base_reachable_time") {
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func lineDiff(a, b string) string {
	as, bs := strings.Split(a, "\n"), strings.Split(b, "\n")
	inB := map[string]int{}
	for _, l := range bs {
		inB[l]++
	}
	inA := map[string]int{}
	for _, l := range as {
		inA[l]++
	}
	var out []string
	for _, l := range as {
		if inB[l] == 0 {
			out = append(out, "- "+l)
		}
	}
	for _, l := range bs {
		if inA[l] == 0 {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestUserspaceOffloads checks the TUN offloads of the interface wgnet up made.
func TestUserspaceOffloads(t *testing.T) {
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("needs ethtool")
	}
	l := newLab(t, "hub")
	h := l.hosts[0]
	l.up(h, "--backend", "userspace")
	defer l.wgnet(h, "down", h.ifname)
	out := h.ns.Run(t, "ethtool", "-k", h.ifname)
	for _, want := range []string{"tx-tcp-segmentation: on", "tx-tcp6-segmentation: on", "generic-segmentation-offload: on"} {
		if !strings.Contains(out, want) {
			t.Errorf("ethtool -k %s: no %q:\n%s", h.ifname, want, out)
		}
	}
}

var linkLocalRE = regexp.MustCompile(`fe80::[0-9a-f:]+[0-9a-f]`)

// requireWgQuick skips unless the stock wireguard-tools and a userspace
// wireguard-go (what wg-quick falls back to without the kernel module) are here.
func requireWgQuick(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"wg", "wg-quick", "wireguard-go"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (wireguard-tools, wireguard-go)", bin)
		}
	}
}

// wgQuick runs the stock wg-quick on h's rendered config and takes it down again
// when the test ends.
func (l *lab) wgQuick(h *labHost) {
	l.t.Helper()
	out, err := h.ns.Try("wg-quick", "up", h.conf)
	if err != nil {
		l.t.Fatalf("wg-quick up on %s: %v", h.name, err)
	}
	l.t.Logf("wg-quick up on %s:\n%s", h.name, out)
	l.t.Cleanup(func() {
		if out, err := h.ns.Try("wg-quick", "down", h.conf); err != nil {
			l.t.Errorf("wg-quick down on %s: %v\n%s", h.name, err, out)
		}
	})
}

// TestInteropWithWgQuick runs one spoke with the stock wg-quick (on Debian's
// wireguard-go) against a wgnet hub and spoke, and reads wgnet's userspace
// interface with the stock wg show.
func TestInteropWithWgQuick(t *testing.T) {
	requireWgQuick(t)
	l := newLab(t, "hub", "s1", "s2")
	hub, s1, s2 := l.hosts[0], l.hosts[1], l.hosts[2]
	l.up(hub)
	l.up(s1)
	l.wgQuick(s2)
	for _, c := range []struct {
		from *netnstest.NS
		to   netip.Addr
		what string
	}{
		{s2.ns, hub.overlay4, "wg-quick spoke -> wgnet hub"},
		{s2.ns, hub.overlay6, "wg-quick spoke -> wgnet hub (v6)"},
		{s1.ns, s2.overlay4, "wgnet spoke -> wg-quick spoke through the hub"},
		{s2.ctr, s1.ctr4, "container behind wg-quick -> container behind wgnet"},
		{s1.ctr, s2.ctr6, "container behind wgnet -> container behind wg-quick (v6)"},
		{hub.ctr, s2.ctr4, "hub container -> wg-quick container"},
	} {
		if err := ping(t, c.from, c.to); err != nil {
			t.Errorf("%s (%s): %v", c.what, c.to, err)
		}
	}
	// The stock wg reads wgnet's interface through its UAPI socket.
	out := hub.ns.Run(t, "wg", "show", hub.ifname)
	for _, want := range []string{
		"interface: " + hub.ifname,
		"listening port: 51820",
		"peer: " + s2.hc.PrivateKey.Public().String(),
		"latest handshake:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("wg show %s: no %q in:\n%s", hub.ifname, want, out)
		}
	}
	// And wgnet show reads the wg-quick one, naming peers from its config file.
	out, err := l.wgnet(s2, "show", s2.ifname)
	if err != nil {
		t.Fatalf("wgnet show of the wg-quick interface: %v", err)
	}
	if !strings.Contains(out, "peer: hub (") || !strings.Contains(out, "state: up") {
		t.Errorf("wgnet show %s (wg-quick's): want peer hub up:\n%s", s2.ifname, out)
	}
	if _, err := l.wgnet(hub, "down", hub.ifname); err != nil {
		t.Error(err)
	}
	if _, err := l.wgnet(s1, "down", s1.ifname); err != nil {
		t.Error(err)
	}
}

// TestSameAsWgQuick brings one config up with wg-quick in one namespace and with
// wgnet in another, and compares ip addr, ip route and ip rule. Documented
// differences (docs/up.md): wgnet adds its nftables table (not compared here), and
// the interface names differ (UAPI sockets are shared between namespaces).
func TestSameAsWgQuick(t *testing.T) {
	requireWgQuick(t)
	l := newLab(t, "hub", "s1")
	spoke := l.hosts[1]
	src, err := os.ReadFile(spoke.conf)
	if err != nil {
		t.Fatal(err)
	}
	// Without MTU, both work it out: the largest MTU of the routes to the
	// endpoints, minus 80.
	src = regexp.MustCompile(`(?m)^MTU *=.*\n`).ReplaceAll(src, nil)
	dump := func(ns *netnstest.NS, ifname string) string {
		settle(t, ns)
		var b strings.Builder
		for _, argv := range [][]string{
			{"ip", "addr", "show", "dev", ifname},
			{"ip", "route", "show", "table", "all"},
			{"ip", "-6", "route", "show", "table", "all"},
			{"ip", "rule"},
			{"ip", "-6", "rule"},
			{"sysctl", "net.ipv4.conf." + ifname + ".forwarding", "net.ipv6.conf." + ifname + ".force_forwarding", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"},
		} {
			fmt.Fprintf(&b, "$ %s\n", strings.ReplaceAll(strings.Join(argv, " "), ifname, "IFACE"))
			var lines []string
			for _, line := range strings.Split(ns.Run(t, argv...), "\n") {
				if strings.Contains(line, "valid_lft") {
					continue
				}
				// The link-local address is derived from the interface name.
				line = linkLocalRE.ReplaceAllString(line, "fe80::LL")
				lines = append(lines, strings.ReplaceAll(line, ifname, "IFACE"))
			}
			if slices.Contains(argv, "route") {
				// A routing table is a set: the kernel lists routes of one
				// prefix (fe80::/64 on each link) in the order they came.
				slices.Sort(lines)
			}
			b.WriteString(strings.Join(lines, "\n") + "\n")
		}
		return b.String()
	}
	var got [2]string
	for i, tool := range []string{"wg-quick", "wgnet"} {
		ns := netnstest.New(t, fmt.Sprintf("cmp%d", i))
		// The same underlay: a veth with a jumbo MTU towards the hub's endpoint, so
		// that the automatic MTU (largest route MTU to an endpoint, minus 80) shows.
		ns.Run(t, "ip", "link", "add", "u0", "mtu", "9000", "type", "veth", "peer", "name", "u1")
		ns.Run(t, "ip", "link", "set", "u0", "up")
		ns.Run(t, "ip", "link", "set", "u1", "up")
		ns.Run(t, "ip", "addr", "add", "198.18.0.2/24", "dev", "u0")
		ifname := fmt.Sprintf("wgt%s%d", netnstest.Unique(6), i)
		conf := filepath.Join(l.dir, ifname+".conf")
		if err := os.WriteFile(conf, src, 0o600); err != nil {
			t.Fatal(err)
		}
		h := &labHost{name: tool, ns: ns, ifname: ifname, conf: conf}
		if tool == "wg-quick" {
			l.wgQuick(h)
		} else {
			l.up(h)
			t.Cleanup(func() { l.wgnet(h, "down", ifname) })
		}
		got[i] = dump(ns, ifname)
	}
	if got[0] != got[1] {
		t.Errorf("wg-quick and wgnet disagree (- wg-quick, + wgnet):\n%s\n\nwg-quick:\n%s", lineDiff(got[0], got[1]), got[0])
	}
	if !strings.Contains(got[1], "mtu 8920") {
		t.Errorf("wgnet's MTU is not 9000-80:\n%s", got[1])
	}
}
