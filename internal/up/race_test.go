package up

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/hostnet"
)

var (
	raceSeed  = flag.Uint64("engine-seed", 0, "seed of TestEngineRaces (0: from the clock)")
	raceIters = flag.Int("engine-iterations", 200, "iterations of TestEngineRaces")
)

// raceOps are what the goroutines of TestEngineRaces do, at random.
var raceOps = []string{"up", "down", "sync", "sync-confirm", "reconcile", "reconcile-confirm", "tryup", "confirm", "rollback"}

// TestEngineRaces runs random interleavings of Up, Down, Sync, Reconcile,
// TryUp, ConfirmChange, Rollback and the confirmation timer (GoroutineTimer)
// from several goroutines on the fakes, with small random changes of the
// desired host, and checks after each iteration that the device, the host and
// the state record agree (checkEngineInvariants). It is seeded: a failure
// names the seed, and -engine-seed replays it.
func TestEngineRaces(t *testing.T) {
	seed := *raceSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	iters := *raceIters
	if testing.Short() {
		iters = 20
	}
	t.Logf("seed %d (replay with -engine-seed=%d), %d iterations", seed, seed, iters)
	// Iterations are independent (each has its own host, devices and state
	// directory); a few run at once, since most of the time goes in timers.
	const parallel = 8
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ops := map[string]int{}
	for i := range iters {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n := raceIteration(t, seed, i)
			mu.Lock()
			for k, v := range n {
				ops[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("operations (ok/refused): %v", ops)
	if t.Failed() {
		t.Logf("seed %d: replay with go test ./internal/up -run TestEngineRaces -engine-seed=%d", seed, seed)
	}
}

// raceHost is a random small change of hubConfig: each of engineEdits with
// probability 1/3.
func raceHost(rng *rand.Rand) Request {
	c, fwd := hubConfig(), true
	for _, e := range engineEdits {
		if rng.IntN(3) == 0 {
			e.edit(c, &fwd)
		}
	}
	return req("wg0", c, fwd, fwd)
}

// raceIteration runs one iteration and returns how many operations of each
// kind succeeded or were refused.
func raceIteration(t *testing.T, seed uint64, iter int) map[string]int {
	rng := rand.New(rand.NewPCG(seed, uint64(iter)))
	fail := func(format string, a ...any) {
		t.Errorf("seed %d iteration %d: %s", seed, iter, fmt.Sprintf(format, a...))
	}
	fx := newEngineFx(t)
	errs := make(chan error, 64)
	timer := &GoroutineTimer{Options: fx.opts, Errs: errs}
	defer timer.Close()

	const goroutines, perG = 4, 3
	type job struct {
		op      string
		r       Request
		within  time.Duration
		startIn time.Duration
	}
	var jobs [goroutines][perG]job
	for g := range goroutines {
		for k := range perG {
			jobs[g][k] = job{
				op:      raceOps[rng.IntN(len(raceOps))],
				r:       raceHost(rng),
				within:  time.Duration(5+rng.IntN(60)) * time.Millisecond,
				startIn: time.Duration(rng.IntN(5)) * time.Millisecond,
			}
		}
	}
	counts := map[string]int{}
	var mu sync.Mutex // guards counts
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, j := range jobs[g] {
				time.Sleep(j.startIn)
				opts := fx.opts
				opts.Confirm = Confirm{Within: j.within, Timer: timer}
				err := raceOp(j.op, j.r, opts)
				outcome := "ok"
				switch {
				case err == nil:
				case refusal(err):
					outcome = "refused"
				default:
					fail("%s: unexpected error: %v", j.op, err)
					outcome = "failed"
				}
				mu.Lock()
				counts[j.op+"/"+outcome]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	checkEngineInvariants(fx, timer, fail)
	// Let the changes still pending reach their deadline: the timers roll them
	// back; the record and the system agree again after.
	if !waitFor(5*time.Second, func() bool {
		_, err := LoadPending(fx.opts.StateDir, "wg0")
		return errors.Is(err, ErrNoPending)
	}) {
		fail("a change is still pending 5 s after its deadline")
	}
	checkEngineInvariants(fx, timer, fail)
	timer.Close()
	close(errs)
	for err := range errs {
		fail("timer: %v", err)
	}
	if t.Failed() && testing.Verbose() {
		t.Logf("seed %d iteration %d log:\n%s", seed, iter, fx.log.String())
	}
	return counts
}

func raceOp(op string, r Request, opts SyncOptions) error {
	ctx := context.Background()
	switch op {
	case "up":
		_, err := Up(ctx, r, opts.Options)
		return err
	case "down":
		return Down(ctx, r.Name, opts.Options)
	case "sync", "sync-confirm":
		if op == "sync" {
			opts.Confirm = Confirm{}
		}
		_, err := Sync(ctx, r, opts)
		return err
	case "reconcile", "reconcile-confirm":
		if op == "reconcile" {
			opts.Confirm = Confirm{}
		}
		_, err := Reconcile(ctx, r, opts)
		return err
	case "tryup":
		_, _, err := TryUp(ctx, r, opts)
		return err
	case "confirm":
		_, err := ConfirmChange(r.Name, opts)
		return err
	case "rollback":
		_, err := Rollback(ctx, r.Name, opts)
		return err
	}
	panic(op)
}

// refusal reports whether err is the engine declining for the state the
// interface is in (already up, not up, a change pending, nothing pending),
// which is what concurrent callers must expect; anything else is a failure.
func refusal(err error) bool {
	var se *StateError
	return errors.As(err, &se) || errors.Is(err, ErrNoPending) ||
		strings.Contains(err.Error(), "is waiting for confirmation")
}

// checkEngineInvariants checks, holding wg0's lock, that the device, the host
// and the state record agree: with a state file the device exists and the host
// has exactly the recorded addresses, routes, sysctls and firewall table;
// without one there is no device and the host is as before; and a pending
// change has a live timer.
func checkEngineInvariants(fx *engineFx, timer *GoroutineTimer, fail func(string, ...any)) {
	unlock, err := lockInterface(fx.opts.StateDir, "wg0")
	if err != nil {
		fail("lock: %v", err)
		return
	}
	defer unlock()
	if pf, err := loadPendingFile(fx.opts.StateDir, "wg0"); err == nil {
		timer.mu.Lock()
		_, alive := timer.cancels[pf.ID]
		timer.mu.Unlock()
		if !alive {
			fail("pending change %s (%s) without a live timer (rollback error %q)", pf.ID, pf.Command, pf.RollbackError)
		}
	} else if !errors.Is(err, ErrNoPending) {
		fail("pending: %v", err)
	}
	snap := fx.host.Snapshot()
	_, dev := fx.devs.dev("wg0")
	st, err := LoadState(fx.opts.StateDir, "wg0")
	if errors.Is(err, os.ErrNotExist) {
		if dev {
			fail("no state file, but the device exists")
		}
		if diff := cmp.Diff(fx.base, snap, worldOpts...); diff != "" {
			fail("no state file, but the host is not as before (-before +now):\n%s", diff)
		}
		return
	}
	if err != nil {
		fail("state: %v", err)
		return
	}
	if !dev || !st.Complete {
		fail("state file (complete %v), device %v", st.Complete, dev)
		return
	}
	if diff := cmp.Diff(sortedAddrs(st.Addresses), sortedAddrs(snap.Addrs["wg0"]), cmpOpts...); diff != "" {
		fail("addresses (-recorded +host):\n%s", diff)
	}
	kernel := map[netip.Prefix]bool{}
	for _, a := range snap.Addrs["wg0"] {
		if !hostPrefix(a) {
			kernel[a.Masked()] = true
		}
	}
	var routes []hostnet.Route
	for _, r := range snap.Routes {
		if r.Dev == "wg0" && !(r.Table == 0 && kernel[r.Dst]) {
			routes = append(routes, r)
		}
	}
	if diff := cmp.Diff(sortedRoutes(st.Routes), sortedRoutes(routes), cmpOpts...); diff != "" {
		fail("routes (-recorded +host):\n%s", diff)
	}
	// Every sysctl is as recorded, or as it was before the interface.
	want := map[string]string{}
	for k, v := range fx.base.Sysctls {
		want[k] = v
	}
	for _, k := range perLinkSysctlsOf("wg0") {
		want[k] = "0"
	}
	want["net/ipv6/conf/wg0/accept_ra"] = fx.base.Sysctls["net/ipv6/conf/default/accept_ra"]
	for _, c := range st.Sysctls {
		want[c.Key] = c.New
	}
	for k, v := range snap.Sysctls {
		if w, ok := want[k]; ok && w != v {
			fail("sysctl %s = %s, want %s (recorded %v)", k, v, w, st.Sysctls)
		}
	}
	var tables []string
	for n := range snap.Firewalls {
		tables = append(tables, n)
	}
	var recorded []string
	if st.Firewall != "" {
		recorded = []string{st.Firewall}
	}
	if !slices.Equal(tables, recorded) {
		fail("firewall tables %v, recorded %v", tables, recorded)
	}
}

// perLinkSysctlsOf are the forwarding sysctls a link is created with (as in
// hostnettest), which are 0 for a new link on the fake.
func perLinkSysctlsOf(name string) []string {
	return []string{
		"net/ipv4/conf/" + name + "/forwarding",
		"net/ipv6/conf/" + name + "/forwarding",
		"net/ipv6/conf/" + name + "/force_forwarding",
	}
}
