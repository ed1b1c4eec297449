package agent_test

import (
	"bufio"
	"context"
	"fmt"
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

// procStat reads a process's CPU time (user+system) and memory.
func procStat(pid int) (cpu time.Duration, rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return cpu, 0, 0, err
	}
	for _, line := range strings.Split(string(s), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return cpu, rss, hwm, nil
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// BenchmarkAgentsFollow (issue 15): WGNET_BENCH_AGENTS agents (default
// 1,000) in this process, no data plane, follow a network on a `wgnet
// controller` process (SQLite, TLS on loopback); an admin adds a host
// WGNET_BENCH_CHANGES times (default 20); each time, the delay from the add
// request to each agent having applied its revision. The baseline, measured
// first in the same run: one agent following the same controller alone.
// Reports p50 and p99 over every agent and change, the slowest agent per
// change, the ratio p99(N)/p99(1), and the controller's CPU and memory.
// WGNET_BENCH_CONTROLLER_PKG builds the controller from another package
// (a baseline build). Run with -benchtime=1x (the setup joins every agent once):
//
//	go test ./internal/agent -run '^$' -bench AgentsFollow -benchtime=1x
func BenchmarkAgentsFollow(b *testing.B) {
	n := envInt("WGNET_BENCH_AGENTS", 1000)
	changes := envInt("WGNET_BENCH_CHANGES", 20)
	topology := os.Getenv("WGNET_BENCH_TOPOLOGY")
	if topology == "" {
		topology = "hub"
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(4*n+256) {
		lim.Cur = min(lim.Max, uint64(4*n+256))
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // the controller child inherits it
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	url, caHash, adminTok, pid := startControllerProcess(b, ctx)
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
	joinStart := time.Now()
	agents := make([]*agent.Agent, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			dir := filepath.Join(root, strconv.Itoa(i))
			opts := agent.Options{Dir: dir, Plane: nullPlane{}, OnApplied: times.record, BackoffMin: 50 * time.Millisecond, BackoffMax: 5 * time.Second}
			a, err := agent.Join(ctx, agent.JoinRequest{Token: tok.Token, Name: fmt.Sprintf("h%04d", i), Endpoint: fmt.Sprintf("198.18.%d.%d:51820", i/250, i%250+1)}, opts)
			if err != nil {
				b.Error(err)
				return
			}
			agents[i] = a
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	b.Logf("%d agents joined in %s", n, time.Since(joinStart).Round(time.Millisecond))
	runCtx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	defer func() { stop(); running.Wait() }()
	startAgents := func(as []*agent.Agent) {
		for _, a := range as {
			running.Add(1)
			go func() { defer running.Done(); a.Run(runCtx) }()
		}
	}
	added := 0
	measure := func(k int) (lat []time.Duration, slowest []time.Duration, cpu time.Duration) {
		cpu0, _, _, _ := procStat(pid)
		for range changes {
			time.Sleep(200 * time.Millisecond) // let every agent be back in its long poll
			added++
			key, _ := wgkey.GeneratePrivate()
			t0 := time.Now()
			res, err := admin.AddHost(ctx, "n", api.Host{Name: fmt.Sprintf("new%03d", added), PublicKey: key.Public().String()})
			if err != nil {
				b.Fatal(err)
			}
			got, err := times.waitAll(res.Revision, k, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			worst := time.Duration(0)
			for _, at := range got[:k] {
				d := at.Sub(t0)
				lat = append(lat, d)
				worst = max(worst, d)
			}
			slowest = append(slowest, worst)
		}
		cpu1, _, _, _ := procStat(pid)
		return lat, slowest, cpu1 - cpu0
	}
	b.ResetTimer()
	// Baseline: one agent alone.
	startAgents(agents[:1])
	cur, _ := admin.Hosts(ctx, "n")
	if _, err := times.waitAll(cur.Network.Revision, 1, time.Minute); err != nil {
		b.Fatal(err)
	}
	base, _, baseCPU := measure(1)
	// All of them.
	startAgents(agents[1:])
	cur, _ = admin.Hosts(ctx, "n")
	if _, err := times.waitAll(cur.Network.Revision, n, 5*time.Minute); err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Second)
	// The controller's CPU with every agent connected and nothing changing
	// (long polls, status reports), over as long as the adds take below.
	idleStart := time.Now()
	idle0, _, _, _ := procStat(pid)
	time.Sleep(10 * time.Second)
	idle1, _, _, _ := procStat(pid)
	idleRate := float64(idle1-idle0) / float64(time.Since(idleStart))
	addsStart := time.Now()
	lat, slowest, cpu := measure(n)
	above := cpu - time.Duration(idleRate*float64(time.Since(addsStart)))
	b.StopTimer()
	_, rss, hwm, _ := procStat(pid)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	b1 := percentile(base, 0.99)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(p99)/float64(b1), "p99/p99-one-agent")
	fmt.Printf("agents follow (%s, %d agents, %d adds): host added -> applied by each agent: p50 %s p99 %s max %s; slowest agent per add: p50 %s max %s\n",
		topology, n, changes, p50.Round(time.Microsecond), p99.Round(time.Microsecond), percentile(lat, 1).Round(time.Microsecond),
		percentile(slowest, 0.5).Round(time.Microsecond), percentile(slowest, 1).Round(time.Microsecond))
	fmt.Printf("baseline, one agent alone: p50 %s p99 %s; ratio p99(%d)/p99(1) = %.1f\n", percentile(base, 0.5).Round(time.Microsecond), b1.Round(time.Microsecond), n, float64(p99)/float64(b1))
	fmt.Printf("controller process: CPU %s over the %d adds with %d agents, %s per add above its idle rate (%.1f%% of a core with every agent connected and nothing changing); %s per add with one agent; RSS %d MiB, peak %d MiB\n",
		cpu.Round(time.Millisecond), changes, n, (above / time.Duration(changes)).Round(time.Millisecond), 100*idleRate, (baseCPU / time.Duration(changes)).Round(time.Millisecond), rss>>20, hwm>>20)
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
