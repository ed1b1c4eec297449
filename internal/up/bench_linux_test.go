package up_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// benchPeers is the size of the interface BenchmarkSyncOnePeerOf10000 changes.
const benchPeers = 10000

// BenchmarkSyncOnePeerOf10000 measures a one-peer change (a prefix added to, or
// removed from, one peer) on an interface with 10,000 peers, run by wgnet's own
// userspace daemon: `wgnet sync` (a process that reads the running device and the
// host back, diffs, applies, reads back again to verify, and writes its state
// file) next to the stock `wg syncconf` doing the same change on the same
// interface, alternating directions so that both do adds and removes. It reports
// milliseconds per change for each, their ratio, and how many peers each change
// touched, counted independently of wgnet: on a second, in-process wireguard-go
// whose verbose log names every peer a UAPI set touches.
//
// $WGNET_BENCH_BEFORE_BIN, when set, is an older wgnet binary whose sync is
// timed too, on the same interface, interleaved with the others: a before figure
// from the same run.
//
// It creates devices in the network namespace it runs in, so it refuses to run
// in the root one: use bench/sync10k.sh, which makes a throw-away namespace.
func BenchmarkSyncOnePeerOf10000(b *testing.B) {
	netnstest.RequireRoot(b)
	if !inOwnNetns() {
		b.Skip("creates interfaces in its network namespace: run it in a throw-away one with bench/sync10k.sh")
	}
	if _, err := exec.LookPath("wg"); err != nil {
		b.Skip("needs wg (wireguard-tools) for the baseline")
	}
	bin := wgnet(b)
	dir := b.TempDir()
	stateDir := filepath.Join(dir, "state")
	cfg := newBenchConfigs(b, dir)

	// Peers touched, counted by wireguard-go itself.
	touchedWgnet, touchedSyncconf := countTouched(b, bin, stateDir, cfg)

	// Timing, on wgnet's background daemon as `wgnet up` runs it.
	name := "wgb" + netnstest.Unique(8)
	a, bb := cfg.write(b, name, "a"), cfg.write(b, name, "b")
	env := []string{"WGNET_STATE_DIR=" + stateDir}
	start := time.Now()
	run(b, env, bin, "up", "--backend", "userspace", a.full)
	b.Logf("wgnet up of %d peers: %v", benchPeers, time.Since(start).Round(time.Millisecond))
	b.Cleanup(func() { runErr(env, bin, "down", name) })
	// The first sync after up settles nothing but writes the state once.
	run(b, env, bin, "sync", name, a.full)

	before := os.Getenv("WGNET_BENCH_BEFORE_BIN")
	var wgnetTime, syncconfTime, beforeTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if before != "" {
			// Over and back, so that the others start from A again.
			to, back := bb, a
			if i%2 == 1 {
				to, back = a, bb
			}
			beforeTime += timed(b, env, before, "sync", name, to.full)
			beforeTime += timed(b, env, before, "sync", name, back.full)
		}
		// Even: wgnet A->B, wg B->A. Odd: wg A->B, wgnet B->A.
		to, back := bb, a
		if i%2 == 1 {
			to, back = a, bb
		}
		if i%2 == 0 {
			wgnetTime += timed(b, env, bin, "sync", name, to.full)
			syncconfTime += timed(b, env, "wg", "syncconf", name, back.stripped)
		} else {
			syncconfTime += timed(b, env, "wg", "syncconf", name, back.stripped)
			wgnetTime += timed(b, env, bin, "sync", name, to.full)
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(wgnetTime), "wgnet-sync-ms/op")
	b.ReportMetric(ms(syncconfTime), "wg-syncconf-ms/op")
	b.ReportMetric(float64(syncconfTime)/float64(wgnetTime), "syncconf/sync")
	b.ReportMetric(float64(touchedWgnet), "peers-touched-wgnet")
	b.ReportMetric(float64(touchedSyncconf), "peers-touched-syncconf")
	if before != "" {
		b.ReportMetric(ms(beforeTime)/2, "before-sync-ms/op")
		b.ReportMetric(float64(syncconfTime)/(float64(beforeTime)/2), "syncconf/before")
		b.Logf("before (%s): sync %.1f ms (syncconf/sync %.2f)", before, ms(beforeTime)/2, float64(syncconfTime)/(float64(beforeTime)/2))
	}
	b.Logf("%d peers, one-peer change: wgnet sync %.1f ms, wg syncconf %.1f ms (syncconf/sync %.2f); peers touched: wgnet %d, wg syncconf %d",
		benchPeers, ms(wgnetTime), ms(syncconfTime), float64(syncconfTime)/float64(wgnetTime), touchedWgnet, touchedSyncconf)
}

// inOwnNetns reports whether this process runs in the throw-away network
// namespace named by $WGNET_BENCH_NETNS (which bench/sync10k.sh creates as
// /run/netns/NAME), comparing the namespace files' inodes like `ip netns identify`.
func inOwnNetns() bool {
	name := os.Getenv("WGNET_BENCH_NETNS")
	if name == "" || strings.Contains(name, "/") {
		return false
	}
	var self, named syscall.Stat_t
	if syscall.Stat("/proc/self/ns/net", &self) != nil || syscall.Stat("/run/netns/"+name, &named) != nil {
		return false
	}
	return self.Dev == named.Dev && self.Ino == named.Ino
}

// benchConfigs are two configs of one interface with benchPeers peers that differ
// in one peer: B gives peer benchPeers/2 one more prefix (inside the interface's
// own /8, so that neither tool has a route to add: wg does no routes).
type benchConfigs struct {
	priv  wgkey.Private
	peers []wgkey.Key
	dir   string
}

type benchFiles struct{ full, stripped string }

func newBenchConfigs(b *testing.B, dir string) *benchConfigs {
	priv, err := wgkey.GeneratePrivate()
	if err != nil {
		b.Fatal(err)
	}
	c := &benchConfigs{priv: priv, dir: dir}
	for range benchPeers {
		var k wgkey.Key
		if _, err := rand.Read(k[:]); err != nil {
			b.Fatal(err)
		}
		c.peers = append(c.peers, k)
	}
	return c
}

func (c *benchConfigs) allowed(i int, variant string) []netip.Prefix {
	n := i + 2 // 10.0.0.2 and up; 10.0.0.1 is the interface's
	p := []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), 32)}
	if variant == "b" && i == benchPeers/2 {
		p = append(p, netip.MustParsePrefix("10.200.0.0/24"))
	}
	return p
}

// write renders the variant as NAME.conf (wg-quick form, for wgnet) and
// NAME.wg (stripped, for wg syncconf) in a directory of its own.
func (c *benchConfigs) write(b *testing.B, name, variant string) benchFiles {
	d := filepath.Join(c.dir, variant)
	if err := os.MkdirAll(d, 0o700); err != nil {
		b.Fatal(err)
	}
	var peers strings.Builder
	for i, k := range c.peers {
		var ips []string
		for _, p := range c.allowed(i, variant) {
			ips = append(ips, p.String())
		}
		fmt.Fprintf(&peers, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\n", k, strings.Join(ips, ", "))
	}
	iface := fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = 51820\n", c.priv.Base64())
	f := benchFiles{full: filepath.Join(d, name+".conf"), stripped: filepath.Join(d, name+".wg")}
	for path, text := range map[string]string{
		f.full:     iface + "Address = 10.0.0.1/8\nMTU = 1420\n" + peers.String(),
		f.stripped: iface + peers.String(),
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return f
}

// countTouched makes the one-peer change once with each tool on an in-process
// wireguard-go whose verbose log is read: every UAPI line about a peer names it.
func countTouched(b *testing.B, bin, stateDir string, cfg *benchConfigs) (wgnetN, syncconfN int) {
	name := "wgc" + netnstest.Unique(8)
	counter := &peerCounter{}
	u, err := device.NewUserspace(name, device.UserspaceOptions{UAPI: true, Logger: slog.New(counter)})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	port := 51820
	conf := device.Config{PrivateKey: &cfg.priv, ListenPort: &port, ReplacePeers: true}
	for i, k := range cfg.peers {
		conf.Peers = append(conf.Peers, device.PeerConfig{PublicKey: k, AllowedIPs: cfg.allowed(i, "a")})
	}
	if err := u.Configure(conf); err != nil {
		b.Fatal(err)
	}
	h := hostnet.New()
	if err := h.AddAddr(name, netip.MustParsePrefix("10.0.0.1/8")); err != nil {
		b.Fatal(err)
	}
	if err := h.SetUp(name, true); err != nil {
		b.Fatal(err)
	}
	a, bb := cfg.write(b, name, "a"), cfg.write(b, name, "b")
	env := []string{"WGNET_STATE_DIR=" + stateDir}
	counter.start()
	run(b, env, bin, "sync", name, bb.full) // adopts it, too
	wgnetN = counter.stop()
	out := run(b, env, bin, "-o", "json", "sync", "--dry-run", name, a.full)
	var plan struct{ Peers []json.RawMessage }
	if err := json.Unmarshal([]byte(out), &plan); err != nil || len(plan.Peers) != 1 {
		b.Fatalf("plan back to A: want one peer: %v\n%s", err, out)
	}
	counter.start()
	run(b, env, "wg", "syncconf", name, a.stripped)
	syncconfN = counter.stop()
	if err := os.Remove(filepath.Join(stateDir, name+".json")); err != nil {
		b.Fatal(err)
	}
	return wgnetN, syncconfN
}

// peerCounter is a slog handler that collects the peers named in wireguard-go's
// "peer(…) - UAPI: ..." lines while counting.
type peerCounter struct {
	mu    sync.Mutex
	on    bool
	peers map[string]bool
}

func (c *peerCounter) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on, c.peers = true, map[string]bool{}
}

func (c *peerCounter) stop() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = false
	return len(c.peers)
}

func (c *peerCounter) Enabled(context.Context, slog.Level) bool { return true }

func (c *peerCounter) Handle(_ context.Context, r slog.Record) error {
	peer, rest, ok := strings.Cut(r.Message, " - UAPI: ")
	// peer(AAAA…AAAA) is wireguard-go's placeholder for lines about no peer (the
	// device's own key, a peer just removed): not a peer.
	if !ok || !strings.HasPrefix(peer, "peer(") || peer == "peer(AAAA…AAAA)" || rest == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on {
		c.peers[peer] = true
	}
	return nil
}

func (c *peerCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *peerCounter) WithGroup(string) slog.Handler      { return c }

func run(b *testing.B, env []string, argv ...string) string {
	b.Helper()
	out, err := runErr(env, argv...)
	if err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

func runErr(env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}

func timed(b *testing.B, env []string, argv ...string) time.Duration {
	b.Helper()
	start := time.Now()
	run(b, env, argv...)
	return time.Since(start)
}
