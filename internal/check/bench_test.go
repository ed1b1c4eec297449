package check

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/wgconf"
)

// meshConfigs returns the configs of an n-host full mesh, parsed from text as
// `check` reads them: host i is 10.0.i/16, dialled at 198.18.i:51820.
func meshConfigs(tb testing.TB, n int) []*wgconf.Config {
	tb.Helper()
	addr := func(i int) string { return fmt.Sprintf("%d.%d", i/250, i%250+1) }
	pubs := make([]string, n)
	for i := range pubs {
		pubs[i] = testPub(fmt.Sprint("h", i)).String()
	}
	cfgs := make([]*wgconf.Config, n)
	for i := range cfgs {
		var b strings.Builder
		fmt.Fprintf(&b, "[Interface]\nPrivateKey = %s\nAddress = 10.0.%s/16\nListenPort = 51820\n", testPriv(fmt.Sprint("h", i)).Base64(), addr(i))
		for j := range n {
			if j != i {
				fmt.Fprintf(&b, "\n# h%d\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.0.%s/32\nEndpoint = 198.18.%s:51820\n", j, pubs[j], addr(j), addr(j))
			}
		}
		c, err := wgconf.Parse(fmt.Sprintf("h%d.conf", i), []byte(b.String()))
		if err != nil {
			tb.Fatal(err)
		}
		cfgs[i] = c
	}
	return cfgs
}

// onePeerConfig returns a config whose one peer has n AllowedIPs: n /24s in
// 10.0.0.0/8, and, when nested, 10.0.0.0/8 itself on another peer (n overlaps).
func onePeerConfig(tb testing.TB, n int, nested bool) *wgconf.Config {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[Interface]\nPrivateKey = %s\nListenPort = 51820\n\n[Peer]\nPublicKey = %s\n", testPriv("a").Base64(), testPub("b"))
	for i := range n {
		fmt.Fprintf(&b, "AllowedIPs = 10.%d.%d.0/24\n", i>>8&0xff, i&0xff)
	}
	if nested {
		fmt.Fprintf(&b, "\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.0.0.0/8\n", testPub("c"))
	}
	c, err := wgconf.Parse("a.conf", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkConfigs checks the two cases of issue 12 (a 1,000-host mesh took
// 31 s, one peer with 65,536 AllowedIPs 26 s) and, as the baseline measured in
// the same run, the pairwise overlap test that took that time, on sizes it can
// finish: compare ns/op of overlap/prefixset-N with overlap/pairwise-N. The
// two cases report their CPU time too (cpu-s/op, user and system, the whole
// process): on a shared machine it moves much less than wall time.
func BenchmarkConfigs(b *testing.B) {
	mesh := meshConfigs(b, 1000)
	b.Run("mesh-1000", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			Configs(Input{Configs: mesh})
		}
		b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op")
	})
	one := onePeerConfig(b, 1<<16, false)
	b.Run("one-peer-65536", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			Configs(Input{Configs: []*wgconf.Config{one}})
		}
		b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op")
	})
	for _, size := range []int{1024, 4096} {
		cfg := onePeerConfig(b, size, true)
		b.Run(fmt.Sprintf("overlap/prefixset-%d", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n := newNetwork(Input{Configs: []*wgconf.Config{cfg}})
				n.checkAllowedIPs(nil)
			}
		})
		b.Run(fmt.Sprintf("overlap/pairwise-%d", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n := newNetwork(Input{Configs: []*wgconf.Config{cfg}})
				n.checkAllowedIPsPairwise(nil)
			}
		})
	}
}
