package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/agent"
	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// nullPlane is a data plane that applies nothing (the benchmark measures the
// control plane).
type nullPlane struct{}

func (nullPlane) Apply(context.Context, string, *intent.Host) error { return nil }
func (nullPlane) Peers(context.Context, string) ([]device.PeerState, error) {
	return nil, nil
}
func (nullPlane) Remove(context.Context, string) error { return nil }

// applyTimes records when each agent applied each revision.
type applyTimes struct {
	mu   sync.Mutex
	at   map[uint64][]time.Time
	wake chan struct{}
}

func (a *applyTimes) record(rev uint64) {
	now := time.Now()
	a.mu.Lock()
	a.at[rev] = append(a.at[rev], now)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// waitAll waits until n agents applied rev (or a later revision: in a hub
// network a spoke whose state did not change still records the revision).
func (a *applyTimes) waitAll(rev uint64, n int, bound time.Duration) ([]time.Time, error) {
	deadline := time.After(bound)
	for {
		a.mu.Lock()
		got := slices.Clone(a.at[rev])
		a.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-a.wake:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			return got, fmt.Errorf("revision %d: %d of %d agents applied it within %s", rev, len(got), n, bound)
		}
	}
}

// proc reads a process's CPU time and memory from /proc through files opened
// once, before the benchmark opens thousands of connections: a read then
// needs no new descriptor (the 10,000-agent run had read zeros when opening
// /proc failed with every descriptor in use).
type proc struct {
	stat, status *os.File
	buf          []byte
}

func openProc(pid string) (*proc, error) {
	stat, err := os.Open("/proc/" + pid + "/stat")
	if err != nil {
		return nil, err
	}
	status, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		stat.Close()
		return nil, err
	}
	return &proc{stat: stat, status: status, buf: make([]byte, 16<<10)}, nil
}

func (p *proc) Close() { p.stat.Close(); p.status.Close() }

func (p *proc) read(f *os.File) (string, error) {
	n, err := f.ReadAt(p.buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return string(p.buf[:n]), nil
}

// sample is the process's CPU time (user+system), resident memory and its
// peak since the last resetPeak.
func (p *proc) sample() (cpu time.Duration, rss, hwm int64, err error) {
	b, err := p.read(p.stat)
	if err != nil {
		return 0, 0, 0, err
	}
	f := strings.Fields(b[strings.LastIndexByte(b, ')')+2:])
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, 0, fmt.Errorf("/proc stat %q: %v %v", b, err1, err2)
	}
	cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	s, err := p.read(p.status)
	if err != nil {
		return cpu, 0, 0, err
	}
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	if rss == 0 {
		return cpu, 0, 0, fmt.Errorf("/proc status: no VmRSS")
	}
	return cpu, rss, hwm, nil
}

// resetPeak resets the process's peak resident memory (VmHWM), so that a
// phase's peak is its own (Linux clear_refs 5; best effort).
func resetPeak(pid string) { os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0) }

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// BenchmarkAgentsFollow (issue 15): WGNET_BENCH_AGENTS agents (default
// 1,000) in this process, no data plane, follow a network
// (WGNET_BENCH_TOPOLOGY hub or mesh) on a `wgnet controller` process
// (SQLite, TLS on loopback); an admin adds a host WGNET_BENCH_CHANGES times
// (default 20); each time, the delay from the add request to each agent
// having applied its revision (bounded: one minute per add). It runs once
// per protocol of WGNET_BENCH_PROTOCOLS (default "v1,v2": the whole-state
// protocol of one release older first, as the baseline, then per-agent
// deltas), the same agents and controller each time, and before them one
// agent following alone. Reports p50, p99 and max over every agent and
// change, the slowest agent per change, the controller's CPU per add above
// its idle rate, its resident memory (now and the phase's peak) and the
// agents' process CPU per add, with the load average.
// WGNET_BENCH_CONTROLLER_PKG builds the controller from another package
// (a baseline build). Run with -benchtime=1x (the setup joins every agent once):
//
//	go test ./internal/agent -run '^$' -bench AgentsFollow -benchtime=1x
func BenchmarkAgentsFollow(b *testing.B) {
	n := envInt("WGNET_BENCH_AGENTS", 1000)
	changes := envInt("WGNET_BENCH_CHANGES", 20)
	topology := envOr("WGNET_BENCH_TOPOLOGY", "hub")
	// The change each step makes: add (a host added), route (a joined
	// host's routed subnet replaced: the approved routes, in every host's
	// head, and that host's entry in every list change) or endpoint (a
	// joined host's endpoint moved: its entry in every list) or policy (the
	// network's policy replaced, default deny, with one port more or less:
	// every host's packet filter changes, and the controller compiles the
	// network whole, a policy that resolves otherwise).
	kind := envOr("WGNET_BENCH_CHANGE", "add")
	if kind != "add" && kind != "route" && kind != "endpoint" && kind != "policy" {
		b.Fatalf("WGNET_BENCH_CHANGE %q: want add, route, endpoint or policy", kind)
	}
	protocols := strings.Split(envOr("WGNET_BENCH_PROTOCOLS", "v1,v2"), ",")
	// A report takes a second connection while the long poll holds the
	// first: 10,000 agents need 20,000 descriptors on each side, the hard
	// limit here (which even root may not raise in this container). A long
	// WGNET_BENCH_REPORT_EVERY (24h) keeps the agents from reporting at all.
	reportEvery, err := time.ParseDuration(envOr("WGNET_BENCH_REPORT_EVERY", "10s"))
	if err != nil {
		b.Fatal(err)
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(6*n+256) {
		// Two connections an agent (its long poll and a report) on each side,
		// its cache file: the controller child inherits the limit. Root may
		// raise the hard limit too.
		want := uint64(6*n + 256)
		lim.Cur, lim.Max = want, max(lim.Max, want)
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
			syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
			lim.Cur = lim.Max
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	url, caHash, adminTok, pid := startControllerProcess(b, ctx)
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(4*n+256) && reportEvery < time.Hour {
		b.Logf("descriptor limit %d: %d agents with reports need about %d (set WGNET_BENCH_REPORT_EVERY=24h)", lim.Cur, n, 4*n+256)
	}
	ctlProc, err := openProc(strconv.Itoa(pid))
	if err != nil {
		b.Fatal(err)
	}
	defer ctlProc.Close()
	selfProc, err := openProc("self")
	if err != nil {
		b.Fatal(err)
	}
	defer selfProc.Close()
	admin, err := client.New(client.Options{URL: url, Token: adminTok, CAHash: caHash, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.CreateNetwork(ctx, api.CreateNetwork{Name: "n", Topology: topology, Subnets: []string{"10.80.0.0/16"}}); err != nil {
		b.Fatal(err)
	}
	hubKey, _ := wgkey.GeneratePrivate()
	if _, err := admin.AddHost(ctx, "n", api.Host{Name: "hub", PublicKey: hubKey.Public().String(), Endpoint: "192.0.2.1:51820"}); err != nil {
		b.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, "n", api.CreateToken{Uses: n, TTLSeconds: 3600})
	if err != nil {
		b.Fatal(err)
	}
	times := &applyTimes{at: map[uint64][]time.Time{}, wake: make(chan struct{}, 1)}
	// Each real host writes its cache to its own disk; here a thousand share
	// one, so their directories are on tmpfs when there is one.
	root, err := os.MkdirTemp(envOr("WGNET_BENCH_AGENT_DIRS", "/dev/shm"), "wgnet-agents")
	if err != nil {
		root = b.TempDir()
	} else {
		b.Cleanup(func() { os.RemoveAll(root) })
	}
	options := func(i int, versions []string) agent.Options {
		return agent.Options{Dir: filepath.Join(root, strconv.Itoa(i)), Plane: nullPlane{}, OnApplied: times.record,
			BackoffMin: 50 * time.Millisecond, BackoffMax: 5 * time.Second, APIVersions: versions, ReportEvery: reportEvery,
			AddrChanges: noAddrChanges}
	}
	joinStart := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := agent.Join(ctx, agent.JoinRequest{Token: tok.Token, Name: fmt.Sprintf("h%04d", i), Endpoint: fmt.Sprintf("198.18.%d.%d:51820", i/250, i%250+1)}, options(i, nil))
			if err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	b.Logf("%d agents joined in %s", n, time.Since(joinStart).Round(time.Millisecond))
	// start runs agents [from, to) speaking versions until the returned stop.
	var agents []*agent.Agent // the running ones
	start := func(from, to int, versions []string) (stop func()) {
		runCtx, cancel := context.WithCancel(ctx)
		var running sync.WaitGroup
		agents = agents[:0]
		for i := from; i < to; i++ {
			a, err := agent.New(options(i, versions))
			if err != nil {
				b.Fatal(err)
			}
			agents = append(agents, a)
			running.Add(1)
			go func() { defer running.Done(); a.Run(runCtx) }()
		}
		return func() { cancel(); running.Wait() }
	}
	caughtUp := func(k int) {
		cur, err := admin.Hosts(ctx, "n")
		for try := 0; err != nil && try < 10; try++ {
			// 10,000 agents connecting at once may crowd the admin out.
			b.Logf("admin: %v; again in 3 s", err)
			time.Sleep(3 * time.Second)
			cur, err = admin.Hosts(ctx, "n")
		}
		if err != nil {
			b.Fatal(err)
		}
		if _, err := times.waitAll(cur.Network.Revision, k, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	added := 0
	// measure adds a host changes times and times each add until k agents
	// applied it; it stops early (done false) when an add is not applied by
	// all within the bound.
	measure := func(k int) (lat, slowest []time.Duration, cpu, agentsCPU time.Duration, done bool, err error) {
		cpu0, _, _, err := ctlProc.sample()
		if err != nil {
			return
		}
		self0, _, _, _ := selfProc.sample()
		for range changes {
			time.Sleep(200 * time.Millisecond) // let every agent be back in its long poll
			added++
			t0 := time.Now()
			var rev uint64
			switch victim := fmt.Sprintf("h%04d", added%n); kind {
			case "add":
				key, _ := wgkey.GeneratePrivate()
				res, aerr := admin.AddHost(ctx, "n", api.Host{Name: fmt.Sprintf("new%03d", added), PublicKey: key.Public().String()})
				if aerr != nil {
					b.Fatal(aerr)
				}
				rev = res.Revision
			case "route":
				res, aerr := admin.SetHost(ctx, "n", victim, api.SetHost{Routes: []string{fmt.Sprintf("172.%d.%d.0/24", 16+added/250, added%250)}, ReplaceRoutes: true})
				if aerr != nil {
					b.Fatal(aerr)
				}
				rev = res.Revision
			case "policy":
				rules := []string{"allow any -> any tcp 22"}
				if added%2 == 1 {
					rules = append(rules, fmt.Sprintf("allow any -> any tcp %d", 1000+added))
				}
				res, aerr := admin.SetPolicy(ctx, "n", api.Policy{Default: "deny", Rules: rules})
				if aerr != nil {
					b.Fatal(aerr)
				}
				rev = res.Revision
			case "endpoint":
				ep := fmt.Sprintf("198.19.%d.%d:51820", added/250, added%250+1)
				res, aerr := admin.SetHost(ctx, "n", victim, api.SetHost{Endpoint: &ep})
				if aerr != nil {
					b.Fatal(aerr)
				}
				rev = res.Revision
			}
			got, werr := times.waitAll(rev, k, time.Minute)
			worst := time.Duration(0)
			for _, at := range got[:min(k, len(got))] {
				d := at.Sub(t0)
				lat = append(lat, d)
				worst = max(worst, d)
			}
			slowest = append(slowest, worst)
			if werr != nil {
				b.Log(werr)
				break
			}
		}
		cpu1, _, _, err := ctlProc.sample()
		self1, _, _, _ := selfProc.sample()
		return lat, slowest, cpu1 - cpu0, self1 - self0, len(slowest) == changes && len(lat) == changes*k, err
	}
	b.ResetTimer()
	// Baseline: one agent alone, this release's protocol.
	stop := start(0, 1, nil)
	caughtUp(1)
	base, _, baseCPU, _, _, err := measure(1)
	stop()
	if err != nil {
		b.Fatal(err)
	}
	b1 := percentile(base, 0.99)
	fmt.Printf("agents follow (%s, %d agents, %d changes a phase, each: %s): one agent alone: p50 %s p99 %s; controller CPU %s per add\n", topology, n, changes, kind,
		percentile(base, 0.5).Round(time.Microsecond), b1.Round(time.Microsecond), (baseCPU / time.Duration(changes)).Round(time.Millisecond))
	for _, proto := range protocols {
		var versions []string // this release's: deltas
		if proto == api.Version {
			versions = []string{api.Version} // one release older: whole states
		}
		stop := start(0, n, versions)
		caughtUp(n)
		time.Sleep(time.Second)
		// The controller's CPU with every agent connected and nothing
		// changing (long polls, status reports).
		idle0, _, _, err := ctlProc.sample()
		if err != nil {
			b.Fatal(err)
		}
		idleStart := time.Now()
		time.Sleep(10 * time.Second)
		idle1, _, _, _ := ctlProc.sample()
		idleRate := float64(idle1-idle0) / float64(time.Since(idleStart))
		resetPeak(strconv.Itoa(pid))
		load0 := loadavg()
		addsStart := time.Now()
		lat, slowest, cpu, agentsCPU, done, err := measure(n)
		if err != nil {
			b.Fatal(err)
		}
		adds := time.Duration(len(slowest))
		above := cpu - time.Duration(idleRate*float64(time.Since(addsStart)))
		_, rss, hwm, err := ctlProc.sample()
		if err != nil {
			b.Fatal(err)
		}
		mismatches := 0.0 // deltas whose digest differed from the agent's result
		for _, a := range agents {
			mismatches += metric(b, a, "wgnet_agent_delta_digest_mismatches_total")
		}
		stop()
		verdict := "every add applied by every agent"
		if !done {
			verdict = fmt.Sprintf("NOT CONVERGED: an add was not applied by every agent within 1 minute (%d of %d adds measured)", len(slowest), changes)
		}
		p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
		if proto == protocols[len(protocols)-1] {
			b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(p99)/float64(b1), "p99/p99-one-agent")
		}
		fmt.Printf("protocol %s (%s, %d agents): host added -> applied by each agent: p50 %s p99 %s max %s; slowest agent per add: p50 %s max %s; p99/p99(one agent) %.1f; %s\n",
			proto, topology, n, p50.Round(time.Microsecond), p99.Round(time.Microsecond), percentile(lat, 1).Round(time.Microsecond),
			percentile(slowest, 0.5).Round(time.Microsecond), percentile(slowest, 1).Round(time.Microsecond), float64(p99)/float64(b1), verdict)
		fmt.Printf("protocol %s: controller CPU %s per add above its idle rate (%.1f%% of a core idle with every agent connected); RSS %d MiB, peak %d MiB during the adds; agents' process CPU %s per add; load average %s at the start, %s at the end; %.0f digest mismatches\n",
			proto, (above / adds).Round(time.Millisecond), 100*idleRate, rss>>20, hwm>>20, (agentsCPU / adds).Round(time.Millisecond), load0, loadavg(), mismatches)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// startControllerProcess builds wgnet and runs `wgnet controller` on
// 127.0.0.1:0 until ctx ends; it returns its URL, CA pin, admin token and PID.
func startControllerProcess(b *testing.B, ctx context.Context) (url, caHash, token string, pid int) {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "wgnet")
	if out, err := exec.Command("go", "build", "-o", bin, envOr("WGNET_BENCH_CONTROLLER_PKG", "github.com/wgnet/wgnet/cmd/wgnet")).CombinedOutput(); err != nil {
		b.Fatalf("build wgnet: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "controller", "--listen", "127.0.0.1:0", "--data", b.TempDir())
	// Stopped gracefully (a profiling build writes its profile then).
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && strings.HasPrefix(f[0], "wgnet-admin-"):
			token = f[0]
		case len(f) == 3 && f[0] == "ca":
			caHash = f[1]
		case len(f) == 2 && f[0] == "listening":
			go func() {
				for sc.Scan() {
				}
			}()
			return f[1], caHash, token, cmd.Process.Pid
		}
	}
	b.Fatalf("controller did not start: %v", sc.Err())
	return
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// noAddrChanges is Options.AddrChanges for agents that stand for hosts in one
// process, all on loopback: no netlink socket each (10,000 of them would
// press on the descriptors), no change ever.
func noAddrChanges(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}
