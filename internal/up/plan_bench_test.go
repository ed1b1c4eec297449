package up

import (
	"context"
	"testing"
)

// BenchmarkMakePlan10000 checks a config of 10,000 peers as every up and sync
// does first.
func BenchmarkMakePlan10000(b *testing.B) {
	r := req("wg0", routesConf(b, 10000), false, false)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := makePlan(context.Background(), r, &Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
