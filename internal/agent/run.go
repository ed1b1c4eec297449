package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Run brings the interface up from the cached state (so the network is up
// before, and without, any controller), then follows the change log until ctx
// is done, applying each new desired state and reporting the peers. A
// controller that does not answer changes nothing on the host: the agent
// tries the next URL it knows after a backoff with jitter, and catches up
// when one answers. It returns nil when ctx is done.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	cached := a.applied
	a.mu.Unlock()
	if cached != nil {
		if err := a.apply(ctx, cached, false); err != nil {
			a.opts.Log.Error("cached state not applied", "revision", cached.Revision, "err", err)
		} else {
			a.opts.Log.Info("up from the cached state", "revision", cached.Revision)
		}
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); a.reportLoop(ctx) }()
	go func() { defer wg.Done(); a.houseLoop(ctx) }()
	go func() { defer wg.Done(); a.watchPollAddr(ctx) }()
	a.follow(ctx)
	wg.Wait()
	a.mu.Lock()
	for _, c := range a.clients {
		c.Close()
	}
	a.mu.Unlock()
	return nil
}

// follow is the loop of long polls: a snapshot of the desired state first
// (and whenever the log says something changed, or the store is behind the
// agent), then the change log from the revision followed.
func (a *Agent) follow(ctx context.Context) {
	snapshot, fails := true, 0
	var fresh time.Time // the last whole state taken
	for ctx.Err() == nil {
		c, u, err := a.client()
		// A whole state now and then, though deltas keep coming: a state
		// built from deltas equals the controller's whole one when the same
		// compiler made both (controllers of two releases during an upgrade
		// may differ); this bounds how long a difference can last.
		if time.Since(fresh) > a.opts.SnapshotEvery {
			snapshot = true
		}
		if err == nil && snapshot {
			if err = a.snapshot(ctx, c); err == nil {
				fresh = time.Now().Add(-rand.N(a.opts.SnapshotEvery/4 + 1)) // spread agents out
			}
		}
		if err == nil {
			snapshot, err = a.poll(ctx, c)
		}
		if errors.Is(err, errAddrGone) {
			continue // at once, from an address the host has
		}
		if err == nil {
			if fails > 0 {
				a.opts.Log.Info("controller reachable again", "controller", u, "after_failures", fails)
			}
			fails = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		fails++
		wait := a.backoff(fails)
		var ce *client.Error
		switch {
		case errors.Is(err, errPlane):
			a.opts.Log.Error("desired state not applied; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
		case errors.As(err, &ce) && ce.Status == 401:
			a.failed()
			a.opts.Log.Error("the controller refuses this host's credential (removed from the network?); the interface stays as it is", "controller", u, "err", err)
			wait = a.opts.BackoffMax
		default:
			a.failed()
			level := slog.LevelDebug // said once per outage
			if fails == 1 {
				level = slog.LevelWarn
			}
			a.opts.Log.Log(ctx, level, "controller unreachable; the network stays as it is", "controller", u, "err", err, "retry_in", wait.Round(time.Millisecond))
		}
		if sleep(ctx, wait) != nil {
			return
		}
	}
}

// errPlane marks a failure of the data plane, not of the controller.
var errPlane = errors.New("data plane")

// snapshot fetches and applies the desired state.
func (a *Agent) snapshot(ctx context.Context, c *client.Client) error {
	st, err := c.AgentState(ctx)
	if err != nil {
		return err
	}
	a.answered()
	a.m.wholes.Inc()
	return a.takeWhole(ctx, &st)
}

// take applies a desired state received from a controller: a refused one is
// logged and counted, and the interface stays as it is.
func (a *Agent) take(ctx context.Context, st *held) error {
	a.mu.Lock()
	a.learn(st.URLs)
	followed := a.followed
	a.mu.Unlock()
	if st.Revision < followed {
		a.opts.Log.Warn("the controller's store is behind this agent (restored from a backup?): taking its state", "store", st.Revision, "agent", followed)
	}
	err := a.apply(ctx, st, true)
	switch {
	case errors.Is(err, ErrRefused):
		a.m.refused.Inc()
		a.opts.Log.Error("desired state refused; the interface stays as it is", "err", err)
		a.mu.Lock()
		a.followed = st.Revision
		a.mu.Unlock()
		return nil
	case err != nil:
		return fmt.Errorf("%w: %v", errPlane, err)
	}
	return nil
}

// poll waits for the change log to pass the revision followed, and applies
// the desired state the answer carries when it moved, whole or as a delta
// onto the state the agent has; it says whether a snapshot is still needed
// (a controller that sent no state, or a delta that does not apply here).
func (a *Agent) poll(ctx context.Context, c *client.Client) (bool, error) {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pctx = httptrace.WithClientTrace(pctx, &httptrace.ClientTrace{GotConn: a.gotPollConn})
	a.mu.Lock()
	since := a.followed
	a.pollCancel = cancel
	a.mu.Unlock()
	ch, err := c.AgentChanges(pctx, since, a.opts.Wait, true)
	a.mu.Lock()
	a.pollLocal, a.pollCancel = netip.Addr{}, nil
	a.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(pctx), errAddrGone) {
			c.Close() // idle connections may be from the lost address too
			return false, errAddrGone
		}
		return false, err
	}
	a.answered()
	// Something changed, or the store is behind the agent (a restore): either
	// way the desired state is taken whole.
	if len(ch.Changes) == 0 && ch.Revision == since {
		return false, nil
	}
	if ch.Delta != nil {
		a.mu.Lock()
		base := a.applied
		st, err := base.apply(ch.Delta)
		a.mu.Unlock()
		if err != nil {
			a.opts.Log.Info("delta not applicable here: asking for the whole state", "err", err)
			return true, nil
		}
		if !a.digestMatches(base, st, ch.Delta) {
			return true, nil
		}
		a.m.deltas.Inc()
		return false, a.take(ctx, st)
	}
	if ch.State == nil {
		return true, nil
	}
	a.m.wholes.Inc()
	return false, a.takeWhole(ctx, ch.State)
}

// lockApply takes the apply lock (Agent.applying); false when ctx ended first.
func (a *Agent) lockApply(ctx context.Context) bool {
	select {
	case a.applying <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *Agent) unlockApply() { <-a.applying }

// apply guards and applies st; fromController marks a state just received
// (a cached one is applied at start).
func (a *Agent) apply(ctx context.Context, st *held, fromController bool) error {
	if !a.lockApply(ctx) {
		return ctx.Err()
	}
	defer a.unlockApply()
	return a.applyHeld(ctx, st, fromController)
}

// applyHeld is apply with the apply lock held.
func (a *Agent) applyHeld(ctx context.Context, st *held, fromController bool) error {
	h, err := a.intent(st)
	if err != nil {
		return err
	}
	a.mu.Lock()
	prev, wasUp, rolledBack := a.applied, a.up, a.rolledBack
	name := a.cfg.Interface
	a.mu.Unlock()
	if fromController && st.Revision == rolledBack {
		return fmt.Errorf("revision %d: %w: rolled back once after no controller answered within %s of it", st.Revision, ErrRefused, a.opts.SafetyWindow)
	}
	if name == "" {
		name = st.Interface
	}
	if !(wasUp && prev != nil && sameHeld(prev, st)) {
		start := time.Now()
		err := a.opts.Plane.Apply(ctx, name, h)
		a.m.reconcile.Observe(time.Since(start).Seconds())
		if err != nil {
			a.m.failures.Inc()
			return err
		}
		a.opts.Log.Info("applied", "revision", st.Revision, "peers", st.Len(), "took", time.Since(start).Round(time.Microsecond))
		a.noteUnresolved()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if fromController && prev != nil && a.opts.SafetyWindow > 0 && pathChanged(prev, st, a.urls) {
		a.guard = &safety{prev: prev, rev: st.Revision, start: time.Now()}
		a.opts.Log.Warn("this change alters the path to the controller: it is rolled back unless a controller answers", "revision", st.Revision, "within", a.opts.SafetyWindow)
	}
	a.applied, a.up = st, true
	if fromController {
		a.followed = st.Revision
	}
	a.m.applied.Set(float64(st.Revision))
	if a.opts.OnApplied != nil {
		a.opts.OnApplied(st.Revision)
	}
	select {
	case a.kick <- struct{}{}:
	default:
	}
	return a.cacheLocked()
}

// safety is a change that altered the path to the controllers, waiting for
// one to answer.
type safety struct {
	prev  *held
	rev   uint64
	start time.Time
}

// pathChanged reports whether, for some controller URL whose host is an
// address, the peer whose AllowedIPs would carry traffic to it (longest
// match; none: the host's own routes) differs between two states.
func pathChanged(prev, next *held, urls []string) bool {
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil {
			continue
		}
		addr, err := netip.ParseAddr(pu.Hostname())
		if err != nil {
			continue // a name: resolved by the system, not judged here
		}
		if carrierChanged(prev, next, addr) {
			return true
		}
	}
	return false
}

// carrier is the public key of the peer that st routes addr to, "" for none.
func carrier(st *api.AgentState, addr netip.Addr) string {
	best, bits := "", -1
	for _, p := range st.Peers {
		for _, s := range p.AllowedIPs {
			q, err := netip.ParsePrefix(s)
			if err == nil && q.Contains(addr) && q.Bits() > bits {
				best, bits = p.PublicKey, q.Bits()
			}
		}
	}
	return best
}

// houseLoop rolls back a change whose safety window passed without a
// controller, and reconciles the applied state again now and then (endpoint
// host names are resolved again; a changed address is applied);
// watchPollAddr follows the long poll's local address.
func (a *Agent) houseLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	resolved := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a.checkSafety(ctx)
		if time.Since(resolved) < a.opts.ResolveEvery {
			continue
		}
		resolved = time.Now()
		a.reconcile(ctx)
	}
}

// reconcile applies the applied state again (endpoint host names resolved
// again), reading it under the apply lock: a newer state applied meanwhile
// is the one reconciled, never the one read before it.
func (a *Agent) reconcile(ctx context.Context) {
	if !a.lockApply(ctx) {
		return
	}
	defer a.unlockApply()
	a.mu.Lock()
	st, name := a.applied, a.cfg.Interface
	a.mu.Unlock()
	if st == nil {
		return
	}
	if name == "" {
		name = st.Interface
	}
	if h, err := a.intent(st); err == nil {
		if err := a.opts.Plane.Apply(ctx, name, h); err != nil {
			a.opts.Log.Warn("periodic reconcile", "err", err)
		} else {
			a.noteUnresolved()
		}
	}
}

// unresolver is a data plane that configures a peer whose endpoint host name
// has never resolved without an endpoint, and says which (UpPlane).
type unresolver interface{ Unresolved() []UnresolvedPeer }

// noteUnresolved, after an apply, says and counts the peers whose endpoint
// host name has never resolved, keeps since when (for the status report),
// and writes them to UnresolvedFile when they changed; the apply lock is held.
func (a *Agent) noteUnresolved() {
	u, ok := a.opts.Plane.(unresolver)
	if !ok {
		return
	}
	peers := u.Unresolved()
	a.m.unresolved.Set(float64(len(peers)))
	a.mu.Lock()
	had := a.unresolved
	since(peers, had, time.Now().UTC())
	a.unresolved = peers
	a.mu.Unlock()
	switch {
	case len(peers) > 0:
		a.opts.Log.Warn("endpoint host names that have never resolved: these peers are configured without an endpoint (they can still dial in); resolved again at each reconcile",
			"peers", peers, "every", a.opts.ResolveEvery)
	case len(had) > 0:
		a.opts.Log.Info("every endpoint host name resolves now")
	}
	if !sameUnresolved(had, peers) {
		if err := saveUnresolved(a.opts.Dir, peers); err != nil {
			a.opts.Log.Warn("unresolved endpoints not written for wgnet agent show", "err", err)
		}
	}
}

// checkSafety rolls the guarded change back when its window has passed and
// no controller answered since it. The guard is read again under the apply
// lock: a change applied meanwhile replaced it or a controller answered.
func (a *Agent) checkSafety(ctx context.Context) {
	due := func() *safety {
		a.mu.Lock()
		defer a.mu.Unlock()
		g := a.guard
		if g == nil || time.Since(g.start) < a.opts.SafetyWindow || a.lastOK.After(g.start) {
			return nil
		}
		return g
	}
	if due() == nil || !a.lockApply(ctx) {
		return
	}
	defer a.unlockApply()
	g := due()
	if g == nil {
		return
	}
	a.opts.Log.Error("no controller answered within the safety window of a change that altered the path to it: rolling it back", "revision", g.rev, "to", g.prev.Revision)
	a.mu.Lock()
	a.guard, a.rolledBack = nil, g.rev
	a.mu.Unlock()
	if err := a.applyHeld(ctx, g.prev, false); err != nil {
		a.opts.Log.Error("roll back", "err", err)
		return
	}
	a.m.rollbacks.Inc()
}

// reportLoop sends the peers' states every ReportEvery (the revision applied
// with them), the first time soon after the first state is applied; agents
// started together spread their reports over the period by a random start.
// A change does not bring a report of its own: with a thousand hosts it would
// double the controller's work per change.
func (a *Agent) reportLoop(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-a.kick:
	}
	if sleep(ctx, rand.N(a.opts.ReportEvery/5+1)) != nil {
		return
	}
	tick := time.NewTicker(a.opts.ReportEvery)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		if err := a.Report(ctx); err != nil && ctx.Err() == nil {
			a.opts.Log.Debug("status report", "err", err)
		}
	}
}

// Report sends one status report: the revision applied and every peer's
// state and counters, in one request.
func (a *Agent) Report(ctx context.Context) error {
	a.mu.Lock()
	st := a.applied
	name := a.ifaceLocked()
	unresolved := a.unresolved
	a.mu.Unlock()
	if st == nil {
		return nil
	}
	peers, err := a.opts.Plane.Peers(ctx, name)
	if err != nil {
		return err
	}
	c, _, err := a.client()
	if err != nil {
		return err
	}
	r := api.AgentReport{Revision: st.Revision, Time: time.Now().UTC().Format(time.RFC3339Nano), Peers: []api.PeerStatus{}}
	for _, p := range peers {
		ps := api.PeerStatus{PublicKey: p.PublicKey.String(), RxBytes: uint64(max(p.RxBytes, 0)), TxBytes: uint64(max(p.TxBytes, 0))}
		if p.Endpoint.IsValid() {
			ps.Endpoint = p.Endpoint.String()
		}
		if !p.LastHandshake.IsZero() {
			ps.LastHandshake = p.LastHandshake.UTC().Format(time.RFC3339Nano)
		}
		r.Peers = append(r.Peers, ps)
	}
	if c.Speaks(api.V3) && len(unresolved) > 0 { // a v2 controller refuses a field it does not know
		markUnresolved(&r, st.Flat(), unresolved) // (the state's wire form made once, only then)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.AgentReport(rctx, r)
}

// Leave removes the host from its network at a controller, takes the
// interface down and deletes the agent's files (the private key too, when the
// agent made it). With force, a controller that can't be reached does not
// stop the local part (an admin removes the host later).
func (a *Agent) Leave(ctx context.Context, force bool) error {
	var errs []error
	left := false
	for range a.urls {
		c, u, err := a.client()
		if err == nil {
			_, err = c.AgentLeave(ctx)
		}
		var ce *client.Error
		if err == nil || (errors.As(err, &ce) && ce.Status == 401) {
			left = true // 401: the host is gone already
			break
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
		a.failed()
	}
	if !left && !force {
		return fmt.Errorf("leave: no controller removed the host (give --force to leave locally anyway): %w", errors.Join(errs...))
	}
	name := a.Interface()
	if err := a.opts.Plane.Remove(ctx, name); err != nil {
		return fmt.Errorf("leave: take %s down: %w", name, err)
	}
	return removeFiles(a.opts.Dir, a.cfg.KeyFile)
}

// keyOf parses a key for metrics labels.
func keyOf(s string) wgkey.Key {
	k, _ := wgkey.ParseKey(s)
	return k
}
