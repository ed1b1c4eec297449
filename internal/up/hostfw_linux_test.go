package up_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/dockerfw/dockerfwtest"
	"github.com/wgnet/wgnet/internal/netnstest"
)

// TestDockerHostsJustWork is issue 11's network with Docker's iptables rules
// (reproduced with iptables-restore, one generation per run) in front of the
// container subnets, ip_forward=0 and rp_filter=1 everywhere beforehand:
//   - without the opt-in, up says what drops the traffic and what to set, and
//     container traffic does not get through;
//   - with it (`sync --host-firewall=docker`), wgnet's accepts in DOCKER-USER
//     and its RETURN before Docker's MASQUERADE make all 30 host/container
//     pairs reach, and every container sees the other containers' own
//     addresses as sources;
//   - Docker recreating its chains (iptables-restore of its rules again, which
//     wipes wgnet's) breaks it, and a plain `wgnet sync` re-asserts the rules;
//   - Docker 28 in nat mode: its raw drop is named, with the network option
//     that lifts it; in routed mode the 30 pairs reach;
//   - down restores every namespace exactly: iptables-save and nft included.
func TestDockerHostsJustWork(t *testing.T) {
	for _, c := range []struct {
		gen     dockerfwtest.Generation
		backend dockerfw.Backend
	}{
		{dockerfwtest.Docker20, dockerfw.Nft},
		{dockerfwtest.Docker28, dockerfw.Legacy},
	} {
		t.Run(string(c.gen)+"-"+string(c.backend), func(t *testing.T) {
			netnstest.NeedsTool(t, "iptables", dockerfw.Binary(c.backend, 4, "-restore"), dockerfw.Binary(c.backend, 4, "-save"))
			testDocker(t, c.gen, c.backend)
		})
	}
}

func testDocker(t *testing.T, gen dockerfwtest.Generation, backend dockerfw.Backend) {
	l := newBareLab(t, "hub", "s1", "s2")
	restore := dockerfw.Binary(backend, 4, "-restore")
	loadDocker := func(ns *netnstest.NS, h *labHost, g dockerfwtest.Generation) {
		f := filepath.Join(t.TempDir(), "rules")
		if err := os.WriteFile(f, []byte(dockerfwtest.DockerRules(g, "cbr0", h.route4, []netip.Addr{h.ctr4})), 0o600); err != nil {
			t.Fatal(err)
		}
		ns.Run(t, restore, f)
	}
	before, beforeIpt := map[string]string{}, map[string]string{}
	for _, h := range l.hosts {
		loadDocker(h.ns, h, gen)
		before[h.name], beforeIpt[h.name] = fwSnapshot(t, h.ns)
	}

	// Without the opt-in: up works, and says what drops the traffic.
	for _, h := range l.hosts {
		out, err := l.wgnet(h, "up", h.conf)
		if err != nil {
			t.Fatalf("up on %s: %v\n%s", h.name, err, out)
		}
		for _, want := range []string{"Docker's iptables chains are here (" + string(backend) + ", IPv4; FORWARD policy drop)", "`host_firewall: docker`", "--host-firewall=docker"} {
			if !strings.Contains(out, want) {
				t.Errorf("up on %s without the opt-in does not say %q:\n%s", h.name, want, out)
			}
		}
		if gen == dockerfwtest.Docker28 && !strings.Contains(out, "com.docker.network.bridge.gateway_mode_ipv4=routed") {
			t.Errorf("up on %s does not name the raw drop's fix:\n%s", h.name, out)
		}
		if strings.Contains(out, "DOCKER-USER 1") {
			t.Errorf("up on %s changed Docker's chains without the opt-in:\n%s", h.name, out)
		}
	}
	s1, s2 := l.hosts[1], l.hosts[2]
	if err := ping(t, s1.ctr, s2.ctr4); err == nil {
		t.Errorf("without the opt-in, s1's container reaches s2's (so Docker's rules block nothing and the test proves nothing)")
	}
	wantFix := []string{"live-forward-drop", "`host_firewall: docker`", "live-docker-masquerade"}
	if gen == dockerfwtest.Docker28 {
		wantFix = append(wantFix, "live-docker-raw-drop", "gateway_mode_ipv4=routed")
	}
	checkLive(t, l, l.hosts[1:2], wantFix...)

	// The opt-in, given to sync: every rule is in the plan.
	for _, h := range l.hosts {
		plan, err := l.wgnet(h, "sync", "--dry-run", "--host-firewall=docker", h.conf)
		if err != nil {
			t.Fatalf("sync --dry-run on %s: %v\n%s", h.name, err, plan)
		}
		for _, want := range []string{
			fmt.Sprintf("+ %s -t filter -I DOCKER-USER 2 -d %s -i %s -m comment --comment wgnet:%s -j ACCEPT", dockerfw.Binary(backend, 4, ""), h.route4, h.ifname, h.ifname),
			fmt.Sprintf("-t nat -I POSTROUTING 1 -s %s -o %s -m comment --comment wgnet:%s -j RETURN", h.route4, h.ifname, h.ifname),
		} {
			if h.name != "hub" {
				want = strings.Replace(want, "DOCKER-USER 2", "DOCKER-USER 1", 1)
			}
			if !strings.Contains(plan, want) {
				t.Errorf("plan on %s lacks %q:\n%s", h.name, want, plan)
			}
		}
		out, err := l.wgnet(h, "sync", "--host-firewall=docker", h.conf)
		if err != nil {
			t.Fatalf("sync --host-firewall=docker on %s: %v\n%s", h.name, err, out)
		}
		t.Logf("sync --host-firewall=docker on %s:\n%s", h.name, out)
	}
	if gen == dockerfwtest.Docker28 {
		// nat mode: the raw drop still stops the tunnel → container way.
		if err := ping(t, s1.ns, s2.ctr4); err == nil {
			t.Errorf("s1 reaches s2's container through Docker 28's raw drop")
		}
		// The network recreated with gateway_mode_ipv4=routed: Docker's chains
		// made anew (wgnet's rules gone with them), no raw drop, no masquerade.
		for _, h := range l.hosts {
			loadDocker(h.ns, h, dockerfwtest.Docker28Routed)
		}
		resync(t, l)
	}
	allPairs(t, l)
	sourcesKept(t, l)
	checkLive(t, l, l.hosts)

	// Docker recreates its chains (a restart, a firewalld reload): wgnet's
	// rules are gone and containers are cut off, until a sync puts them back.
	g := gen
	if gen == dockerfwtest.Docker28 {
		g = dockerfwtest.Docker28Routed
	}
	for _, h := range l.hosts {
		loadDocker(h.ns, h, g)
	}
	if err := ping(t, s1.ctr, s2.ctr4); err == nil {
		t.Errorf("after Docker recreated its chains, s1's container still reaches s2's (nothing to re-assert)")
	}
	checkLive(t, l, l.hosts[:1], "live-forward-drop", "run `wgnet sync "+l.hosts[0].ifname+"` to re-assert them")
	resync(t, l)
	allPairs(t, l)

	for _, h := range l.hosts {
		if out, err := l.wgnet(h, "down", h.ifname); err != nil {
			t.Errorf("down on %s: %v\n%s", h.name, err, out)
		}
		wantIpt := beforeIpt[h.name]
		if g != gen {
			// Docker's rules are routed mode's now: what down must leave is
			// those rules as Docker made them, without wgnet's.
			scratch := netnstest.New(t, "ipt")
			loadDocker(scratch, h, g)
			_, wantIpt = fwSnapshot(t, scratch)
		}
		after, afterIpt := fwSnapshot(t, h.ns)
		if after != before[h.name] {
			t.Errorf("down did not restore %s:\n%s", h.name, lineDiff(before[h.name], after))
		}
		if afterIpt != wantIpt {
			t.Errorf("down did not restore %s's iptables:\n%s", h.name, lineDiff(wantIpt, afterIpt))
		}
		t.Logf("%s after down: iptables as Docker made them (%d lines compared), the rest as before (%d lines)", h.name, strings.Count(afterIpt, "\n"), strings.Count(after, "\n"))
	}
}

// checkLive runs `wgnet check --live` on hosts: with no want, it must find
// nothing (exit 0); else it must exit 1 and say each of want.
func checkLive(t *testing.T, l *lab, hosts []*labHost, want ...string) {
	t.Helper()
	for _, h := range hosts {
		out, err := l.wgnet(h, "check", "--live", h.ifname)
		switch {
		case len(want) == 0 && err != nil:
			t.Errorf("check --live on healthy %s: %v\n%s", h.name, err, out)
		case len(want) > 0 && err == nil:
			t.Errorf("check --live on %s found nothing:\n%s", h.name, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("check --live on %s does not say %q:\n%s", h.name, w, out)
			}
		}
		t.Logf("check --live on %s:\n%s", h.name, out)
	}
}

// downRestores takes every host down and checks that its namespace is as
// before (fwSnapshot), iptables included.
func downRestores(t *testing.T, l *lab, before, beforeIpt map[string]string) {
	t.Helper()
	for _, h := range l.hosts {
		if out, err := l.wgnet(h, "down", h.ifname); err != nil {
			t.Errorf("down on %s: %v\n%s", h.name, err, out)
		}
		after, afterIpt := fwSnapshot(t, h.ns)
		if after != before[h.name] || afterIpt != beforeIpt[h.name] {
			t.Errorf("down did not restore %s:\n%s%s", h.name, lineDiff(before[h.name], after), lineDiff(beforeIpt[h.name], afterIpt))
		}
	}
}

// resync runs a plain `wgnet sync` on every host (the opt-in is recorded) and
// checks that it re-asserted wgnet's rules.
func resync(t *testing.T, l *lab) {
	t.Helper()
	for _, h := range l.hosts {
		out, err := l.wgnet(h, "sync", h.conf)
		if err != nil {
			t.Fatalf("sync on %s: %v\n%s", h.name, err, out)
		}
		if !strings.Contains(out, "-I DOCKER-USER 1") || !strings.Contains(out, "-I POSTROUTING 1") {
			t.Errorf("sync on %s did not re-assert the rules:\n%s", h.name, out)
		}
	}
}

// allPairs pings every host and container from every other, spokes first so
// that their keepalive handshakes make the hub's way back: 30 pairs.
func allPairs(t *testing.T, l *lab) {
	t.Helper()
	type node struct {
		name string
		ns   *netnstest.NS
		addr netip.Addr
	}
	var nodes []node
	for _, h := range l.hosts {
		nodes = append(nodes, node{h.name, h.ns, h.overlay4}, node{h.name + "'s container", h.ctr, h.ctr4})
	}
	order := append(nodes[2:], nodes[:2]...)
	pairs, failed := 0, 0
	for _, from := range order {
		for _, to := range nodes {
			if from == to {
				continue
			}
			pairs++
			if err := ping(t, from.ns, to.addr); err != nil {
				failed++
				t.Errorf("%s -> %s (%s): %v", from.name, to.name, to.addr, err)
			}
		}
	}
	t.Logf("%d of %d host/container pairs reach", pairs-failed, pairs)
	if pairs != 30 {
		t.Errorf("%d pairs, want 30", pairs)
	}
}

// sourcesKept checks, with a counter in each container's own namespace, that
// the echo requests from the other containers arrive with the containers' own
// source addresses (not masqueraded to their hosts').
func sourcesKept(t *testing.T, l *lab) {
	t.Helper()
	for _, dst := range l.hosts {
		dst.ctr.Run(t, "nft", "add", "table", "ip", "srcseen")
		dst.ctr.Run(t, "nft", "add", "chain", "ip", "srcseen", "in", "{ type filter hook input priority 0; }")
		for _, src := range l.hosts {
			if src != dst {
				dst.ctr.Run(t, "nft", "add", "rule", "ip", "srcseen", "in", "ip", "saddr", src.ctr4.String(), "icmp", "type", "echo-request", "counter")
			}
		}
	}
	for _, src := range l.hosts {
		for _, dst := range l.hosts {
			if src != dst {
				if err := ping(t, src.ctr, dst.ctr4); err != nil {
					t.Errorf("%s's container -> %s's: %v", src.name, dst.name, err)
				}
			}
		}
	}
	counterRE := regexp.MustCompile(`ip saddr (\S+) icmp type echo-request counter packets (\d+)`)
	for _, dst := range l.hosts {
		out := dst.ctr.Run(t, "nft", "list", "table", "ip", "srcseen")
		ms := counterRE.FindAllStringSubmatch(out, -1)
		if len(ms) != 2 {
			t.Errorf("%s's container: counters %q", dst.name, out)
		}
		for _, m := range ms {
			if n, _ := strconv.Atoi(m[2]); n == 0 {
				t.Errorf("%s's container saw no echo request from %s: its source was rewritten", dst.name, m[1])
			} else {
				t.Logf("%s's container saw %d echo request(s) from %s (a container's own address)", dst.name, n, m[1])
			}
		}
		dst.ctr.Run(t, "nft", "delete", "table", "ip", "srcseen")
	}
}

var (
	countersRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)
	policyRE   = regexp.MustCompile(`\[\d+:\d+\]`)
)

// fwSnapshot is snapshot (nft's traffic counters left out) and both iptables
// backends' rules (counters and dump dates left out).
func fwSnapshot(t *testing.T, ns *netnstest.NS) (string, string) {
	t.Helper()
	base := countersRE.ReplaceAllString(snapshot(t, ns), "counter")
	var b strings.Builder
	for _, bin := range []string{"iptables-nft-save", "iptables-legacy-save", "ip6tables-nft-save", "ip6tables-legacy-save"} {
		out, err := ns.Try(bin)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "$ %s\n", bin)
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(policyRE.ReplaceAllString(line, "[]") + "\n")
			}
		}
	}
	return base, b.String()
}

// TestForwardDropHost is the same network on hosts whose own firewall has
// iptables' FORWARD policy DROP and no Docker (ufw, a hand-made firewall):
// check --live finds the drop and names the opt-in; with --host-firewall=auto
// wgnet's accepts go into FORWARD itself (no nat rule: nothing masquerades),
// all 30 pairs reach, check --live finds nothing, and down restores
// iptables-save exactly.
func TestForwardDropHost(t *testing.T) {
	netnstest.NeedsTool(t, "iptables", "iptables-nft", "iptables-nft-save")
	l := newBareLab(t, "hub", "s1", "s2")
	before, beforeIpt := map[string]string{}, map[string]string{}
	for _, h := range l.hosts {
		h.ns.Run(t, "iptables-nft", "-P", "FORWARD", "DROP")
		before[h.name], beforeIpt[h.name] = fwSnapshot(t, h.ns)
		l.up(h)
	}
	checkLive(t, l, l.hosts[1:2], "live-forward-drop", "`host_firewall: iptables`")
	for _, h := range l.hosts {
		out, err := l.wgnet(h, "sync", "--host-firewall=auto", h.conf)
		if err != nil {
			t.Fatalf("sync --host-firewall=auto on %s: %v\n%s", h.name, err, out)
		}
		if !strings.Contains(out, "-t filter -I FORWARD 1 ") || strings.Contains(out, "-t nat") {
			t.Errorf("sync on %s: not FORWARD alone:\n%s", h.name, out)
		}
	}
	allPairs(t, l)
	checkLive(t, l, l.hosts)
	downRestores(t, l, before, beforeIpt)
}

// TestRealDockerd is TestDockerHostsJustWork with a real dockerd in front of
// each container subnet instead of reproduced rules: Debian's docker.io
// (20.10), unpacked (not installed) into the directory WGNET_DOCKERD_ROOT
// (usr/sbin/dockerd, usr/bin/containerd, runc...: `apt-get download docker.io
// containerd runc` and `dpkg-deb -x` each). Each dockerd runs in its host's
// test namespace, in a private mount namespace, with its own data-root,
// exec-root, socket and pidfile, and `-b cbr0`: the lab's bridge is Docker's,
// the container namespace plugged into it its container. Skipped without
// WGNET_DOCKERD_ROOT (CI does not set it).
func TestRealDockerd(t *testing.T) {
	root := os.Getenv("WGNET_DOCKERD_ROOT")
	if root == "" {
		t.Skip("WGNET_DOCKERD_ROOT is not set (a directory with Debian's docker.io, containerd and runc unpacked)")
	}
	netnstest.NeedsTool(t, "util-linux", "unshare", "nsenter")
	netnstest.NeedsTool(t, "iptables", "iptables-nft-save")
	l := newBareLab(t, "hub", "s1", "s2")
	stops := map[string]func(){}
	for _, h := range l.hosts {
		stops[h.name] = startDockerd(t, root, h)
	}
	before, beforeIpt := map[string]string{}, map[string]string{}
	for _, h := range l.hosts {
		before[h.name], beforeIpt[h.name] = fwSnapshot(t, h.ns)
		t.Logf("dockerd's iptables on %s:\n%s", h.name, beforeIpt[h.name])
		out, err := l.wgnet(h, "up", h.conf)
		if err != nil || !strings.Contains(out, "`host_firewall: docker`") {
			t.Fatalf("up on %s without the opt-in: %v\n%s", h.name, err, out)
		}
	}
	s1, s2 := l.hosts[1], l.hosts[2]
	if err := ping(t, s1.ctr, s2.ctr4); err == nil {
		t.Errorf("without the opt-in, s1's container reaches s2's through dockerd's rules")
	}
	checkLive(t, l, l.hosts[1:2], "live-forward-drop", "live-docker-masquerade", "`host_firewall: docker`")
	for _, h := range l.hosts {
		if out, err := l.wgnet(h, "sync", "--host-firewall=docker", h.conf); err != nil || !strings.Contains(out, "-I DOCKER-USER 1") {
			t.Fatalf("sync --host-firewall=docker on %s: %v\n%s", h.name, err, out)
		}
	}
	allPairs(t, l)
	sourcesKept(t, l)
	checkLive(t, l, l.hosts)

	// dockerd restarted on the hub: what it does to wgnet's rules is logged,
	// and a sync afterwards leaves them in place and working.
	hub := l.hosts[0]
	stops[hub.name]()
	stops[hub.name] = startDockerd(t, root, hub)
	plan, err := l.wgnet(hub, "sync", "--dry-run", hub.conf)
	t.Logf("sync --dry-run on the hub after dockerd restarted: %v\n%s", err, plan)
	if out, err := l.wgnet(hub, "sync", hub.conf); err != nil {
		t.Fatalf("sync on the hub: %v\n%s", err, out)
	}
	allPairs(t, l)
	checkLive(t, l, l.hosts[:1])

	downRestores(t, l, before, beforeIpt)
}

// startDockerd runs dockerd from root in h's namespace with -b cbr0 and waits
// until its chains are there. It returns what stops it (by its PID), which the
// test's end also runs.
func startDockerd(t *testing.T, root string, h *labHost) (stop func()) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(root, "usr/bin") + ":" + filepath.Join(root, "usr/sbin") + ":/usr/sbin:/usr/bin:/sbin:/bin"
	cmd := exec.Command("unshare", "--mount", "--propagation", "private",
		"nsenter", "--net=/run/netns/"+h.ns.Name,
		"env", "PATH="+path, "dockerd", "-b", "cbr0", "--storage-driver", "vfs",
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--host", "unix://"+filepath.Join(dir, "docker.sock"), "--pidfile", filepath.Join(dir, "docker.pid"))
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		// unshare and nsenter exec: the PID is dockerd's. SIGTERM stops it and
		// the containerd it started.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if out, _ := h.ns.Try("iptables-nft-save", "-t", "nat"); strings.Contains(out, "MASQUERADE") {
			return stop
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd on %s made no rules in 30 s:\n%s", h.name, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
