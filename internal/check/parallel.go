package check

import (
	"sync"
	"sync/atomic"

	"github.com/wgnet/wgnet/internal/diag"
)

// parallelFor calls f on runs [lo, hi) that together cover [0, n) once each,
// on up to workers goroutines, and returns when all are done; with one worker,
// in order on the caller's goroutine. The runs are small enough (about eight a
// worker) that a worker slowed down by other programs does not hold up the
// rest. f must change only what belongs to its run.
func parallelFor(workers, n int, f func(run, lo, hi int)) {
	runs := min(n, workers*8)
	if workers <= 1 || runs <= 1 {
		if n > 0 {
			f(0, 0, n)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, runs) {
		wg.Go(func() {
			for {
				r := int(next.Add(1)) - 1
				if r >= runs {
					return
				}
				f(r, r*n/runs, (r+1)*n/runs)
			}
		})
	}
	wg.Wait()
}

// eachHost runs f on every host, as parallelFor runs it: each run of hosts
// with a copy of n whose findings are its own, appended to n's in host order
// when all are done, so the findings are those of one run in order, in the
// same order. f(own, h) reports through own, may change only h and what
// belongs to it, and reads what no other f changes.
func (n *network) eachHost(f func(own *network, h *host)) {
	parts := make([]diag.List, min(len(n.hosts), max(n.workers, 1)*8))
	parallelFor(n.workers, len(n.hosts), func(run, lo, hi int) {
		own := *n
		own.findings = nil
		for _, h := range n.hosts[lo:hi] {
			f(&own, h)
		}
		parts[run] = own.findings
	})
	for _, p := range parts {
		n.findings = append(n.findings, p...)
	}
}
