package up

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/devconf"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// SyncOptions configure Sync, PlanSync, TryUp and the functions around a change
// waiting for confirmation. The zero value works on the real host, like Options.
type SyncOptions struct {
	Options
	// Open returns a handle on a running WireGuard interface and, when it read the
	// device anyway, its state (nil otherwise); nil means device.OpenState
	// (kernel, or any userspace implementation with a UAPI socket).
	Open func(name string) (device.Device, *device.State, error)
	// Confirm makes the change provisional when Confirm.Within > 0: it is undone
	// by itself unless confirmed in time (see Pending).
	Confirm Confirm
	// AllowPolicyDeny lets a sync whose policy change denies traffic the running
	// filter lets through go ahead without Confirm (see checkPolicyConfirm).
	AllowPolicyDeny bool
}

func (o *SyncOptions) defaults() {
	o.Options.defaults()
	if o.Open == nil {
		o.Open = device.OpenState
	}
}

// PlanSync works out what Sync would change on the running interface, reading it
// back from the system, and changes nothing (endpoint host names are resolved).
func PlanSync(ctx context.Context, req Request, opts SyncOptions) (*Plan, error) {
	opts.defaults()
	unlock, err := lockInterface(opts.StateDir, req.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	s, err := prepareSync(ctx, req, &opts)
	if err != nil {
		return nil, err
	}
	defer s.dev.Close()
	if p, err := LoadPending(opts.StateDir, req.Name); err == nil {
		s.plan.Notes = append(s.plan.Notes, fmt.Sprintf("a change by `wgnet %s` is waiting for confirmation (until %s); sync refuses to change %s until it is confirmed or rolled back",
			p.Command, p.Deadline.Local().Format(time.TimeOnly), req.Name))
	}
	if err := s.checkPolicyConfirm(); err != nil {
		s.plan.Notes = append(s.plan.Notes, "this policy change denies more than the running filter: sync needs --confirm DURATION (or --no-confirm-policy)")
	}
	return s.plan, nil
}

// Sync changes the running interface req.Name to match req.Config, touching only
// what differs (see the package documentation and docs/sync.md): peers that went
// are removed and new ones added; a changed peer gets only its changed prefixes
// added or removed, and its endpoint, preshared key and keepalive only when they
// changed; the private key and port only when they changed; addresses, routes,
// forwarding sysctls and wgnet's firewall table likewise. Sessions of peers that
// stay are not disturbed. An interface that another tool (wg-quick) made is
// adopted: Sync writes a state file for it so that Down works afterwards.
//
// When a step fails, Sync puts back what it had changed (read back and diffed
// against what it read before) and says so. With opts.Confirm, the change is
// undone by a detached timer unless Confirm runs in time.
func Sync(ctx context.Context, req Request, opts SyncOptions) (*Plan, error) {
	opts.defaults()
	unlock, err := lockForChange(ctx, &opts, req.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return syncLocked(ctx, req, &opts)
}

// syncLocked is Sync with the lock held and no change pending.
func syncLocked(ctx context.Context, req Request, opts *SyncOptions) (*Plan, error) {
	s, err := prepareSync(ctx, req, opts)
	if err != nil {
		return nil, err
	}
	defer s.dev.Close()
	if err := s.checkPolicyConfirm(); err != nil {
		return nil, err
	}

	var pend *pendingFile
	switch {
	case opts.Confirm.Within > 0 && !s.plan.Empty():
		pend, err = startPending(opts, "sync", req.Name, newSnapshot(s.before), s.prev)
	case opts.Confirm.Within > 0: // nothing to confirm, which `wgnet confirm` then says
		err = saveOutcome(opts.StateDir, req.Name, Outcome{Kind: OutcomeNoChange, Command: "sync", At: time.Now().UTC().Truncate(time.Second)})
	case !s.plan.Empty():
		err = dropOutcome(opts.StateDir, req.Name)
	}
	if err != nil {
		return nil, err
	}
	if err := s.applyAndVerify(); err != nil {
		if rerr := s.restore(); rerr != nil {
			if pend != nil {
				// Keep it: the timer tries again at the deadline.
				return nil, fmt.Errorf("sync %s: %w\nrestore incomplete (the confirmation timer tries again at %s): %w",
					req.Name, err, pend.Deadline.Local().Format(time.TimeOnly), rerr)
			}
			return nil, fmt.Errorf("sync %s: %w\nrestore incomplete: %w", req.Name, err, rerr)
		}
		if pend != nil {
			if cerr := cancelPending(opts, pend); cerr != nil {
				return nil, fmt.Errorf("sync %s: %w (everything restored; %w)", req.Name, err, cerr)
			}
		}
		return nil, fmt.Errorf("sync %s: %w (everything restored)", req.Name, err)
	}
	if pend != nil {
		if err := armPending(opts, pend, s.st); err != nil {
			return s.plan, err
		}
		s.plan.Notes = append(s.plan.Notes, fmt.Sprintf("run `wgnet confirm %s` by %s to keep this change; otherwise it is rolled back",
			req.Name, pend.Deadline.Local().Format(time.TimeOnly)))
	}
	return s.plan, nil
}

// syncer is one reconcile in progress: a sync, or the part of an up after the
// device is created.
type syncer struct {
	opts *SyncOptions
	req  Request
	p    *plan
	dev  device.Device
	// prev is the state file as it was (nil: none, the interface is adopted);
	// prevRaw its bytes, written back when the sync is undone.
	prev    *State
	prevRaw []byte
	// st is the state being written: a copy of prev, or a new one for adoption.
	st        *State
	before    *running
	target    *target
	scope     readScope
	canRemove bool
	names     map[string]string
	plan      *Plan
	// createMTU is set when the interface was just created (by up): its link is
	// set up with this MTU, and what is applied is recorded step by step.
	createMTU int
}

// prepareSync checks the request, reads the running interface and works out the
// plan. It touches nothing.
func prepareSync(ctx context.Context, req Request, opts *SyncOptions) (*syncer, error) {
	// The device is read while the config is checked: reading 10,000 peers from
	// a userspace daemon is mostly waiting for it to write them out.
	opened := make(chan openResult, 1)
	if ValidName(req.Name) {
		go func() {
			var r openResult
			r.dev, r.first, r.err = opts.Open(req.Name)
			opened <- r
		}()
	} else {
		opened <- openResult{err: fmt.Errorf("open %q: invalid name", req.Name)}
	}
	p, err := makePlan(ctx, req, &opts.Options)
	if err != nil {
		if r := <-opened; r.err == nil {
			r.dev.Close()
		}
		return nil, err
	}
	r := <-opened
	return prepareOpened(req, p, r, opts)
}

// openResult is what SyncOptions.Open returned.
type openResult struct {
	dev   device.Device
	first *device.State
	err   error
}

// prepareOpened is prepareSync once the config is checked and the device open
// (or not: r.err).
func prepareOpened(req Request, p *plan, r openResult, opts *SyncOptions) (*syncer, error) {
	closeDev := func() {
		if r.err == nil {
			r.dev.Close()
		}
	}
	s := &syncer{opts: opts, req: req, p: p}
	prev, err := LoadState(opts.StateDir, p.name)
	switch {
	case err == nil:
		s.prev = prev
		if s.prevRaw, err = os.ReadFile(statePath(opts.StateDir, p.name)); err != nil {
			closeDev()
			return nil, err
		}
		cp := *prev
		cp.Sysctls = slices.Clone(prev.Sysctls)
		cp.Addresses, cp.Routes = slices.Clone(prev.Addresses), slices.Clone(prev.Routes)
		s.st = &cp
	case errors.Is(err, os.ErrNotExist):
	default:
		closeDev()
		return nil, err
	}
	s.dev, err = r.dev, r.err
	first := r.first
	if err != nil {
		switch {
		case errors.Is(err, device.ErrNotFound) && s.prev != nil:
			return nil, &StateError{Kind: ErrNotRunning, Name: p.name, State: statePath(opts.StateDir, p.name), LogFile: s.prev.LogFile,
				Msg: fmt.Sprintf("sync %s: wgnet brought it up (%s backend, pid %d) but it is not running", p.name, s.prev.Backend, s.prev.PID)}
		case errors.Is(err, device.ErrNotFound):
			return nil, &StateError{Kind: ErrNotUp, Name: p.name, Msg: fmt.Sprintf("sync %s: no such WireGuard interface", p.name)}
		}
		return nil, fmt.Errorf("sync %s: %w", p.name, err)
	}
	ok := false
	defer func() {
		if !ok {
			s.dev.Close()
		}
	}()
	if s.prev != nil && !s.prev.Complete {
		return nil, &StateError{Kind: ErrIncomplete, Name: p.name, State: statePath(opts.StateDir, p.name),
			Msg: fmt.Sprintf("sync %s: `wgnet up` did not finish (state in %s)", p.name, statePath(opts.StateDir, p.name))}
	}
	if err := s.planLocked(first); err != nil {
		return nil, err
	}
	s.addNotes()
	ok = true
	return s, nil
}

// planLocked works out the target, reads the running interface (the device
// state first, when it was read already) and diffs them. It touches nothing.
func (s *syncer) planLocked(first *device.State) error {
	p, opts := s.p, s.opts
	var err error
	s.target, err = configTarget(p, s.prev, opts)
	if err != nil {
		return err
	}
	if err := addTunnel(s.target, p, s.prev, opts.Host, s.prev == nil && s.createMTU == 0); err != nil {
		return fmt.Errorf("sync %s: %w", p.name, err)
	}
	if s.createMTU != 0 {
		s.target.mtu, s.target.linkUp = s.createMTU, true
	}
	s.scope = newScope(p.name, s.target, s.prev)
	s.scope.iptables = opts.Iptables
	s.before, err = readRunning(opts.Host, s.dev, first, p.name, s.scope)
	if err != nil {
		return fmt.Errorf("sync %s: %w", p.name, err)
	}
	if s.st == nil {
		s.st = &State{
			Version:  stateVersion,
			Name:     p.name,
			Started:  time.Now().UTC(),
			Complete: true,
			Backend:  s.before.dev.Backend,
			Adopted:  true,
			PreDown:  p.preDown,
			PostDown: p.postDown,
		}
	}
	s.canRemove = device.RemovesAllowedIPs(s.dev)
	s.names = map[string]string{}
	if s.prev != nil {
		for k, v := range s.prev.Peers {
			s.names[k] = v
		}
	}
	s.plan = diff(p.name, s.before, s.target, s.canRemove, s.names)
	s.plan.Adopt = s.prev == nil && s.createMTU == 0
	// The read-back, and a restore, look for a bridge left behind.
	s.scope.rules = append(s.scope.rules, s.plan.Rules.Bridge...)
	return nil
}

// diff works out the plan that takes r to t.
func diff(name string, r *running, t *target, canRemove bool, names map[string]string) *Plan {
	plan := &Plan{Interface: name}
	diffDevice(plan, r.dev, t, canRemove, names)
	diffHost(plan, r, t)
	diffHostFirewall(plan, r, t)
	// Lists are [] rather than null in JSON.
	for _, l := range []*[]netip.Prefix{&plan.Addresses.Add, &plan.Addresses.Remove} {
		if *l == nil {
			*l = []netip.Prefix{}
		}
	}
	for _, l := range []*[]hostnet.Route{&plan.Routes.Add, &plan.Routes.Remove} {
		if *l == nil {
			*l = []hostnet.Route{}
		}
	}
	if plan.Peers == nil {
		plan.Peers = []PeerChange{}
	}
	if plan.Sysctls == nil {
		plan.Sysctls = []SysctlChange{}
	}
	return plan
}

func (s *syncer) addNotes() {
	pl, name := s.plan, s.p.name
	note := func(format string, a ...any) { pl.Notes = append(pl.Notes, fmt.Sprintf(format, a...)) }
	if pl.Adopt {
		note("%s was not brought up by wgnet (%s backend, made by wg-quick or another tool): sync adopts it and writes %s, so that `wgnet down %s` removes it like wg-quick down",
			name, s.before.dev.Backend, statePath(s.opts.StateDir, name), name)
	}
	if pl.PrivateKey {
		note("the private key changes: every peer must learn the new public key, and every session restarts")
	}
	if pl.ListenPort != nil {
		note("the listen port changes: peers that dial this host need the new port in their config")
	}
	replaced := 0
	for _, c := range pl.Peers {
		if c.ReplaceAllowedIPs {
			replaced++
		}
	}
	if replaced > 0 {
		note("this %s device cannot remove single allowed IPs (an old wireguard-go, or the kernel through wgctrl): %d peer(s) get their whole list rewritten, and packets to them may drop for a moment",
			s.before.dev.Backend, replaced)
	}
	if s.prev != nil && (!slices.Equal(s.p.preDown, s.prev.PreDown) || !slices.Equal(s.p.postDown, s.prev.PostDown)) {
		note("the config's PreDown/PostDown hooks differ from those recorded at up; down runs the recorded ones")
	}
	if len(s.p.preUp)+len(s.p.postUp) > 0 {
		note("sync does not run PreUp/PostUp hooks")
	}
	if prevDNS := s.st.DNS; !slices.Equal(s.p.dns, prevDNS) {
		note("DNS changes from [%s] to [%s]: sync does not change DNS (nor does wg-quick); down and up to apply it",
			strings.Join(prevDNS, ", "), strings.Join(s.p.dns, ", "))
	}
	if s.opts.NoForwarding {
		note("--no-forwarding: forwarding sysctls and MSS clamping are left alone")
	}
}

// configTarget works out what the interface should be from the checked config.
// Without a ListenPort in the config, wg picks a random port at up; sync keeps
// whatever it is (see devconf.FromHost).
func configTarget(p *plan, prev *State, opts *SyncOptions) (*target, error) {
	want := *p.want
	want.Configured = map[wgkey.Key]netip.AddrPort{}
	if prev != nil {
		for k, e := range prev.Endpoints {
			if key, err := wgkey.ParseKey(k); err == nil {
				want.Configured[key] = e
			}
		}
	}
	t := &target{
		dev:           &want,
		peerNames:     p.peers,
		mtu:           p.mtu,
		addresses:     sortedAddrs(p.addresses),
		firewallTable: FirewallTable(p.name),
	}

	// Routes as up adds them: with Table = auto, not for prefixes that the
	// addresses' own prefix routes already cover.
	var existing []netip.Prefix
	for _, a := range p.addresses {
		if !hostPrefix(a) {
			existing = append(existing, a.Masked())
		}
	}
	for _, dst := range p.routes(existing) {
		t.routes = append(t.routes, normRoute(hostnet.Route{Dst: dst, Dev: p.name, Table: p.table}))
	}
	slices.SortFunc(t.routes, compareRoute)

	t.withFilter(p.filter)
	if opts.NoForwarding {
		return t, nil
	}
	t.firewallManaged = true
	h := opts.Host
	t.sysctls = map[string]string{}
	if p.forwardV4 || p.forwardV6 {
		changes, err := forwardingChanges(h, p.name, p.forwardV4, p.forwardV6)
		if err != nil {
			return nil, err
		}
		for _, c := range changes {
			t.sysctls[c.Key] = c.New
		}
	}
	sub, notes, err := subnetForwarding(h, p.name, p.subnets)
	if err != nil {
		return nil, err
	}
	for k, v := range sub {
		t.sysctls[k] = v
	}
	t.notes = notes
	if t.hostfw, err = hostFirewallTarget(p, prev, opts, t); err != nil {
		return nil, err
	}
	if p.clampMSS {
		if t.firewall == nil {
			t.firewall = &hostnet.Firewall{Table: t.firewallTable}
		}
		t.firewall.ClampMSS, t.firewall.DropRedirects = []string{p.name}, []string{p.name}
	}
	if prev != nil {
		// Put back what wgnet turned on earlier and no longer needs.
		for _, c := range prev.Sysctls {
			if _, ok := t.sysctls[c.Key]; ok || stillForwarding(c.Key, p.name, p.forwardV4, p.forwardV6) {
				continue
			}
			t.sysctls[c.Key] = c.Old
		}
	}
	return t, nil
}

// stillForwarding reports whether key is one of the sysctls that forwardingChanges
// sets for the families still wanted.
func stillForwarding(key, name string, v4, v6 bool) bool {
	switch {
	case v4 && key == "net/ipv4/conf/"+name+"/forwarding":
		return true
	case v6 && (key == "net/ipv6/conf/"+name+"/force_forwarding" || key == "net/ipv6/conf/all/forwarding"):
		return true
	case v6 && strings.HasPrefix(key, "net/ipv6/conf/") && strings.HasSuffix(key, "/accept_ra"):
		return true
	}
	return false
}

// configuredEndpoints returns the resolved endpoints of the config, by public key.
func (p *plan) configuredEndpoints() map[string]netip.AddrPort {
	out := map[string]netip.AddrPort{}
	for _, wp := range p.want.Peers {
		if wp.Endpoint.IsValid() {
			out[wp.PublicKey.String()] = wp.Endpoint
		}
	}
	return out
}

// readScope says what of the host readRunning reads.
type readScope struct {
	name string
	// tables are the routing tables to read routes from (0 is main).
	tables []int
	// owned are routes known to be wgnet's (recorded, or wanted) even when no
	// running peer has their prefix.
	owned map[hostnet.Route]bool
	// sysctls are the keys to read.
	sysctls []string
	// firewallTable is wgnet's table for the interface.
	firewallTable string
	// rules are the full tunnel's policy rules known to be the interface's
	// (recorded, or wanted).
	rules []hostnet.Rule
	// hostfw says to read the host's iptables, with iptables.
	hostfw   bool
	iptables dockerfw.Runner
}

func newScope(name string, t *target, prev *State) readScope {
	sc := readScope{name: name, owned: map[hostnet.Route]bool{}, firewallTable: FirewallTable(name), tables: []int{0}}
	if prev != nil {
		for _, r := range prev.Routes {
			r = normRoute(r)
			r.Dev = name
			sc.owned[r] = true
			sc.tables = append(sc.tables, r.Table)
		}
		if prev.Tunnel != nil {
			sc.rules = append(sc.rules, prev.Tunnel.Rules...)
		}
	}
	sc.add(t)
	return sc
}

// add widens the scope to what t wants.
func (sc *readScope) add(t *target) {
	for _, r := range t.routes {
		sc.owned[r] = true
		sc.tables = append(sc.tables, r.Table)
	}
	for k := range t.sysctls {
		sc.sysctls = append(sc.sysctls, k)
	}
	if t.tunnel != nil {
		sc.rules = append(sc.rules, t.tunnel.rules...)
	}
	sc.hostfw = sc.hostfw || t.hostfw != nil
	slices.Sort(sc.tables)
	sc.tables = slices.Compact(sc.tables)
	slices.Sort(sc.sysctls)
	sc.sysctls = slices.Compact(sc.sysctls)
}

// readRunning reads the interface back from the system (the device only when st
// is nil: a state just read can be passed in). Of the routes through the
// interface it keeps those that are wgnet's or wg-quick's business: a route whose
// destination is a running peer's allowed IP, or one the scope knows as owned.
// The kernel's prefix routes for the addresses, and routes added by hand or by
// hooks, are left out (and so left alone).
func readRunning(h hostnet.HostNet, d device.Device, st *device.State, name string, sc readScope) (*running, error) {
	if st == nil {
		var err error
		if st, err = d.State(); err != nil {
			return nil, err
		}
	}
	// Each peer's allowed IPs masked and sorted, for the diff. The peers need no
	// order (the diff looks them up by key), and sorting ten thousand of them
	// costs more than the rest of the diff.
	for i := range st.Peers {
		st.Peers[i].AllowedIPs = sortedPrefixes(st.Peers[i].AllowedIPs)
	}
	r := &running{dev: st, sysctls: map[string]string{}}
	link, err := h.Link(name)
	if err != nil {
		return nil, err
	}
	r.mtu, r.up = link.MTU, link.Up
	addrs, err := h.Addrs(name)
	if err != nil {
		return nil, err
	}
	r.addresses = sortedAddrs(addrs)
	kernel := map[netip.Prefix]bool{}
	for _, a := range addrs {
		if !hostPrefix(a) {
			kernel[a.Masked()] = true
		}
	}
	allowed := map[netip.Prefix]bool{}
	for _, p := range st.Peers {
		for _, a := range p.AllowedIPs {
			allowed[a] = true
		}
	}
	for _, table := range sc.tables {
		rs, err := h.Routes(name, table)
		if err != nil {
			return nil, err
		}
		for _, rt := range rs {
			rt = normRoute(rt)
			rt.Dev = name
			if rt.Table == 0 && kernel[rt.Dst] {
				continue
			}
			if allowed[rt.Dst] || sc.owned[rt] {
				r.routes = append(r.routes, rt)
			}
		}
	}
	slices.SortFunc(r.routes, compareRoute)
	r.routes = slices.Compact(r.routes)
	for _, k := range sc.sysctls {
		v, err := h.Sysctl(k)
		if errors.Is(err, hostnet.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.sysctls[k] = v
	}
	r.firewallBackend, _ = h.FirewallBackend()
	fw, err := h.Firewall(sc.firewallTable)
	switch {
	case err == nil:
		r.firewall = &fw
	case !errors.Is(err, hostnet.ErrNotFound):
		return nil, err
	}
	if r.tunnel, err = readTunnel(h, sc); err != nil {
		return nil, err
	}
	if sc.hostfw {
		if r.hostfw, err = readHostFirewall(sc.iptables); err != nil {
			return nil, err
		}
		for _, v := range r.hostfw {
			r.hostfwOurs = append(r.hostfwOurs, v.Ours(name)...)
		}
	}
	return r, nil
}

// applyAndVerify applies the plan, reads back what it changed and checks that
// nothing differs any more (neither the kernel nor wireguard-go applies a batch
// atomically), then writes the new state file. The read-back verifies the whole
// interface against the target: the device as read after the change when the
// plan changed it (else as read before), the host (link, addresses, routes,
// sysctls, firewall table) as read after the change.
func (s *syncer) applyAndVerify() error {
	o := &s.opts.Options
	if !s.plan.Empty() {
		if err := applyPlan(s.plan, s.dev, o, false, s.record); err != nil {
			return err
		}
		// The device is read back when the plan changed it: the peers it
		// touched when the device can read single peers (readBackDevice), else
		// all of it (neither UAPI nor generic netlink reads one peer);
		// otherwise it is as read before, which the plan found equal to the
		// target. The host is always read back: routes are told wgnet's from
		// the device's allowed IPs.
		var dev *device.State
		if !s.plan.deviceChanges() {
			dev = s.before.dev
		} else {
			dev = readBackDevice(s.dev, s.before.dev, s.plan)
		}
		after, err := readRunning(o.Host, s.dev, dev, s.p.name, s.scope)
		if err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		if left := diff(s.p.name, after, s.target, s.canRemove, s.names); !left.Empty() {
			return fmt.Errorf("read back: the interface still differs from the config:\n%s", planText(left))
		}
	}
	st := s.st
	st.HostFirewallMode = string(s.p.hostFirewall)
	if s.createMTU != 0 {
		// Up recorded every step as it was made.
		return st.save(o.StateDir)
	}
	if s.req.Source != "" {
		st.Source = s.req.Source
	}
	st.Peers = s.p.peers
	st.Endpoints = s.p.configuredEndpoints()
	// The recorded lists keep their order (up's is the order it applied them in)
	// when they hold what the target does, so that a reconcile that changes
	// nothing writes the same record.
	if !slices.Equal(sortedAddrs(st.Addresses), s.target.addresses) {
		st.Addresses = slices.Clone(s.target.addresses)
	}
	if !slices.Equal(sortedRoutes(st.Routes), s.target.routes) {
		st.Routes = slices.Clone(s.target.routes)
	}
	s.finishTunnel()
	if s.target.hostfw != nil {
		st.HostFirewall = slices.Clone(s.target.hostfw.want)
	}
	if s.target.firewallManaged {
		st.Firewall = ""
		if s.target.firewall != nil {
			st.Firewall = s.target.firewall.Table
		}
	}
	if !o.NoForwarding {
		var err error
		if st.Needs, err = sharedNeeds(o.Host, s.p.name, s.p.forwardV6); err != nil {
			return err
		}
	}
	if !s.plan.Empty() {
		st.Synced = time.Now().UTC().Truncate(time.Second)
	}
	return st.save(o.StateDir)
}

// sortedRoutes returns rs normalized and sorted, as a target holds routes.
func sortedRoutes(rs []hostnet.Route) []hostnet.Route {
	out := make([]hostnet.Route, 0, len(rs))
	for _, r := range rs {
		out = append(out, normRoute(r))
	}
	slices.SortFunc(out, compareRoute)
	return slices.Compact(out)
}

// record keeps the state file up to date while the plan is applied, so that a
// sync or up that dies half-way still leaves down a record of what to undo. It
// is called once per step, never per route: addresses and routes to add are
// recorded ahead, as planned, before the step adds them (down deletes those it
// finds and skips the others), and those removed after the step removed them.
func (s *syncer) record(ev applied) error {
	switch {
	case ev.sysctl != nil && keptSysctl(ev.sysctl.Key):
		mergeSysctl(&s.st.Kept, *ev.sysctl)
	case ev.sysctl != nil:
		mergeSysctl(&s.st.Sysctls, *ev.sysctl)
	case len(ev.rules) > 0 || ev.tunnelFW != "":
		s.recordTunnel(ev)
	case ev.firewall != "":
		s.st.Firewall = ev.firewall
	case ev.hostfw != nil:
		recordHostFirewall(s.st, *ev.hostfw, ev.hostfwAdd)
	case len(ev.addrs) > 0:
		s.st.Addresses = recordItems(s.st.Addresses, ev.addrs, ev.removed)
	case len(ev.routes) > 0:
		s.st.Routes = recordItems(s.st.Routes, ev.routes, ev.removed)
	default:
		return nil
	}
	return s.st.save(s.opts.StateDir)
}

// recordItems adds the items of xs that list lacks to its end, in order, or
// removes them from list.
func recordItems[T comparable](list, xs []T, removed bool) []T {
	set := make(map[T]bool, len(xs))
	for _, x := range xs {
		set[x] = true
	}
	if removed {
		return slices.DeleteFunc(list, func(x T) bool { return set[x] })
	}
	for _, x := range list {
		delete(set, x)
	}
	for _, x := range xs {
		if set[x] {
			list = append(list, x)
			delete(set, x)
		}
	}
	return list
}

// mergeSysctl records that c was applied: the first change of a key keeps its
// original value for down; a change back to it forgets the key.
func mergeSysctl(list *[]SysctlChange, c SysctlChange) {
	i := slices.IndexFunc(*list, func(x SysctlChange) bool { return x.Key == c.Key })
	switch {
	case i < 0:
		*list = append(*list, c)
	case (*list)[i].Old == c.New:
		*list = slices.Delete(*list, i, i+1)
	default:
		(*list)[i].New = c.New
	}
}

// restore puts the interface back as it was read before the sync, and the state
// file as it was, but for the kept sysctls the sync set (src_valid_mark), which
// stay set and are added to it (keepAlso).
func (s *syncer) restore() error {
	o := &s.opts.Options
	o.logf("restoring %s as it was", s.p.name)
	kept, err := restoreSnapshot(s.opts, s.p.name, newSnapshot(s.before), s.scope, s.names)
	switch {
	case s.prevRaw == nil:
		err = errors.Join(err, removeState(o.StateDir, s.p.name))
	case len(kept) > 0:
		var st State
		if jerr := json.Unmarshal(s.prevRaw, &st); jerr != nil {
			return errors.Join(err, jerr)
		}
		keepAlso(&st, kept)
		err = errors.Join(err, st.save(o.StateDir))
	default:
		err = errors.Join(err, atomicfile.WriteRuntime(statePath(o.StateDir, s.p.name), s.prevRaw, 0o600, 0o700))
	}
	return err
}

// restoreSnapshot drives the interface back to snap, going on after errors so
// that as much as possible is restored. sc widens what is read (routes the change
// may have added). It returns the kept sysctls the undone change set, which
// stay set (reportKeptOnRestore).
func restoreSnapshot(opts *SyncOptions, name string, snap *snapshot, sc readScope, names map[string]string) ([]SysctlChange, error) {
	o := &opts.Options
	t := snap.target(name)
	sc.add(t)
	sc.iptables = opts.Iptables
	d, first, err := opts.Open(name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	now, err := readRunning(o.Host, d, first, name, sc)
	if err != nil {
		return nil, err
	}
	plan := diff(name, now, t, device.RemovesAllowedIPs(d), names)
	err = applyPlan(plan, d, o, true, nil)
	return reportKeptOnRestore(snap.Sysctls, o), err
}

// applied is one recorded step of applyPlan.
type applied struct {
	sysctl   *SysctlChange
	firewall string // a table created or replaced
	// hostfw are iptables rules about to be added (hostfwAdd), or all of
	// wgnet's once a change is made.
	hostfw    *[]dockerfw.Rule
	hostfwAdd bool
	// addrs or routes are about to be added (planned), or were removed when
	// removed is set.
	addrs  []netip.Prefix
	routes []hostnet.Route
	// rules are a full tunnel's policy rules, about to be added or removed;
	// tunnelFW its nftables tables, created (or deleted when removed).
	rules    []hostnet.Rule
	tunnelFW string
	removed  bool
}

// applyPlan makes the plan's changes in an order that keeps traffic flowing:
// forwarding on first; then new peers, keys and prefixes; then new addresses and
// routes; then removals (single prefixes, peers, routes); forwarding off last.
// A full tunnel's policy rules are added after everything they lead to (the
// fwmark, the /0 allowed IPs, the table's default route, the conntrack mark
// rules) and removed before any of it goes (see removeRules in tunnel.go); a
// change of the fwmark is bridged by rules added before the device's mark
// changes and removed after the old rules (bridgeRules). It
// stops at the first error, unless keepGoing (for restores), when it does what it
// can and reports every error. record, when set, is called after each sysctl and
// firewall step, before addresses or routes are added (with all of them, as
// planned) and after they are removed: once per step, never per route.
func applyPlan(plan *Plan, d device.Device, o *Options, keepGoing bool, record func(applied) error) error {
	a := &applier{plan: plan, d: d, o: o, h: o.Host, name: plan.Interface, keepGoing: keepGoing, record: record}
	add, remove := plan.patches()
	ok := a.forwarding(true) && a.hostFirewall() && a.addBridge() && a.configure(add, "add and update") && a.mtu()
	ok = ok && a.addAddresses()
	ok = ok && a.linkUp()
	ok = a.removeAddresses(ok)
	ok = ok && a.addRoutes()
	ok = ok && a.tunnelFirewall(true) && a.addRules()
	ok = ok && a.removeRules() && a.removeBridge()
	ok = ok && a.configure(remove, "remove")
	ok = ok && a.tunnelFirewall(false)
	ok = ok && a.removeRoutes()
	_ = ok && a.forwarding(false)
	return errors.Join(a.errs...)
}

// applier is one applyPlan in progress. Each step returns whether to go on:
// false after an error unless keepGoing.
type applier struct {
	plan      *Plan
	d         device.Device
	o         *Options
	h         hostnet.HostNet
	name      string
	keepGoing bool
	record    func(applied) error
	errs      []error
}

func (a *applier) step(err error) bool {
	if err == nil {
		return true
	}
	a.errs = append(a.errs, err)
	return a.keepGoing
}

func (a *applier) rec(x applied) error {
	if a.record == nil {
		return nil
	}
	return a.record(x)
}

// tolerate drops err when it is the benign kind (already there, already gone).
func tolerate(err error, benign error) error {
	if errors.Is(err, benign) {
		return nil
	}
	return err
}

// forwarding turns on (or off) the sysctls and wgnet's table that the plan
// turns on (or off).
func (a *applier) forwarding(on bool) bool {
	for _, c := range a.plan.Sysctls {
		if (c.New != "0") != on {
			continue
		}
		a.o.logf("sysctl -w %s=%s (was %s)", hostnet.SysctlName(c.Key), c.New, c.Old)
		if !a.step(a.h.SetSysctl(c.Key, c.New)) {
			return false
		}
		c := c
		if !a.step(a.rec(applied{sysctl: &c})) {
			return false
		}
	}
	fw := a.plan.Firewall
	if fw == nil || (fw.Action != "delete") != on {
		return true
	}
	if on {
		a.o.logf("%s: %s", fw.where(), fw.what())
		return a.step(a.rec(applied{firewall: fw.Table})) && a.step(a.h.ApplyFirewall(*fw.want)) && a.forgetFlows(fw)
	}
	a.o.logf("delete %s", fw.where())
	return a.step(tolerate(a.h.DeleteFirewall(fw.Table), hostnet.ErrNotFound))
}

func (a *applier) configure(c device.Config, what string) bool {
	if c.Empty() {
		return true
	}
	lines := a.plan.peerLog(what == "remove")
	if c.FwMark != nil {
		a.o.logf("wg set %s fwmark %d", a.name, *c.FwMark)
	}
	if len(lines) == 0 && (len(c.Peers) > 0 || c.FwMark == nil) {
		a.o.logf("wg: %s on %s: %d peer(s)", what, a.name, len(c.Peers))
	}
	for _, l := range lines {
		a.o.logf("wg %s: %s", a.name, l)
	}
	return a.step(a.d.Configure(c))
}

// mtu changes a running link's MTU (a new link gets its MTU in linkUp).
func (a *applier) mtu() bool {
	if a.plan.MTU == nil || a.plan.linkUp {
		return true
	}
	a.o.logf("ip link set mtu %d dev %s", a.plan.MTU.New, a.name)
	return a.step(a.h.SetMTU(a.name, a.plan.MTU.New))
}

// addAddresses records the new addresses ahead, then adds them.
func (a *applier) addAddresses() bool {
	if len(a.plan.Addresses.Add) == 0 {
		return true
	}
	if !a.step(a.rec(applied{addrs: a.plan.Addresses.Add})) {
		return false
	}
	for _, p := range a.plan.Addresses.Add {
		a.o.logf("ip address add %s dev %s", p, a.name)
		if !a.step(tolerate(a.h.AddAddr(a.name, p), hostnet.ErrExists)) {
			return false
		}
	}
	return true
}

// linkUp gives a new link its MTU and brings it up, before routes through it
// can be added.
func (a *applier) linkUp() bool {
	if !a.plan.linkUp {
		return true
	}
	a.o.logf("ip link set mtu %d up dev %s", a.plan.upMTU, a.name)
	return a.step(a.h.SetMTU(a.name, a.plan.upMTU)) && a.step(a.h.SetUp(a.name, true))
}

// removeAddresses removes the plan's old addresses (when ok) and records those
// it removed, even after a failure.
func (a *applier) removeAddresses(ok bool) bool {
	if ok && slices.ContainsFunc(a.plan.Addresses.Remove, func(p netip.Prefix) bool { return p.Addr().Is4() }) {
		// Without promotion, removing a primary IPv4 address takes its secondaries
		// (a new address in the same subnet) with it, and with the last address
		// every route through the interface. The switch is the interface's own and
		// goes with it.
		ok = a.step(tolerate(a.h.SetSysctl("net/ipv4/conf/"+a.name+"/promote_secondaries", "1"), hostnet.ErrNotFound))
	}
	var removed []netip.Prefix
	for _, p := range a.plan.Addresses.Remove {
		if !ok {
			break
		}
		a.o.logf("ip address del %s dev %s", p, a.name)
		if ok = a.step(tolerate(a.h.DelAddr(a.name, p), hostnet.ErrNotFound)); ok {
			removed = append(removed, p)
		}
	}
	if len(removed) > 0 {
		ok = a.step(a.rec(applied{addrs: removed, removed: true})) && ok
	}
	return ok
}

// addRoutes adds the new routes longest prefixes first, like wg-quick's
// add_route, all in one batch, recorded ahead.
func (a *applier) addRoutes() bool {
	adds := slices.Clone(a.plan.Routes.Add)
	slices.SortStableFunc(adds, func(x, y hostnet.Route) int {
		return cmp.Or(cmp.Compare(x.Table, y.Table), cmp.Compare(y.Dst.Bits(), x.Dst.Bits()))
	})
	if len(adds) == 0 {
		return true
	}
	logRoutes(a.o, "add", adds)
	return a.step(a.rec(applied{routes: adds})) && a.step(a.h.AddRoutes(adds))
}

// removeRoutes removes the old routes in one batch, then records it.
func (a *applier) removeRoutes() bool {
	rs := a.plan.Routes.Remove
	if len(rs) == 0 {
		return true
	}
	logRoutes(a.o, "del", rs)
	return a.step(a.h.DelRoutes(rs)) && a.step(a.rec(applied{routes: rs, removed: true}))
}

// logRoutes logs a batch of route changes like `ip route VERB`, one line per
// route up to a few, then a count.
func logRoutes(o *Options, verb string, rs []hostnet.Route) {
	const show = 8
	for i, r := range rs {
		if i == show {
			o.logf("ip route %s: %d more through %s", verb, len(rs)-show, r.Dev)
			return
		}
		o.logf("ip route %s %s", verb, routeText(r))
	}
}

func routeText(r hostnet.Route) string {
	if r.Table != 0 {
		return fmt.Sprintf("%s dev %s table %d", r.Dst, r.Dev, r.Table)
	}
	return fmt.Sprintf("%s dev %s", r.Dst, r.Dev)
}

// snapshot is an interface as readRunning saw it, in a form that can be saved
// (secrets included: the file is 0600 in a 0700 directory) and restored.
type snapshot struct {
	PublicKey wgkey.Key `json:"public_key"`
	// PrivateKey is base64; empty when the device had none, or did not say.
	PrivateKey string            `json:"private_key,omitempty"`
	ListenPort int               `json:"listen_port"`
	FwMark     int               `json:"fwmark,omitempty"`
	Peers      []peerSnapshot    `json:"peers"`
	MTU        int               `json:"mtu"`
	Addresses  []netip.Prefix    `json:"addresses"`
	Routes     []hostnet.Route   `json:"routes"`
	Sysctls    map[string]string `json:"sysctls,omitempty"`
	Firewall   *hostnet.Firewall `json:"firewall,omitempty"`
	// Rules and TunnelFirewall are the full tunnel's, as read.
	Rules          []hostnet.Rule          `json:"rules,omitempty"`
	TunnelFirewall *hostnet.TunnelFirewall `json:"tunnel_firewall,omitempty"`
	// HostFirewall are the interface's rules in the host's iptables.
	HostFirewall []dockerfw.Rule `json:"host_firewall,omitempty"`
}

type peerSnapshot struct {
	PublicKey wgkey.Key `json:"public_key"`
	// PresharedKey is base64, empty for none; PresharedKeyUnknown is set when the
	// device said there is one but not what it is (then a restore leaves it).
	PresharedKey        string         `json:"preshared_key,omitempty"`
	PresharedKeyUnknown bool           `json:"preshared_key_unknown,omitempty"`
	Endpoint            netip.AddrPort `json:"endpoint,omitzero"` // as the device had it: roaming included
	Keepalive           int            `json:"persistent_keepalive,omitempty"`
	AllowedIPs          []netip.Prefix `json:"allowed_ips"`
}

func newSnapshot(r *running) *snapshot {
	s := &snapshot{
		PublicKey:  r.dev.PublicKey,
		ListenPort: r.dev.ListenPort,
		FwMark:     r.dev.FwMark,
		MTU:        r.mtu,
		Addresses:  slices.Clone(r.addresses),
		Routes:     slices.Clone(r.routes),
		Sysctls:    r.sysctls,
		Firewall:   r.firewall,

		HostFirewall: r.hostfwOurs,
	}
	if r.tunnel != nil {
		s.Rules, s.TunnelFirewall = slices.Clone(r.tunnel.rules), r.tunnel.fw
	}
	if !r.dev.PrivateKey.IsZero() {
		s.PrivateKey = r.dev.PrivateKey.Base64()
	}
	for _, p := range r.dev.Peers {
		ps := peerSnapshot{
			PublicKey:  p.PublicKey,
			Endpoint:   p.Endpoint,
			Keepalive:  int(p.PersistentKeepalive / time.Second),
			AllowedIPs: slices.Clone(p.AllowedIPs),
		}
		switch {
		case !p.PresharedKey.IsZero():
			ps.PresharedKey = p.PresharedKey.Base64()
		case p.HasPresharedKey:
			ps.PresharedKeyUnknown = true
		}
		s.Peers = append(s.Peers, ps)
	}
	return s
}

// target is what restoring the snapshot aims for. Endpoints are set back to what
// the device had, roaming included; keys the device did not report are left.
func (s *snapshot) target(name string) *target {
	port, fw := s.ListenPort, s.FwMark
	t := &target{
		dev:             &devconf.Want{ListenPort: &port, FwMark: &fw},
		mtu:             s.MTU,
		addresses:       sortedAddrs(s.Addresses),
		sysctls:         restoredSysctls(s.Sysctls),
		firewallManaged: true,
		firewall:        s.Firewall,
		firewallTable:   FirewallTable(name),
		tunnel:          &tunnelTarget{rules: slices.Clone(s.Rules), fw: s.TunnelFirewall},
		hostfw:          &hostFWTarget{want: s.HostFirewall},
	}
	switch k, err := wgkey.ParsePrivate(s.PrivateKey); {
	case err == nil:
		t.dev.PrivateKey = &k
	case s.PublicKey.IsZero():
		t.dev.PrivateKey = &wgkey.Private{}
	}
	for _, r := range s.Routes {
		t.routes = append(t.routes, normRoute(r))
	}
	slices.SortFunc(t.routes, compareRoute)
	for _, p := range s.Peers {
		wp := devconf.Peer{
			PublicKey:           p.PublicKey,
			Endpoint:            p.Endpoint,
			PersistentKeepalive: time.Duration(p.Keepalive) * time.Second,
			AllowedIPs:          sortedPrefixes(p.AllowedIPs),
			PresharedKeyUnknown: p.PresharedKeyUnknown,
		}
		if p.PresharedKey != "" {
			k, err := wgkey.ParsePrivate(p.PresharedKey)
			if err != nil {
				wp.PresharedKeyUnknown = true
			}
			wp.PresharedKey = k
		}
		t.dev.Peers = append(t.dev.Peers, wp)
	}
	return t
}
