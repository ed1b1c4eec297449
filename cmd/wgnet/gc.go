package main

import (
	"os"
	"runtime/debug"
)

// shortLivedGC tunes the garbage collector for a command that runs once and
// exits, on a config that may have tens of thousands of peers (up, sync):
// no collection until the heap reaches 512 MiB, instead of one each time it
// doubles from 4 MiB. A one-peer sync of a 10,000-peer config allocates
// about 40 MiB and spent a fifth of its CPU time collecting it
// (docs/benchmarks.md). GOGC or GOMEMLIMIT in the environment win. Never for
// a process that stays (the daemon, the controller, the agent).
func shortLivedGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(512 << 20)
	debug.SetGCPercent(-1)
}
