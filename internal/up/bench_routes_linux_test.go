package up_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// BenchmarkUpRoutes measures `wgnet up` of a config whose N peers each need a
// route (1,000, 4,000 and 10,000), next to three baselines from the same run:
// the same routes added by `ip -batch` (iproute2, one netlink request per route)
// through a veth of the namespace; `wgnet up` of the same config with
// Table = off (the device with its N peers, no routes), which tells what of up's
// time the routes cost; and upstream wireguard-go given the same peers
// (bench/wggo-upstream: tun.CreateTUN, device.NewDevice, one IpcSet of the N
// peers, `ip address add`, `ip link set up`, then `ip -batch` of the routes
// through it), what wg-quick with wireguard-go and `wg setconf` does, less
// the socket and wg's parsing. The four are interleaved, in alternating order.
// It reports milliseconds per up for each and their ratios.
//
// $WGNET_BENCH_BIN, when set, is the wgnet binary to measure (an older build,
// for a before figure); otherwise it builds this tree's.
//
// It creates devices in the network namespace it runs in, so it refuses to run
// in the root one: use bench/uproutes.sh, which makes a throw-away namespace.
func BenchmarkUpRoutes(b *testing.B) {
	netnstest.RequireRoot(b)
	if !inOwnNetns() {
		b.Skip("creates interfaces in its network namespace: run it in a throw-away one with bench/uproutes.sh")
	}
	bin := os.Getenv("WGNET_BENCH_BIN")
	if bin == "" {
		bin = wgnet(b)
	}
	veth := "wgr" + netnstest.Unique(6)
	if out, err := exec.Command("ip", "link", "add", veth, "type", "veth", "peer", "name", veth+"p").CombinedOutput(); err != nil {
		b.Fatalf("ip link add: %v: %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
	if out, err := exec.Command("ip", "link", "set", veth, "up").CombinedOutput(); err != nil {
		b.Fatalf("ip link set up: %v: %s", err, out)
	}
	upstream := buildUpstream(b)
	for _, n := range []int{1000, 4000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			env := []string{"WGNET_STATE_DIR=" + filepath.Join(dir, "state")}
			name := "wgu" + netnstest.Unique(8)
			routed, off, uapi := upRoutesConfigs(b, dir, name, n)
			add, del := filepath.Join(dir, "add.batch"), filepath.Join(dir, "del.batch")
			upAdd := filepath.Join(dir, "upstream.batch")
			var adds, dels, upAdds strings.Builder
			for i := range n {
				fmt.Fprintf(&adds, "route add %s dev %s\n", benchRouteDst(i), veth)
				fmt.Fprintf(&dels, "route del %s dev %s\n", benchRouteDst(i), veth)
				fmt.Fprintf(&upAdds, "route add %s dev %s\n", benchRouteDst(i), name)
			}
			for path, text := range map[string]string{add: adds.String(), del: dels.String(), upAdd: upAdds.String()} {
				if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
					b.Fatal(err)
				}
			}
			upDown := func(conf string) time.Duration {
				d := timed(b, env, bin, "up", "--backend", "userspace", conf)
				run(b, env, bin, "down", name)
				return d
			}
			batch := func() time.Duration {
				d := timed(b, env, "ip", "-batch", add)
				run(b, env, "ip", "-batch", del)
				return d
			}
			upstreamUp := func() time.Duration {
				return upstreamUpDown(b, upstream, name, uapi, upAdd, dir)
			}
			var tUp, tIP, tOff, tUpstream time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					tUp += upDown(routed)
					tIP += batch()
					tOff += upDown(off)
					tUpstream += upstreamUp()
				} else {
					tUpstream += upstreamUp()
					tOff += upDown(off)
					tIP += batch()
					tUp += upDown(routed)
				}
			}
			b.StopTimer()
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(tUp), "wgnet-up-ms/op")
			b.ReportMetric(ms(tIP), "ip-batch-ms/op")
			b.ReportMetric(ms(tOff), "wgnet-up-noroutes-ms/op")
			b.ReportMetric(ms(tUp-tOff), "routes-ms/op")
			b.ReportMetric(ms(tUpstream), "upstream-ms/op")
			b.ReportMetric(float64(tUp)/float64(tUpstream), "up/upstream")
			b.Logf("%d routes: wgnet up %.0f ms; upstream wireguard-go set up with the same peers and routes %.0f ms (up/upstream %.2f); ip -batch of the routes alone %.0f ms; wgnet up with Table = off %.0f ms, so the routes cost up %.0f ms (%.2fx ip -batch)",
				n, ms(tUp), ms(tUpstream), float64(tUp)/float64(tUpstream), ms(tIP), ms(tOff), ms(tUp-tOff), float64(tUp-tOff)/float64(tIP))
		})
	}
}

// benchRouteDst is the i-th peer's allowed IP: a /32 outside the interface's
// own prefix, so that each needs a route of its own.
func benchRouteDst(i int) string {
	return fmt.Sprintf("10.%d.%d.%d/32", 100+i>>16, byte(i>>8), byte(i))
}

// upRoutesConfigs writes NAME.conf with n peers each routed benchRouteDst(i),
// and the same with Table = off, in directories of their own, and the same
// key and peers as a UAPI set body for bench/wggo-upstream.
func upRoutesConfigs(b *testing.B, dir, name string, n int) (routed, off, uapi string) {
	priv, err := wgkey.GeneratePrivate()
	if err != nil {
		b.Fatal(err)
	}
	var peers, set strings.Builder
	set.WriteString("private_key=" + priv.Hex() + "\n")
	for i := range n {
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&peers, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\n", k.Public(), benchRouteDst(i))
		fmt.Fprintf(&set, "public_key=%s\nallowed_ip=%s\n", k.Public().Hex(), benchRouteDst(i))
	}
	uapi = filepath.Join(dir, "upstream.uapi")
	if err := os.WriteFile(uapi, []byte(set.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	write := func(sub, extra string) string {
		d := filepath.Join(dir, sub)
		if err := os.MkdirAll(d, 0o700); err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(d, name+".conf")
		text := fmt.Sprintf("[Interface]\nPrivateKey = %s\nAddress = 10.99.0.1/24\nMTU = 1420\n%s", priv.Base64(), extra) + peers.String()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
		return path
	}
	return write("routed", ""), write("off", "Table = off\n"), uapi
}

// buildUpstream builds bench/wggo-upstream (upstream wireguard-go at the
// module's version, driven directly) into a temporary directory.
func buildUpstream(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "wggo-upstream")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/wgnet/wgnet/bench/wggo-upstream").CombinedOutput(); err != nil {
		b.Fatalf("go build wggo-upstream: %v: %s", err, out)
	}
	return bin
}

// upstreamUpDown starts bin on interface name with the peers of uapi, waits
// until it says its link is up, adds the routes of batch through it, and
// returns how long that took; then stops it (its interface goes with it).
func upstreamUpDown(b *testing.B, bin, name, uapi, batch, dir string) time.Duration {
	ready := filepath.Join(dir, "upstream.ready")
	os.Remove(ready)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "-name", name, "-addr", "10.99.0.1/24", "-mtu", "1420", "-uapi", uapi, "-ready", ready)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-exited:
			b.Fatalf("wggo-upstream exited before its link was up: %v\n%s", err, out.String())
		case <-time.After(2 * time.Millisecond):
		}
	}
	run(b, nil, "ip", "-batch", batch)
	d := time.Since(start)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		b.Fatalf("wggo-upstream: %v\n%s", err, out.String())
	}
	return d
}
