package up_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// The tests in this file change running networks built by newLab (see
// lab_linux_test.go) with `wgnet sync`, and check that traffic between hosts the
// change does not concern keeps flowing.

// handshakeCounter counts WireGuard handshake initiations crossing the underlay
// bridge: a handshake initiation is 148 bytes of UDP payload starting with message
// type 1 (the bytes 01 00 00 00), so its UDP length field, which includes the
// 8-byte UDP header, is 156. No other WireGuard message has that size (a response
// is 92 bytes, a cookie reply 64, a data packet 32 plus a multiple of 16).
type handshakeCounter struct {
	t  *testing.T
	ns *netnstest.NS
}

func (l *lab) handshakeCounter() *handshakeCounter {
	l.t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		l.t.Skip("needs nft")
	}
	rules := `table bridge wgt {
	chain hs {
		type filter hook forward priority 0; policy accept;
		udp length 156 @th,64,32 0x01000000 counter
	}
}
`
	f := filepath.Join(l.dir, "handshakes.nft")
	if err := os.WriteFile(f, []byte(rules), 0o600); err != nil {
		l.t.Fatal(err)
	}
	l.ul.Run(l.t, "nft", "-f", f)
	return &handshakeCounter{t: l.t, ns: l.ul}
}

var counterRE = regexp.MustCompile(`counter packets (\d+)`)

func (c *handshakeCounter) read() int {
	c.t.Helper()
	m := counterRE.FindStringSubmatch(c.ns.Run(c.t, "nft", "list", "chain", "bridge", "wgt", "hs"))
	if m == nil {
		c.t.Fatal("no counter in the underlay's nft chain")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// floodPing pings to from `from` every 50 ms, count times, in the background;
// wait returns how many were sent and answered.
type floodPing struct {
	cmd  *exec.Cmd
	out  strings.Builder
	done chan error
}

func startPing(t *testing.T, from *netnstest.NS, to netip.Addr, count int) *floodPing {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count)*50*time.Millisecond+20*time.Second)
	p := &floodPing{done: make(chan error, 1)}
	p.cmd = from.Command(ctx, "ping", "-n", "-i", "0.05", "-W", "1", "-c", strconv.Itoa(count), to.String())
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); cancel() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	time.Sleep(300 * time.Millisecond) // some replies before the change
	return p
}

var pingStatsRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func (p *floodPing) wait(t *testing.T) (sent, received int) {
	t.Helper()
	<-p.done
	m := pingStatsRE.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("ping: no statistics:\n%s", p.out.String())
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received
}

// syncPlan runs `wgnet -o json sync ARGS` on h and returns the plan.
func (l *lab) sync(h *labHost, args ...string) *syncOutput {
	l.t.Helper()
	out, err := l.wgnetOut(h, append([]string{"-o", "json", "sync"}, args...)...)
	if err != nil {
		l.t.Fatalf("wgnet sync %s on %s: %v", strings.Join(args, " "), h.name, err)
	}
	var res syncOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		l.t.Fatalf("wgnet sync -o json: %v:\n%s", err, out)
	}
	return &res
}

// syncOutput is the part of `wgnet sync -o json` the tests read.
type syncOutput struct {
	Interface string `json:"interface"`
	Adopt     bool   `json:"adopt"`
	Peers     []struct {
		Op                string         `json:"op"`
		Name              string         `json:"name"`
		AllowedIPs        []netip.Prefix `json:"allowed_ips"`
		AddAllowedIPs     []netip.Prefix `json:"add_allowed_ips"`
		RemoveAllowedIPs  []netip.Prefix `json:"remove_allowed_ips"`
		ReplaceAllowedIPs bool           `json:"replace_allowed_ips"`
	} `json:"peers"`
	Routes struct {
		Add    []struct{ Dst netip.Prefix } `json:"add"`
		Remove []struct{ Dst netip.Prefix } `json:"remove"`
	} `json:"routes"`
	Notes   []string `json:"notes"`
	DryRun  bool     `json:"dry_run"`
	Pending *struct {
		TimerPID int `json:"timer_pid"`
	} `json:"pending"`
}

// wgnetOut is wgnet with stdout only (stderr has the progress lines).
func (l *lab) wgnetOut(h *labHost, args ...string) (string, error) {
	argv := l.argv(args...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := h.ns.Command(ctx, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	l.t.Logf("wgnet %s on %s:\n%s%s", strings.Join(args, " "), h.name, stderr.String(), out)
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return string(out), nil
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestSyncAddHost adds a fourth host to a running hub-and-spoke network: the hub
// gets one new peer, the spokes the new host's prefixes on their hub peer. A ping
// between two old spokes, through the hub, every 50 ms across the syncs loses
// nothing, and no handshake initiation crosses the underlay while they run (no
// session was disturbed). Then the new host and its container reach everyone.
func TestSyncAddHost(t *testing.T) {
	l := newLab(t, "hub", "s1", "s2", "s3")
	hub, s1, s2, s3 := l.hosts[0], l.hosts[1], l.hosts[2], l.hosts[3]
	l.compileHosts(l.hosts[:3])
	hs := l.handshakeCounter()
	for _, h := range l.hosts[:3] {
		l.up(h)
	}
	for _, c := range [][2]*labHost{{s1, s2}, {s2, s1}, {s1, hub}, {hub, s2}} {
		if err := ping(t, c[0].ns, c[1].overlay4); err != nil {
			t.Fatalf("%s -> %s before the change: %v", c[0].name, c[1].name, err)
		}
	}
	// Sessions exist now; the counter must have seen their handshakes (or it
	// counts nothing at all).
	if hs.read() == 0 {
		t.Fatal("the underlay counter saw no handshake initiation while the sessions were made")
	}

	l.compileHosts(l.hosts)
	p := startPing(t, s1.ns, s2.overlay4, 80)
	before := hs.read()
	plans := map[string]*syncOutput{}
	for _, h := range []*labHost{hub, s1, s2} {
		plans[h.name] = l.sync(h, h.conf)
	}
	during := hs.read() - before
	sent, received := p.wait(t)
	t.Logf("handshake initiations on the underlay: %d before the syncs, %d during them; ping s1 -> s2: %d sent, %d received", before, during, sent, received)
	if sent == 0 || received != sent {
		t.Errorf("ping s1 -> s2 across the syncs: %d sent, %d received", sent, received)
	}
	if during != 0 {
		t.Errorf("%d handshake initiation(s) crossed the underlay during the syncs", during)
	}
	if pl := plans["hub"]; len(pl.Peers) != 1 || pl.Peers[0].Op != "+" || pl.Peers[0].Name != "s3" {
		t.Errorf("hub's plan: want exactly peer s3 added: %+v", pl.Peers)
	}
	for _, h := range []*labHost{s1, s2} {
		pl := plans[h.name]
		want := prefixes(s3.route4.String(), s3.route6.String())
		slices.SortFunc(want, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		if len(pl.Peers) != 1 || pl.Peers[0].Op != "~" || len(pl.Peers[0].RemoveAllowedIPs) != 0 || !slices.Equal(pl.Peers[0].AddAllowedIPs, want) {
			t.Errorf("%s's plan: want the hub peer to gain %v and nothing else: %+v", h.name, want, pl.Peers)
		}
	}

	l.up(s3)
	var targets []netip.Addr
	for _, h := range l.hosts {
		if h != s3 {
			targets = append(targets, h.overlay4, h.overlay6, h.ctr4, h.ctr6)
		}
	}
	for _, to := range targets {
		if err := ping(t, s3.ns, to); err != nil {
			t.Errorf("new host s3 -> %s: %v", to, err)
		}
		if err := ping(t, s3.ctr, to); err != nil {
			t.Errorf("container of s3 -> %s: %v", to, err)
		}
	}
	for _, h := range l.hosts[:3] {
		if err := ping(t, h.ctr, s3.ctr4); err != nil {
			t.Errorf("container of %s -> container of s3: %v", h.name, err)
		}
	}
}

// TestSyncChangeRoutedSubnets changes one spoke's routed subnets (drops its IPv6
// subnet, gains 10.20.2.0/24): the hub's plan is exactly that prefix change on that
// peer and its routes, and a ping to the spoke's unchanged subnet, every 50 ms
// across the syncs of all three hosts, loses nothing.
func TestSyncChangeRoutedSubnets(t *testing.T) {
	l := newLab(t, "hub", "s1", "s2")
	hub, s1, s2 := l.hosts[0], l.hosts[1], l.hosts[2]
	for _, h := range l.hosts {
		l.up(h)
	}
	newNet := netip.MustParsePrefix("10.20.2.0/24")
	s1.ns.Run(t, "ip", "addr", "add", "10.20.2.1/24", "dev", "ctr0")
	s1.ctr.Run(t, "ip", "addr", "add", "10.20.2.2/24", "dev", "eth0")
	if err := ping(t, s2.ctr, s1.ctr4); err != nil {
		t.Fatalf("container s2 -> container s1 before the change: %v", err)
	}
	if err := ping(t, s2.ctr, s1.ctr6); err != nil {
		t.Fatalf("container s2 -> container s1 (v6) before the change: %v", err)
	}

	s1.routes = []netip.Prefix{s1.route4, newNet}
	l.compile()
	dry := l.sync(hub, "--dry-run", hub.conf)
	if !dry.DryRun || len(dry.Peers) != 1 {
		t.Fatalf("hub's plan: want one peer changed: %+v", dry.Peers)
	}
	if c := dry.Peers[0]; c.Op != "~" || c.Name != "s1" || !slices.Equal(c.AddAllowedIPs, []netip.Prefix{newNet}) ||
		!slices.Equal(c.RemoveAllowedIPs, []netip.Prefix{s1.route6}) || c.ReplaceAllowedIPs {
		t.Errorf("hub's plan for s1: want +%v -%v: %+v", newNet, s1.route6, c)
	}
	if r := dry.Routes; len(r.Add) != 1 || r.Add[0].Dst != newNet || len(r.Remove) != 1 || r.Remove[0].Dst != s1.route6 {
		t.Errorf("hub's plan: want route +%v -%v: %+v", newNet, s1.route6, r)
	}

	p := startPing(t, s2.ctr, s1.ctr4, 60)
	for _, h := range l.hosts {
		l.sync(h, h.conf)
	}
	sent, received := p.wait(t)
	t.Logf("ping container s2 -> container s1 across the syncs: %d sent, %d received", sent, received)
	if sent == 0 || received != sent {
		t.Errorf("ping container s2 -> container s1 (%s, unchanged) across the syncs: %d sent, %d received", s1.ctr4, sent, received)
	}
	if err := ping(t, s2.ctr, netip.MustParseAddr("10.20.2.2")); err != nil {
		t.Errorf("container s2 -> s1's new subnet: %v", err)
	}
	if !noPing(s2.ctr, s1.ctr6) {
		t.Errorf("container s2 still reaches s1's dropped subnet %s", s1.ctr6)
	}
	if out := hub.ns.Run(t, "ip", "-6", "route", "show", "dev", hub.ifname); strings.Contains(out, s1.route6.String()) {
		t.Errorf("hub still routes %s:\n%s", s1.route6, out)
	}
}

// wgPeers lists the peers of ifname, by `wg show IFACE peers`.
func wgPeers(t *testing.T, h *labHost) []string {
	t.Helper()
	return strings.Fields(h.ns.Run(t, "wg", "show", h.ifname, "peers"))
}

func hasPeer(t *testing.T, h *labHost, peer *labHost) bool {
	return slices.Contains(wgPeers(t, h), peer.priv.Public().String())
}

func endpointOf(t *testing.T, h *labHost, peer *labHost) string {
	t.Helper()
	for _, line := range strings.Split(h.ns.Run(t, "wg", "show", h.ifname, "endpoints"), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == peer.priv.Public().String() {
			return f[1]
		}
	}
	return ""
}

// waitFor polls cond every 200 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestSyncConfirm drops spoke s2 from the hub with `sync --confirm 5s`: not
// confirmed, s2 comes back (with the endpoint the hub had learned from it, so the
// hub can handshake with it at once, and its route); when the session that ran
// the sync is killed, the detached timer still brings it back; confirmed, it stays
// gone (last: a peer removed and added back without an endpoint waits for its
// own rekey timeout). A second change while one is pending is refused. `up
// --confirm` not confirmed takes the interface down.
func TestSyncConfirm(t *testing.T) {
	requireWgQuick(t) // for wg
	l := newLab(t, "hub", "s1", "s2")
	hub, s1, s2 := l.hosts[0], l.hosts[1], l.hosts[2]
	for _, h := range l.hosts {
		l.up(h)
	}
	if err := ping(t, s2.ns, hub.overlay4); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(hub.conf)
	if err != nil {
		t.Fatal(err)
	}
	l.compileHosts([]*labHost{hub, s1})
	noS2 := filepath.Join(t.TempDir(), hub.ifname+".conf")
	if err := os.Rename(hub.conf, noS2); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hub.conf, full, 0o600); err != nil {
		t.Fatal(err)
	}
	stateFile := filepath.Join(l.stateDir, hub.ifname+".json")
	learned := endpointOf(t, hub, s2)
	if learned == "" {
		t.Fatal("the hub has no endpoint for s2 after a handshake")
	}
	route := s2.route4.String()
	hubRoutes := func() string { return hub.ns.Run(t, "ip", "route", "show", "dev", hub.ifname) }

	t.Run("not confirmed", func(t *testing.T) {
		before, _ := os.ReadFile(stateFile)
		res := l.sync(hub, "--confirm", "5s", noS2)
		if res.Pending == nil || res.Pending.TimerPID == 0 {
			t.Fatalf("no timer: %+v", res)
		}
		if hasPeer(t, hub, s2) || strings.Contains(hubRoutes(), route) {
			t.Fatal("s2 or its route is still on the hub after the sync")
		}
		if out, err := l.wgnet(hub, "sync", hub.conf); err == nil || !strings.Contains(out, "waiting for confirmation") {
			t.Errorf("a second sync while one is pending: %v\n%s", err, out)
		}
		l.waitSettled(hub, 10*time.Second)
		if !hasPeer(t, hub, s2) {
			t.Fatalf("s2 did not come back; timer log:\n%s", readFile(up.TimerLog(l.stateDir, hub.ifname)))
		}
		if got := endpointOf(t, hub, s2); got != learned {
			t.Errorf("s2's endpoint on the hub after the rollback = %q, want the learned %q", got, learned)
		}
		if !strings.Contains(hubRoutes(), route) {
			t.Errorf("route %s not back on the hub:\n%s", route, hubRoutes())
		}
		after, _ := os.ReadFile(stateFile)
		if string(before) != string(after) {
			t.Errorf("state file not restored:\n%s\nwant:\n%s", after, before)
		}
		if err := ping(t, hub.ns, s2.ctr4); err != nil {
			t.Errorf("hub -> container s2 after the rollback: %v", err)
		}
	})

	t.Run("session killed", func(t *testing.T) {
		// The shell that runs the sync stands for an SSH session: after the sync
		// it waits, and then its whole process group is killed.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		script := fmt.Sprintf("env WGNET_STATE_DIR=%s %s sync --confirm 5s %s; sleep 60", l.stateDir, wgnet(t), noS2)
		cmd := hub.ns.Command(ctx, "bash", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if !waitFor(10*time.Second, func() bool { return !hasPeer(t, hub, s2) }) {
			t.Fatal("the sync did not remove s2")
		}
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		l.waitSettled(hub, 10*time.Second)
		if !hasPeer(t, hub, s2) {
			t.Fatalf("s2 did not come back after the session died; timer log:\n%s", readFile(up.TimerLog(l.stateDir, hub.ifname)))
		}
		if got := endpointOf(t, hub, s2); got != learned {
			t.Errorf("s2's endpoint on the hub after the rollback = %q, want the learned %q", got, learned)
		}
		if err := ping(t, hub.ns, s2.ctr4); err != nil {
			t.Errorf("hub -> container s2 after the rollback: %v", err)
		}
	})

	t.Run("confirmed", func(t *testing.T) {
		l.sync(hub, "--confirm", "5s", noS2)
		if out, err := l.wgnet(hub, "confirm", hub.ifname); err != nil {
			t.Fatalf("confirm: %v\n%s", err, out)
		}
		time.Sleep(6 * time.Second)
		if hasPeer(t, hub, s2) {
			t.Error("s2 came back although the change was confirmed")
		}
		if out, err := l.wgnet(hub, "confirm", hub.ifname); err == nil {
			t.Errorf("a second confirm succeeded:\n%s", out)
		}
	})

	t.Run("up not confirmed", func(t *testing.T) {
		if out, err := l.wgnet(s2, "down", s2.ifname); err != nil {
			t.Fatalf("down: %v\n%s", err, out)
		}
		if out, err := l.wgnet(s2, "up", "--confirm", "2s", s2.conf); err != nil {
			t.Fatalf("up --confirm: %v\n%s", err, out)
		}
		if _, err := s2.ns.Try("ip", "link", "show", s2.ifname); err != nil {
			t.Fatal("no interface after up --confirm")
		}
		l.waitSettled(s2, 8*time.Second)
		if _, err := s2.ns.Try("ip", "link", "show", s2.ifname); err == nil {
			t.Errorf("the interface is still there after the deadline; timer log:\n%s", readFile(up.TimerLog(l.stateDir, s2.ifname)))
		}
		if _, err := up.ReadState(l.stateDir, s2.ifname); err == nil {
			t.Errorf("state file left after rolling back up; timer log:\n%s", readFile(up.TimerLog(l.stateDir, s2.ifname)))
		}
	})
}

// waitSettled waits until no change of h's interface is pending any more
// (confirmed, or rolled back by the timer).
func (l *lab) waitSettled(h *labHost, d time.Duration) {
	l.t.Helper()
	if !waitFor(d, func() bool {
		_, err := up.LoadPending(l.stateDir, h.ifname)
		return errors.Is(err, up.ErrNoPending)
	}) {
		l.t.Fatalf("a change of %s is still pending after %v; timer log:\n%s", h.name, d, readFile(up.TimerLog(l.stateDir, h.ifname)))
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestSyncDryRun: `sync --dry-run` of a config that changes much (a peer gone, a
// peer's subnets changed) leaves links, addresses, routes, rules, the nft ruleset,
// sysctls, the device configuration and the state file exactly as they were.
func TestSyncDryRun(t *testing.T) {
	requireWgQuick(t) // for wg showconf
	l := newLab(t, "hub", "s1", "s2")
	hub := l.hosts[0]
	l.up(hub)
	l.hosts[1].routes = prefixes("10.20.2.0/24")
	l.compileHosts(l.hosts[:2])
	stateFile := filepath.Join(l.stateDir, hub.ifname+".json")
	look := func() string {
		return snapshot(t, hub.ns) + showconf(t, hub) + readFile(stateFile)
	}
	before := look()
	res := l.sync(hub, "--dry-run", hub.conf)
	if len(res.Peers) != 2 {
		t.Errorf("dry run plan: want s1 changed and s2 removed: %+v", res.Peers)
	}
	if out, err := l.wgnet(hub, "sync", "--dry-run", hub.conf); err != nil || !strings.Contains(out, "- peer s2") {
		t.Errorf("text dry run: %v\n%s", err, out)
	}
	if after := look(); after != before {
		t.Errorf("dry run changed the host:\n%s", lineDiff(before, after))
	}
}

// showconf is `wg showconf` with the peers sorted: wireguard-go lists them in
// the order of a Go map.
func showconf(t *testing.T, h *labHost) string {
	t.Helper()
	sections := strings.Split(h.ns.Run(t, "wg", "showconf", h.ifname), "\n[Peer]\n")
	slices.Sort(sections[1:])
	return strings.Join(sections, "\n[Peer]\n")
}

// TestSyncAdoptsWgQuick takes over an interface the stock wg-quick made (on
// Debian's wireguard-go, which cannot remove single allowed IPs, so the changed
// peer's list is rewritten, and the plan says so), then `wgnet down` removes it.
func TestSyncAdoptsWgQuick(t *testing.T) {
	requireWgQuick(t)
	l := newLab(t, "hub", "s1")
	hub, s1 := l.hosts[0], l.hosts[1]
	l.up(hub)
	if out, err := s1.ns.Try("wg-quick", "up", s1.conf); err != nil {
		t.Fatalf("wg-quick up: %v\n%s", err, out)
	}
	t.Cleanup(func() { s1.ns.Try("ip", "link", "del", s1.ifname) }) // if the test stops half-way
	if err := ping(t, s1.ns, hub.ctr4); err != nil {
		t.Fatalf("s1 (wg-quick) -> hub's container: %v", err)
	}
	// The hub routes another subnet instead of its IPv6 one.
	extra := netip.MustParsePrefix("10.30.1.0/24")
	hub.routes = []netip.Prefix{hub.route4, extra}
	l.compile()
	res := l.sync(s1, s1.conf)
	if !res.Adopt {
		t.Errorf("plan does not say it adopts the interface: %+v", res)
	}
	if len(res.Peers) != 1 || !res.Peers[0].ReplaceAllowedIPs ||
		!slices.Equal(res.Peers[0].AddAllowedIPs, []netip.Prefix{extra}) || !slices.Equal(res.Peers[0].RemoveAllowedIPs, []netip.Prefix{hub.route6}) {
		t.Errorf("plan: want the hub peer +%v -%v, whole list rewritten: %+v", extra, hub.route6, res.Peers)
	}
	st, err := up.ReadState(l.stateDir, s1.ifname)
	if err != nil || !st.Adopted {
		t.Fatalf("state after adopting: %+v, %v", st, err)
	}
	routes := s1.ns.Run(t, "ip", "route", "show", "table", "all")
	if !strings.Contains(routes, extra.String()+" dev "+s1.ifname) || strings.Contains(routes, hub.route6.String()) {
		t.Errorf("routes after sync: want %s and not %s:\n%s", extra, hub.route6, routes)
	}
	if err := ping(t, s1.ns, hub.ctr4); err != nil {
		t.Errorf("s1 -> hub's container after the sync: %v", err)
	}
	if out, err := l.wgnet(s1, "show", s1.ifname); err != nil || !strings.Contains(out, "wgnet") {
		t.Errorf("wgnet show after adopting: %v\n%s", err, out)
	}
	if out, err := l.wgnet(s1, "down", s1.ifname); err != nil {
		t.Fatalf("wgnet down of the adopted interface: %v\n%s", err, out)
	}
	if _, err := s1.ns.Try("ip", "link", "show", s1.ifname); err == nil {
		t.Error("the interface is still there after down")
	}
	if _, err := os.Stat(filepath.Join("/var/run/wireguard", s1.ifname+".sock")); err == nil {
		t.Error("wireguard-go's UAPI socket is still there after down")
	}
	if routes := s1.ns.Run(t, "ip", "route", "show", "table", "all"); strings.Contains(routes, extra.String()) {
		t.Errorf("route left after down:\n%s", routes)
	}
}

// TestSyncSeesDriftBehindItsBack changes the hub's running device with wg(8)
// behind wgnet's back (a peer's allowed IPs rewritten, another's keepalive
// set, a peer nobody configured added), then syncs: the plan names exactly
// that drift, the sync puts the config back, and a second sync finds nothing
// to do. wgnet reads its own daemon through stateOp, straight from
// wireguard-go's peers, so this holds that read to what wg(8) changed.
func TestSyncSeesDriftBehindItsBack(t *testing.T) {
	l := newLab(t, "hub", "s1", "s2")
	hub, s1, s2 := l.hosts[0], l.hosts[1], l.hosts[2]
	for _, h := range l.hosts {
		l.up(h)
	}
	// wg showconf with its peers, and each peer's allowed IPs, sorted: a
	// prefix put back comes last in wireguard-go's list, and peers come in
	// the order of its map.
	showconf := func() string {
		lines := strings.Split(hub.ns.Run(t, "wg", "showconf", hub.ifname), "\n")
		for i, line := range lines {
			if v, ok := strings.CutPrefix(line, "AllowedIPs = "); ok {
				ips := strings.Split(v, ", ")
				slices.Sort(ips)
				lines[i] = "AllowedIPs = " + strings.Join(ips, ", ")
			}
		}
		sections := strings.Split(strings.TrimSpace(strings.Join(lines, "\n")), "\n\n")
		for i := range sections {
			sections[i] = strings.TrimSpace(sections[i])
		}
		slices.Sort(sections[1:])
		return strings.Join(sections, "\n\n")
	}
	clean := showconf()

	k1, k2 := s1.priv.Public().String(), s2.priv.Public().String()
	var s1IPs []string
	for _, line := range strings.Split(hub.ns.Run(t, "wg", "show", hub.ifname, "allowed-ips"), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == k1 {
			s1IPs = f[1:]
		}
	}
	if !slices.Contains(s1IPs, s1.route6.String()) {
		t.Fatalf("hub's peer s1 has allowed IPs %v, without %v", s1IPs, s1.route6)
	}
	drifted := append(slices.DeleteFunc(slices.Clone(s1IPs), func(s string) bool { return s == s1.route6.String() }), "10.77.0.0/24")
	foreign, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	hub.ns.Run(t, "wg", "set", hub.ifname,
		"peer", k1, "allowed-ips", strings.Join(drifted, ","),
		"peer", k2, "persistent-keepalive", "17",
		"peer", foreign.Public().String(), "allowed-ips", "10.78.0.1/32")

	out, err := l.wgnetOut(hub, "-o", "json", "sync", "--dry-run", hub.conf)
	if err != nil {
		t.Fatal(err)
	}
	var plan struct {
		Peers []struct {
			Op                  string         `json:"op"`
			PublicKey           string         `json:"public_key"`
			AddAllowedIPs       []netip.Prefix `json:"add_allowed_ips"`
			RemoveAllowedIPs    []netip.Prefix `json:"remove_allowed_ips"`
			PersistentKeepalive *struct {
				Old, New any
			} `json:"persistent_keepalive"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range plan.Peers {
		seen[p.PublicKey] = true
		switch p.PublicKey {
		case k1:
			if p.Op != "~" || !slices.Equal(p.AddAllowedIPs, []netip.Prefix{s1.route6}) ||
				!slices.Equal(p.RemoveAllowedIPs, prefixes("10.77.0.0/24")) {
				t.Errorf("plan for s1: want +%v -10.77.0.0/24: %+v", s1.route6, p)
			}
		case k2:
			if p.Op != "~" || p.PersistentKeepalive == nil || len(p.AddAllowedIPs)+len(p.RemoveAllowedIPs) != 0 {
				t.Errorf("plan for s2: want its keepalive put back, nothing else: %+v", p)
			}
		case foreign.Public().String():
			if p.Op != "-" {
				t.Errorf("plan for the peer added behind wgnet's back: want it removed: %+v", p)
			}
		default:
			t.Errorf("plan changes peer %s, which nobody touched: %+v", p.PublicKey, p)
		}
	}
	if len(seen) != 3 {
		t.Errorf("plan: want the three drifted peers, got:\n%s", out)
	}

	l.sync(hub, hub.conf)
	if got := showconf(); got != clean {
		t.Errorf("after sync, wg showconf differs from before the drift:\nbefore:\n%s\nafter:\n%s", clean, got)
	}
	if again := l.sync(hub, hub.conf); len(again.Peers) != 0 {
		t.Errorf("a second sync still changes peers: %+v", again.Peers)
	}
}
