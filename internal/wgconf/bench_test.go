package wgconf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// BenchmarkParse10k parses a hub config with 10,000 peers, the size `sync`
// reads in bench/sync10k.sh.
func BenchmarkParse10k(b *testing.B) {
	var sb strings.Builder
	k, _ := wgkey.GeneratePrivate()
	fmt.Fprintf(&sb, "[Interface]\nPrivateKey = %s\nListenPort = 51820\nAddress = 10.0.0.1/16\n", k.Base64())
	for i := 0; i < 10000; i++ {
		p, _ := wgkey.GeneratePrivate()
		fmt.Fprintf(&sb, "\n# h%d\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.0.%d.%d/32, 10.%d.%d.0/24\nEndpoint = 198.18.%d.%d:51820\n",
			i, p.Public(), i/250, i%250+1, 100+i/250, i%250, i/250, i%250+1)
	}
	src := []byte(sb.String())
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Parse("big.conf", src); err != nil {
			b.Fatal(err)
		}
	}
}
