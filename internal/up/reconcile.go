package up

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/wgnet/wgnet/internal/device"
)

// The reconcile engine: one way from what an interface is to what it should be.
// It works out the target (configTarget), reads the running system (readRunning),
// diffs them (diff) and applies only the difference (applyPlan), recording each
// step in the state file. An interface that is absent is first created (PreUp,
// the device) and then reconciled from its empty self by the same path; PostUp
// runs after. Up, Sync, PlanSync, TryUp, Down and a rollback are entry points:
// the exported ones take the interface's lock and check their own preconditions;
// the functions they call, named ...Locked, expect the lock held.

// lockForChange takes interface name's lock and settles a change left pending
// without a live timer (recoverPending): how every entry point that changes the
// interface begins. The caller runs unlock when done.
func lockForChange(ctx context.Context, opts *SyncOptions, name string) (unlock func(), err error) {
	unlock, err = lockInterface(opts.StateDir, name)
	if err != nil {
		return nil, err
	}
	if err := recoverPending(ctx, opts, name); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// Reconcile makes interface req.Name what req.Host says: it creates the
// interface when it is absent (as Up does) and changes only what differs when it
// is there (as Sync does, adopting an interface another tool made). It returns
// what it did. A record left by an interface another tool removed is cleaned
// up and the interface created again. With opts.Confirm the change is provisional, as with TryUp or Sync.
func Reconcile(ctx context.Context, req Request, opts SyncOptions) (*Plan, error) {
	opts.defaults()
	unlock, err := lockForChange(ctx, &opts, req.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	d, _, err := opts.Open(req.Name)
	switch {
	case err == nil:
		d.Close()
		return syncLocked(ctx, req, &opts)
	case !errors.Is(err, device.ErrNotFound):
		return nil, err
	}
	var plan *Plan
	if opts.Confirm.Within > 0 {
		_, _, plan, err = tryUpLocked(ctx, req, &opts)
	} else {
		_, plan, err = upLocked(ctx, req, &opts)
	}
	return plan, err
}

// createLocked creates the interface p describes, which is absent: PreUp hooks,
// the device, then the same reconcile as a change (from an empty device), then
// PostUp. Every step is recorded in the state file before or as it is made, so
// that down after a crash half-way removes exactly what was made; a failure
// undoes what was done.
func createLocked(ctx context.Context, req Request, p *plan, opts *SyncOptions) (*State, *Plan, error) {
	o := &opts.Options
	if err := p.needResolvconf(o); err != nil {
		return nil, nil, err
	}
	if err := p.needTunnelBackend(o.Host); err != nil {
		return nil, nil, err
	}
	h := o.Host
	mtu := p.mtu
	if mtu == 0 {
		var ms []int
		for _, e := range p.endpoints {
			m, err := h.RouteMTU(e)
			if err != nil {
				return nil, nil, err
			}
			ms = append(ms, m)
		}
		def, err := h.RouteMTU(netip.Addr{})
		if err != nil {
			return nil, nil, err
		}
		mtu = autoMTU(ms, def)
	}
	hostWide := readHostWide(h) // what the user's hooks change of it stays (keepHookChanges)
	for _, hook := range p.preUp {
		if err := o.runHook(ctx, p.name, hook); err != nil {
			return nil, nil, fmt.Errorf("up %s: PreUp: %w", p.name, err)
		}
	}
	st := &State{
		Version:    stateVersion,
		Name:       p.name,
		Source:     req.Source,
		Started:    time.Now().UTC(), // full precision: it tells two ups of one name apart
		PreDown:    p.preDown,
		PostDown:   p.postDown,
		SaveConfig: p.saveConfig,
		Peers:      p.peers,
		Endpoints:  p.configuredEndpoints(),
	}
	if err := st.save(o.StateDir); err != nil {
		return nil, nil, err
	}
	plan, err := createStepsLocked(ctx, p, mtu, st, opts, hostWide)
	if err != nil {
		o.logf("failed: %v; undoing", err)
		if uerr := teardown(st, o); uerr != nil {
			return nil, nil, fmt.Errorf("up %s: %w\nundo incomplete (state kept in %s for `wgnet down`): %w", p.name, err, statePath(o.StateDir, p.name), uerr)
		}
		if rerr := removeState(o.StateDir, p.name); rerr != nil {
			return nil, nil, fmt.Errorf("up %s: %w (undone; %w)", p.name, err, rerr)
		}
		return nil, nil, fmt.Errorf("up %s: %w (everything undone)", p.name, err)
	}
	return st, plan, nil
}

// createStepsLocked makes the device, reconciles it from empty and runs PostUp,
// recording each step in st.
func createStepsLocked(ctx context.Context, p *plan, mtu int, st *State, opts *SyncOptions, hostWide map[string]string) (*Plan, error) {
	o := &opts.Options
	dev, created, err := o.Devices.Create(ctx, CreateRequest{Name: p.name, Backend: o.Backend, MTU: mtu})
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	st.Backend, st.PID, st.LogFile = created.Backend, created.PID, created.LogFile
	if err := st.save(o.StateDir); err != nil {
		return nil, err
	}
	switch {
	case created.Note != "":
		o.logf("%s: %s backend (%s)", p.name, created.Backend, created.Note)
	default:
		o.logf("%s: %s backend", p.name, created.Backend)
	}
	if !o.NoForwarding {
		// Recorded before any sysctl changes, for a down of another interface.
		if st.Needs, err = sharedNeeds(o.Host, p.name, p.forwardV6); err != nil {
			return nil, err
		}
	}
	s := &syncer{opts: opts, req: Request{Name: p.name}, p: p, dev: dev, st: st, createMTU: mtu}
	if err := s.planLocked(nil); err != nil {
		return nil, err
	}
	for _, n := range s.target.notes {
		o.logf("note: %s", n)
	}
	if err := s.applyAndVerify(); err != nil {
		return nil, err
	}
	if err := setDNS(ctx, p, st, o); err != nil {
		return nil, err
	}
	for _, hook := range p.postUp {
		if err := o.runHook(ctx, p.name, hook); err != nil {
			return nil, fmt.Errorf("PostUp: %w", err)
		}
	}
	keepHookChanges(o.Host, st, hostWide)
	st.Complete = true
	return s.plan, st.save(o.StateDir)
}
