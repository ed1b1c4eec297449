package up_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// The tests in this file enforce a segmentation policy on networks built by
// newLab: each host's wgnet table filters what enters through its WireGuard
// interface. Until the spec's policy compiler gives hosts their filter, the
// filters are written here by hand (intent.Filter, the compiler's output) and
// applied by the engine itself, run by this test binary in the host's namespace
// (policyHelper), with the wgnet binary as the userspace daemon.

// policyHelperEnv names the request file that makes this test binary run one
// engine call in a host's namespace instead of the tests (see TestMain).
const policyHelperEnv = "WGNET_TEST_POLICY_HELPER"

// helperRequest is one engine call for policyHelper.
type helperRequest struct {
	Op        string        `json:"op"` // "up", "sync" or "plan"
	Name      string        `json:"name"`
	Conf      string        `json:"conf"` // the rendered wg-quick config
	Filter    intent.Filter `json:"filter"`
	StateDir  string        `json:"state_dir"`
	Exe       string        `json:"exe"` // the wgnet binary, for the daemon
	AllowDeny bool          `json:"allow_deny"`
}

// policyHelper runs the request in file and prints the plan as JSON; it returns
// the exit code (2: the engine refused or failed, its error on stderr).
func policyHelper(file string) int {
	var req helperRequest
	b, err := os.ReadFile(file)
	if err == nil {
		err = json.Unmarshal(b, &req)
	}
	var src []byte
	if err == nil {
		src, err = os.ReadFile(req.Conf)
	}
	var cfg *wgconf.Config
	if err == nil {
		cfg, err = wgconf.Parse(req.Conf, src)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "policy helper:", err)
		return 2
	}
	cfg.Name = req.Name
	h, _ := intent.FromConfig(cfg)
	h.Firewall.Filter = req.Filter
	ctx := context.Background()
	opts := up.SyncOptions{
		Options: up.Options{
			Backend:  up.BackendUserspace,
			StateDir: req.StateDir,
			Devices:  &up.SystemDevices{StateDir: req.StateDir, Executable: req.Exe},
			Log:      os.Stderr,
		},
		AllowPolicyDeny: req.AllowDeny,
	}
	r := up.Request{Name: req.Name, Host: h, Source: req.Conf}
	var plan *up.Plan
	switch req.Op {
	case "up":
		_, err = up.Up(ctx, r, opts.Options)
		plan = &up.Plan{}
	case "sync":
		plan, err = up.Sync(ctx, r, opts)
	case "plan":
		plan, err = up.PlanSync(ctx, r, opts)
	default:
		err = fmt.Errorf("op %q", req.Op)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "policy helper:", err)
		return 2
	}
	json.NewEncoder(os.Stdout).Encode(plan)
	return 0
}

// engine runs op with filter f on h (see policyHelper) and returns the plan.
func (l *lab) engine(h *labHost, op string, f intent.Filter, allowDeny bool) (*up.Plan, error) {
	l.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	req := helperRequest{Op: op, Name: h.ifname, Conf: h.conf, Filter: f, StateDir: l.stateDir, Exe: wgnet(l.t), AllowDeny: allowDeny}
	b, _ := json.Marshal(req)
	file := filepath.Join(l.dir, fmt.Sprintf("req-%s-%d.json", h.name, time.Now().UnixNano()))
	if err := os.WriteFile(file, b, 0o600); err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := h.ns.Command(ctx, "env", policyHelperEnv+"="+file, exe)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	l.t.Logf("engine %s on %s (filter: %d rules):\n%s%s", op, h.name, len(f.Rules), stderr.String(), out)
	l.engineLog = stderr.String()
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, stderr.String())
	}
	var plan up.Plan
	if err := json.Unmarshal(out, &plan); err != nil {
		l.t.Fatalf("engine %s: %v:\n%s", op, err, out)
	}
	return &plan, nil
}

// node is a host or a container of the lab, for the probe matrix.
type node struct {
	name   string
	ns     *netnstest.NS
	v4, v6 netip.Addr
	host   *labHost
}

func (l *lab) nodes() []node {
	var out []node
	for _, h := range l.hosts {
		out = append(out, node{h.name, h.ns, h.overlay4, h.overlay6, h}, node{h.name + "c", h.ctr, h.ctr4, h.ctr6, h})
	}
	return out
}

// listen opens a TCP listener on every port in every node's namespace, both
// families, accepting and closing, until the test ends.
func listen(t *testing.T, nodes []node, ports ...int) {
	t.Helper()
	for _, n := range nodes {
		for _, port := range ports {
			var ln net.Listener
			if err := n.ns.Do(func() (err error) {
				ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
				return err
			}); err != nil {
				t.Fatalf("listen on %s:%d: %v", n.name, port, err)
			}
			netnstest.Serve(t, ln, func(c net.Conn) { c.Close() })
		}
	}
}

// connects reports whether a TCP connection from ns to addr:port opens within
// timeout.
func connects(ns *netnstest.NS, addr netip.Addr, port int, timeout time.Duration) bool {
	return ns.Do(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, uint16(port)).String(), timeout)
		if err == nil {
			c.Close()
		}
		return err
	}) == nil
}

// probe is one probe of the matrix: TCP to a port, or ICMP echo (port 0).
type probe struct {
	from, to node
	v6       bool
	port     int
}

func (p probe) String() string {
	fam := "v4"
	if p.v6 {
		fam = "v6"
	}
	what := "ping"
	if p.port != 0 {
		what = fmt.Sprintf("tcp/%d", p.port)
	}
	return fmt.Sprintf("%s -> %s %s %s", p.from.name, p.to.name, fam, what)
}

// run probes once (a denied probe costs its timeout).
func (p probe) run() bool {
	dst := p.to.v4
	if p.v6 {
		dst = p.to.v6
	}
	if p.port == 0 {
		_, err := p.from.ns.Try("ping", "-c", "1", "-W", "1", dst.String())
		return err == nil
	}
	return connects(p.from.ns, dst, p.port, time.Second)
}

// matrix runs every probe, eight at a time, and returns which reached. A probe
// that fails is tried again once (a handshake may be under way).
func matrix(probes []probe) []bool {
	got := make([]bool, len(probes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			got[i] = p.run() || p.run()
		}()
	}
	wg.Wait()
	return got
}

// checkMatrix probes and compares with want; it returns the number of probes
// and mismatches.
func checkMatrix(t *testing.T, what string, probes []probe, want func(probe) bool) (n, bad int) {
	t.Helper()
	got := matrix(probes)
	for i, p := range probes {
		if got[i] != want(p) {
			bad++
			t.Errorf("%s: %s: reached %v, want %v", what, p, got[i], want(p))
		}
	}
	t.Logf("%s: %d probes, %d as the policy says, %d mismatches", what, len(probes), len(probes)-bad, bad)
	return len(probes), bad
}

// prefixesOf are a group's hosts' overlay addresses and routed subnets.
func prefixesOf(hosts ...*labHost) []netip.Prefix {
	var out []netip.Prefix
	for _, h := range hosts {
		out = append(out, netip.PrefixFrom(h.overlay4, 32), netip.PrefixFrom(h.overlay6, 128), h.route4, h.route6)
	}
	return out
}

// appDBPolicy is the filter the policy "allow app -> db tcp 5432; deny app ->
// db; deny db -> app; default allow" compiles to, the same on every host.
func appDBPolicy(app, db []*labHost) intent.Filter {
	a, d := prefixesOf(app...), prefixesOf(db...)
	return intent.Filter{Enabled: true, DefaultAccept: true, Rules: []intent.FilterRule{
		{Accept: true, Src: a, Dst: d, Proto: "tcp", Ports: []intent.PortRange{{From: 5432, To: 5432}}, Origin: "policy.rules[0]: allow app -> db tcp 5432"},
		{Src: a, Dst: d, Origin: "policy.rules[1]: deny app -> db"},
		{Src: d, Dst: a, Origin: "policy.rules[2]: deny db -> app"},
	}}
}

// TestPolicyAppDB is issue 13's matrix, on a hub with four spokes in two groups
// and on a four-host mesh, every host with a container on its routed subnet:
// app (s1, s2) may reach db (s3, s4) on tcp/5432 only, and nothing else crosses
// between the groups either way. Every host and container listens on 22 and
// 5432; a control run without the policy reaches everything; with the policy the
// matrix (tcp/5432, tcp/22 and ping, v4 and v6, between the groups' hosts and
// containers) is exactly the policy's. Here the filters are the hand-written
// compiler output, applied by the engine (TestPolicySpecAppDB: from a spec).
func TestPolicyAppDB(t *testing.T) {
	appDBMatrix(t, func(l *lab, h *labHost) {
		if _, err := l.engine(h, "up", intent.Filter{}, false); err != nil {
			t.Fatal(err)
		}
	}, func(l *lab, app, db []*labHost) {
		for _, h := range l.hosts {
			if _, err := l.engine(h, "sync", appDBPolicy(app, db), true); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestPolicySpecAppDB is TestPolicyAppDB from a spec: the policy section
// (groups app and db, "allow app -> db tcp 5432", "deny app -> db", "deny db ->
// app"), compiled and rendered into each host's wg-quick file, brought up and
// synced with the wgnet binary (`sync --no-confirm-policy`).
func TestPolicySpecAppDB(t *testing.T) {
	appDBMatrix(t, func(l *lab, h *labHost) { l.up(h) }, func(l *lab, app, db []*labHost) {
		l.policy = specPolicy(t, map[string][]*labHost{"app": app, "db": db},
			"allow app -> db tcp 5432", "deny app -> db", "deny db -> app")
		l.syncChanged(true)
	})
}

// appDBMatrix runs the app/db matrix on a hub and on a mesh: upHost brings a
// host up without a policy, apply puts the policy in place on every host.
func appDBMatrix(t *testing.T, upHost func(*lab, *labHost), apply func(l *lab, app, db []*labHost)) {
	netnstest.NeedsTool(t, "nftables", "nft")
	for _, mesh := range []bool{false, true} {
		name := map[bool]string{false: "hub", true: "mesh"}[mesh]
		t.Run(name, func(t *testing.T) {
			names := []string{"hub", "s1", "s2", "s3", "s4"}
			if mesh {
				names = []string{"m1", "m2", "m3", "m4"}
			}
			l := buildMeshLab(t, mesh, names...)
			spokes := l.hosts[len(l.hosts)-4:]
			app, db := spokes[:2], spokes[2:]
			for _, h := range l.hosts {
				upHost(l, h)
			}
			var nodes []node
			for _, n := range l.nodes() {
				if n.host != l.hosts[0] || mesh {
					nodes = append(nodes, n)
				}
			}
			listen(t, nodes, 22, 5432)
			group := func(n node) string {
				for _, h := range app {
					if n.host == h {
						return "app"
					}
				}
				return "db"
			}
			var probes []probe
			for _, from := range nodes {
				for _, to := range nodes {
					if from.host == to.host {
						continue
					}
					for _, v6 := range []bool{false, true} {
						for _, port := range []int{5432, 22, 0} {
							probes = append(probes, probe{from, to, v6, port})
						}
					}
				}
			}
			l.warmUp(probes)
			checkMatrix(t, name+" without a policy", probes, func(probe) bool { return true })
			apply(l, app, db)
			checkMatrix(t, name+" with the policy", probes, func(p probe) bool {
				switch {
				case group(p.from) == group(p.to):
					return true
				case group(p.from) == "app":
					return p.port == 5432
				}
				return false
			})
		})
	}
}

// warmUp makes the sessions the probes need (a mesh's peers dial each other at
// once), so that the matrix's one-second probes don't wait for a handshake.
func (l *lab) warmUp(probes []probe) {
	for _, p := range probes {
		if p.port == 0 {
			dst := map[bool]netip.Addr{false: p.to.v4, true: p.to.v6}[p.v6]
			if err := ping(l.t, p.from.ns, dst); err != nil {
				l.t.Logf("warm-up %s: %v", p, err)
			}
		}
	}
}

// specPolicy is a spec policy section: groups of lab hosts, rules, default allow.
func specPolicy(t *testing.T, groups map[string][]*labHost, rules ...string) spec.Policy {
	t.Helper()
	p := spec.Policy{Present: true, Default: spec.Allow}
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		g := spec.Group{Name: name}
		for _, h := range groups[name] {
			g.Members = append(g.Members, spec.Term{Kind: spec.TermName, Name: h.name})
		}
		p.Groups = append(p.Groups, g)
	}
	for _, s := range rules {
		r, err := spec.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

// syncChanged compiles the lab's spec again and runs `wgnet sync` on every
// host whose rendered config changed (with --no-confirm-policy when allowDeny).
// It returns the plans of the syncs that went through and the errors of those
// refused, by host name.
func (l *lab) syncChanged(allowDeny bool) (map[string]*up.Plan, map[string]error) {
	l.t.Helper()
	before := map[string]string{}
	for _, h := range l.hosts {
		b, _ := os.ReadFile(h.conf)
		before[h.name] = string(b)
	}
	l.compile()
	var changed []*labHost
	for _, h := range l.hosts {
		if b, _ := os.ReadFile(h.conf); string(b) != before[h.name] {
			changed = append(changed, h)
		}
	}
	return l.syncHosts(changed, allowDeny)
}

// syncHosts runs `wgnet -o json sync CONF` on each host (see syncChanged).
func (l *lab) syncHosts(hosts []*labHost, allowDeny bool) (map[string]*up.Plan, map[string]error) {
	plans, errs := map[string]*up.Plan{}, map[string]error{}
	for _, h := range hosts {
		args := []string{"-o", "json", "sync", h.conf}
		if allowDeny {
			args = append(args, "--no-confirm-policy")
		}
		out, err := l.wgnetOut(h, args...)
		if err != nil {
			errs[h.name] = err
			continue
		}
		var p up.Plan
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			l.t.Fatalf("wgnet sync -o json on %s: %v", h.name, err)
		}
		plans[h.name] = &p
		rules := 0
		if p.Firewall != nil {
			rules = len(p.Firewall.Rules)
		}
		l.t.Logf("synced %s: %d peer change(s), %d filter rule change(s)", h.name, len(p.Peers), rules)
	}
	return plans, errs
}

// TestPolicySpecArticleCase is the article's case from a spec: one policy edit
// ("deny s2 -> s3's container subnets") and one sync per affected host (every
// host whose rendered config changed). Each sync whose change denies more is
// first refused without --no-confirm-policy, then applied with it; continuous
// pings on the flows still allowed lose nothing across all of them and no
// handshake crosses the underlay; then s2 and its container no longer reach
// s3's container, s1 and s4 and theirs still do, a dry run on every host finds
// nothing to change, and down leaves no wgnet table.
func TestPolicySpecArticleCase(t *testing.T) {
	netnstest.NeedsTool(t, "nftables", "nft")
	netnstest.NeedsTool(t, "wireguard-tools", "wg")
	l := newLab(t, "hub", "s1", "s2", "s3", "s4")
	s1, s2, s3, s4 := l.hosts[1], l.hosts[2], l.hosts[3], l.hosts[4]
	hs := l.handshakeCounter()
	for _, h := range l.hosts {
		l.up(h)
	}
	probes := articleProbes(t, s1, s2, s3, s4)
	l.warmUp(probes)
	checkMatrix(t, "before the policy", probes, func(probe) bool { return true })

	live := l.startLive(hs, 120)
	start := time.Now()
	l.policy = specPolicy(t, nil, "deny s2 -> "+s3.route4.String(), "deny s2 -> "+s3.route6.String())
	plans, refused := l.syncChanged(false)
	var again []*labHost
	for _, h := range l.hosts {
		if err, ok := refused[h.name]; ok {
			if !strings.Contains(err.Error(), "--no-confirm-policy") {
				t.Errorf("sync on %s: %v; want a refusal that names --no-confirm-policy", h.name, err)
			}
			again = append(again, h)
		}
	}
	if len(again) == 0 {
		t.Errorf("no sync was refused, though the policy denies more")
	}
	plans2, errs := l.syncHosts(again, true)
	for name, err := range errs {
		t.Errorf("sync --no-confirm-policy on %s: %v", name, err)
	}
	maps.Copy(plans, plans2)
	t.Logf("%d host(s) synced (%d after a refusal) in %v, while the pings ran (120 each, every 50 ms)",
		len(plans), len(again), time.Since(start).Round(time.Millisecond))
	live.check()
	checkMatrix(t, "with the policy", probes, func(p probe) bool { return p.from.host != s2 })
	for _, h := range l.hosts {
		out, err := l.wgnetOut(h, "sync", "--dry-run", h.conf)
		if err != nil || !strings.Contains(out, "no changes") {
			t.Errorf("dry run on %s after the syncs: %v\n%s", h.name, err, out)
		}
	}
	// A provisional change is rolled back, table and all: the policy taken off
	// s3 with --confirm 2s, never confirmed.
	list := func() string { return s3.ns.Run(t, "nft", "list", "table", "inet", up.FirewallTable(s3.ifname)) }
	table, saved := list(), l.policy
	l.policy = spec.Policy{}
	l.compile()
	if _, err := l.wgnetOut(s3, "sync", "--confirm", "2s", s3.conf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(list(), "chain policy") {
		t.Errorf("the provisional sync left the filter:\n%s", list())
	}
	rolledBack := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !rolledBack; time.Sleep(250 * time.Millisecond) {
		rolledBack = list() == table
	}
	if !rolledBack {
		t.Errorf("the unconfirmed change was not rolled back to the old table:\n%s\nwant\n%s", list(), table)
	}
	l.policy = saved
	l.compile()
	for _, h := range l.hosts {
		if out, err := l.wgnet(h, "down", h.ifname); err != nil {
			t.Errorf("down on %s: %v\n%s", h.name, err, out)
		}
		if out := h.ns.Run(t, "nft", "list", "tables"); strings.Contains(out, "wgnet") {
			t.Errorf("after down on %s:\n%s", h.name, out)
		}
	}
}

// buildMeshLab is newLab, as a mesh (every host dials every other) when mesh.
func buildMeshLab(t *testing.T, mesh bool, names ...string) *lab {
	l := newLab(t, names...)
	if mesh {
		l.mesh = true
		l.compile()
	}
	return l
}

var latestRE = regexp.MustCompile(`(?m)^(\S+)\t(\d+)$`)

// latestHandshakes reads `wg show IF latest-handshakes` on h, by peer key.
func latestHandshakes(t *testing.T, h *labHost) map[string]string {
	t.Helper()
	out := h.ns.Run(t, "wg", "show", h.ifname, "latest-handshakes")
	m := map[string]string{}
	for _, x := range latestRE.FindAllStringSubmatch(out, -1) {
		m[x[1]] = x[2]
	}
	return m
}

// TestPolicyArticleCase is the article's case: s3's container subnet becomes
// unreachable from s2 and its container, and stays reachable from s1 and s4 and
// their containers, by one policy change and one sync of s3 (the host in front
// of the subnet). The sync is refused without a confirmation (or
// --no-confirm-policy); with it, continuous pings on flows still allowed lose
// nothing, no handshake crosses the underlay and s3's latest handshakes stay
// the same (no tunnel touched), an established connection from s2's container
// dies (its conntrack entry deleted), and a plan right after is empty (the
// table read back is what was written). Down removes wgnet's table and leaves
// another one; a second up writes the same table once.
func TestPolicyArticleCase(t *testing.T) {
	netnstest.NeedsTool(t, "nftables", "nft")
	netnstest.NeedsTool(t, "wireguard-tools", "wg")
	l := newLab(t, "hub", "s1", "s2", "s3", "s4")
	hub, s1, s2, s3, s4 := l.hosts[0], l.hosts[1], l.hosts[2], l.hosts[3], l.hosts[4]
	hs := l.handshakeCounter()
	s3.ns.Run(t, "nft", "add", "table", "inet", "other")
	s3.ns.Run(t, "nft", "add", "chain", "inet", "other", "in", "{ type filter hook input priority 0; policy accept; }")
	s3.ns.Run(t, "nft", "add", "rule", "inet", "other", "in", "tcp", "dport", "9", "counter", "accept")
	// Connection tracking runs before the policy, as on a host with Docker or ufw.
	s3.ns.Run(t, "nft", "add", "rule", "inet", "other", "in", "ct", "state", "established", "accept")
	other := s3.ns.Run(t, "nft", "list", "table", "inet", "other")
	for _, h := range []*labHost{hub, s1, s2, s4} {
		l.up(h)
	}
	if _, err := l.engine(s3, "up", intent.Filter{}, false); err != nil {
		t.Fatal(err)
	}
	probes := articleProbes(t, s1, s2, s3, s4)
	// A fresh-clone CI run lost 8 v6 probes to s3's container here, every one
	// the first to cross its path: make the sessions first, as the spec's
	// version of this test does.
	l.warmUp(probes)
	checkMatrix(t, "before the policy", probes, func(probe) bool { return true })

	// An established connection from s2's container, carrying data.
	var srvConn net.Conn
	var ln net.Listener
	if err := s3.ctr.Do(func() (err error) { ln, err = net.Listen("tcp", "[::]:7000"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	var cli net.Conn
	if err := s2.ctr.Do(func() (err error) {
		cli, err = net.DialTimeout("tcp", netip.AddrPortFrom(s3.ctr4, 7000).String(), 3*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	select {
	case srvConn = <-accepted:
		defer srvConn.Close()
	case <-time.After(3 * time.Second):
		t.Fatal("no connection from s2's container")
	}
	carries := func() bool {
		if _, err := cli.Write([]byte("x")); err != nil {
			return false
		}
		srvConn.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		_, err := srvConn.Read(make([]byte, 1))
		return err == nil
	}
	if !carries() {
		t.Fatal("the connection from s2's container carries nothing before the change")
	}

	policy := intent.Filter{Enabled: true, DefaultAccept: true, Rules: []intent.FilterRule{{
		Src: prefixesOf(s2), Dst: []netip.Prefix{s3.route4, s3.route6}, Origin: "policy.rules[0]: deny s2 -> s3-containers",
	}}}
	if _, err := l.engine(s3, "sync", policy, false); err == nil || !strings.Contains(err.Error(), "denies traffic the running filter lets through") {
		t.Fatalf("a sync that denies more, without confirmation: %v; want a refusal", err)
	}
	if out := s3.ns.Run(t, "nft", "list", "table", "inet", up.FirewallTable(s3.ifname)); strings.Contains(out, "chain policy") {
		t.Fatalf("the refused sync wrote a filter:\n%s", out)
	}

	live := l.startLive(hs, 80)
	start := time.Now()
	plan, err := l.engine(s3, "sync", policy, true)
	if err != nil {
		t.Fatal(err)
	}
	syncLog := l.engineLog
	t.Logf("the sync took %v, while the pings ran (%d each, every 50 ms)", time.Since(start).Round(time.Millisecond), 80)
	live.check()
	fw := plan.Firewall
	if fw == nil || len(fw.Rules) != 2 || fw.Rules[0].Op != up.PeerAdd || !fw.DeniesMore || len(plan.Peers)+len(plan.Routes.Add)+len(plan.Routes.Remove) != 0 {
		t.Errorf("the sync's plan: %+v; want two rules added (v4 and v6), nothing else", plan)
	}
	checkMatrix(t, "with the policy", probes, func(p probe) bool { return p.from.host != s2 })
	// The server speaks first (as Go's TCP keepalive would), then the client.
	srvConn.Write([]byte("y"))
	if carries() {
		t.Errorf("the established connection from s2's container still carries data after the deny")
	}
	if m := regexp.MustCompile(`conntrack: (\d+) connection`).FindStringSubmatch(syncLog); m == nil || m[1] == "0" {
		t.Errorf("the sync deleted no conntrack entry (the connection from s2's container had one)")
	} else {
		t.Logf("the sync deleted %s conntrack entries", m[1])
	}
	if plan, err := l.engine(s3, "plan", policy, false); err != nil || !plan.Empty() {
		t.Errorf("a plan right after the sync: %+v, %v; want no change (the table read back is what was written)", plan, err)
	}
	table := s3.ns.Run(t, "nft", "list", "table", "inet", up.FirewallTable(s3.ifname))
	t.Logf("s3's table:\n%s", table)
	for _, want := range []string{
		"ct state established,related accept",
		"ip saddr @r0_saddr ip daddr @r0_daddr drop comment \"policy.rules[0]: deny s2 -> s3-containers\"",
		"ip6 saddr @r1_saddr ip6 daddr @r1_daddr drop",
		fmt.Sprintf("iifname %q jump policy", s3.ifname),
		"elements = { " + s2.route4.String() + ", " + s2.overlay4.String() + " }",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("s3's table has no %q", want)
		}
	}

	if out, err := l.wgnet(s3, "down", s3.ifname); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if out := s3.ns.Run(t, "nft", "list", "tables"); strings.Contains(out, "wgnet") {
		t.Errorf("after down:\n%s", out)
	}
	if got := s3.ns.Run(t, "nft", "list", "table", "inet", "other"); got != other {
		t.Errorf("down changed another table:\n%s\nwas\n%s", got, other)
	}
	if _, err := l.engine(s3, "up", policy, false); err != nil {
		t.Fatal(err)
	}
	if again := s3.ns.Run(t, "nft", "list", "table", "inet", up.FirewallTable(s3.ifname)); again != table {
		t.Errorf("a second up wrote another table:\n%s\nthe first:\n%s", again, table)
	}
	if _, err := l.engine(s3, "sync", intent.Filter{}, false); err != nil {
		t.Fatalf("removing the policy (allows more) needs no confirmation: %v", err)
	}
	checkMatrix(t, "the policy removed", probes, func(probe) bool { return true })
}

// settleHandshakes waits (at most 20 s) until every host's latest handshake is
// at least quiet old. wg reports handshake times in whole seconds, cut down: a
// handshake shown at second N happened before N+1, so that is where quiet
// starts.
func (l *lab) settleHandshakes(quiet time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var newest int64
		for _, h := range l.hosts {
			for _, v := range latestHandshakes(l.t, h) {
				var n int64
				fmt.Sscan(v, &n)
				newest = max(newest, n)
			}
		}
		wait := time.Unix(newest+1, 0).Add(quiet).Sub(time.Now())
		if wait <= 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(wait)
	}
}

// articleProbes listens on port 80 in s3's container and returns the article's
// probes: from s1, s2 and s4 and their containers to it, TCP and ping, v4 and v6.
func articleProbes(t *testing.T, s1, s2, s3, s4 *labHost) []probe {
	target := node{"s3c", s3.ctr, s3.ctr4, s3.ctr6, s3}
	listen(t, []node{target}, 80)
	var probes []probe
	for _, h := range []*labHost{s1, s2, s4} {
		for _, from := range []node{{h.name, h.ns, h.overlay4, h.overlay6, h}, {h.name + "c", h.ctr, h.ctr4, h.ctr6, h}} {
			for _, v6 := range []bool{false, true} {
				probes = append(probes, probe{from, target, v6, 80}, probe{from, target, v6, 0})
			}
		}
	}
	return probes
}

// liveCheck watches the article's allowed flows across a change: continuous
// pings, the underlay's handshake initiations and every host's latest
// handshakes.
type liveCheck struct {
	l        *lab
	hs       *handshakeCounter
	hsBefore int
	before   map[string]map[string]string
	pings    []struct {
		what string
		p    *floodPing
	}
}

// startLive waits for the sessions to settle (an initiation left unanswered
// when two peers dial each other at once is sent again REKEY_TIMEOUT, 5 s,
// plus up to 1/3 s of jitter, later; 7 s leaves room for a loaded machine's
// timers), then starts count pings, every 50 ms,
// on flows the article's policy still allows.
func (l *lab) startLive(hs *handshakeCounter, count int) *liveCheck {
	t := l.t
	s1, s2, s3, s4 := l.hosts[1], l.hosts[2], l.hosts[3], l.hosts[4]
	l.settleHandshakes(7 * time.Second)
	c := &liveCheck{l: l, hs: hs, hsBefore: hs.read(), before: map[string]map[string]string{}}
	for _, h := range l.hosts {
		c.before[h.name] = latestHandshakes(t, h)
	}
	c.pings = []struct {
		what string
		p    *floodPing
	}{
		{"s1's container -> s3's container", startPing(t, s1.ctr, s3.ctr4, count)},
		{"s4 -> s3's container (v6)", startPing(t, s4.ns, s3.ctr6, count)},
		{"s2 -> s3 (the host itself)", startPing(t, s2.ns, s3.overlay4, count)},
		{"s2's container -> s1's container", startPing(t, s2.ctr, s1.ctr4, count)},
	}
	return c
}

// check waits for the pings: none lost, no handshake on the underlay, no
// host's latest handshake changed.
func (c *liveCheck) check() {
	t := c.l.t
	for _, p := range c.pings {
		sent, received := p.p.wait(t)
		t.Logf("%s during the change: %d sent, %d received", p.what, sent, received)
		if sent == 0 || received != sent {
			t.Errorf("%s: %d of %d pings lost across the change", p.what, sent-received, sent)
		}
	}
	if n := c.hs.read() - c.hsBefore; n != 0 {
		t.Errorf("%d handshake initiation(s) crossed the underlay during the change", n)
	}
	for _, h := range c.l.hosts {
		if after := latestHandshakes(t, h); fmt.Sprint(after) != fmt.Sprint(c.before[h.name]) {
			t.Errorf("%s's latest handshakes changed: %v, before %v", h.name, after, c.before[h.name])
		}
	}
}
