// Package up brings one WireGuard interface up and down the way wg-quick(8) does,
// on whatever the host has: the kernel module, or upstream wireguard-go running as
// a background daemon (see package device). Everything is checked before anything
// is touched; every change is recorded in a state file (/run/wgnet/NAME.json) as
// it is made, a failure half-way undoes what was done, and Down removes exactly
// what the state file lists and restores the sysctls it changed. Status reports
// every WireGuard interface like `wg show`, with peers named by host.
//
// Sync changes a running interface (wgnet's, or one wg-quick made, which it
// adopts) to match a new config: it reads the interface back, works out a Plan
// (the device part with devconf, as the lab does) and applies only the
// difference, so that sessions of peers that stay are not disturbed, and undoes
// itself when a step fails. With a confirmation deadline (Confirm, TryUp) a
// detached timer process undoes a change that is not confirmed in time (see
// confirm.go and docs/sync.md).
//
// It imports device, devconf, hostnet, intent, trust, wgconf, wgkey and atomicfile;
// it must not import spec or compile (the command turns a spec into an
// intent.Host first; internal/layering enforces it).
package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/intent"
)

// Request is one interface to bring up or change.
type Request struct {
	// Name is the interface name.
	Name string
	// Host is what the interface should be: from the compiler, or a wg-quick file
	// read by intent.FromConfig (whose forwarding hooks become Host.Forward and
	// are not run; see docs/up.md).
	Host *intent.Host
	// Source says where the config came from, for the state file and show.
	Source string
}

// Backend names for Options.Backend.
const (
	BackendAuto      = "auto"
	BackendKernel    = device.BackendKernel
	BackendUserspace = device.BackendUserspace
)

// Options configure Up and Down. The zero value works on the real host: the state
// in NetnsStateDir(), the kernel backend when the module is there, else userspace.
type Options struct {
	// Backend is "auto" (or ""), "kernel" or "userspace".
	Backend string
	// StateDir holds state, pid and log files; "" means NetnsStateDir().
	StateDir string
	// NoForwarding leaves IP forwarding and MSS clamping alone, even when the
	// config asks for them (for hosts whose forwarding is managed elsewhere).
	NoForwarding bool
	// Log receives progress lines like wg-quick's "[#] ..."; nil means os.Stderr.
	Log io.Writer

	// Host is the host network; nil means hostnet.New().
	Host hostnet.HostNet
	// Iptables runs the host's iptables for its forward firewall (see
	// hostfw.go); nil means the real programs when Host is nil too (the real
	// host), else none (a fake host has no iptables).
	Iptables dockerfw.Runner
	// Devices creates and removes WireGuard interfaces; nil means the real
	// kernel and userspace backends.
	Devices Devices
	// RunHook runs a PreUp/PostUp/PreDown/PostDown command (with %i already
	// replaced); nil means `bash -c CMD`, like wg-quick.
	RunHook func(ctx context.Context, cmd string) error
	// Resolve turns an endpoint host name into an address; nil means the system
	// resolver (IPv4 preferred, like wg).
	Resolve func(ctx context.Context, host string) (netip.Addr, error)
	// Resolvconf is the resolvconf command that sets a config's DNS = (as
	// wg-quick does); "" means resolvconf on PATH.
	Resolvconf string
	// InterfaceOrder is resolvconf's interface-order file, read for the prefix
	// of the resolvconf record's name as wg-quick does; "" means
	// DefaultInterfaceOrder.
	InterfaceOrder string
	// OpenDevice opens a running interface to read it back (SaveConfig on
	// down); nil means device.OpenState.
	OpenDevice func(name string) (device.Device, *device.State, error)
	// RtTables are the directories whose rt_tables file (and rt_tables.d/*.conf)
	// name routing tables for Table = NAME, searched in order as iproute2 does;
	// nil means /etc/iproute2, then /usr/share/iproute2.
	RtTables []string
}

func (o *Options) defaults() {
	if o.Backend == "" {
		o.Backend = BackendAuto
	}
	if o.StateDir == "" {
		o.StateDir = NetnsStateDir()
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Iptables == nil {
		o.Iptables = noIptables{}
		if o.Host == nil {
			o.Iptables = dockerfw.Exec{}
		}
	}
	if o.Host == nil {
		o.Host = hostnet.New()
	}
	if o.Devices == nil {
		o.Devices = &SystemDevices{StateDir: o.StateDir}
	}
	if o.RunHook == nil {
		o.RunHook = func(ctx context.Context, cmd string) error {
			c := exec.CommandContext(ctx, "bash", "-c", cmd)
			c.Stdout, c.Stderr = o.Log, o.Log
			if err := c.Run(); err != nil {
				return fmt.Errorf("hook %q: %w", cmd, err)
			}
			return nil
		}
	}
	if o.Resolve == nil {
		o.Resolve = ResolveSystem
	}
}

// ResolveSystem resolves an endpoint host name with the system's resolver
// (bounded to 10 s), preferring an IPv4 address: what Options.Resolve does
// when nil.
func ResolveSystem(ctx context.Context, host string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("%s: no address", host)
	}
	return addrs[0], nil
}

func (o *Options) logf(format string, a ...any) {
	fmt.Fprintf(o.Log, "[#] "+format+"\n", a...)
}

// Check validates a request as Up would, without touching anything (endpoint
// host names are resolved).
func Check(ctx context.Context, req Request, opts Options) error {
	opts.defaults()
	p, err := makePlan(ctx, req, &opts)
	if err != nil {
		return err
	}
	return p.needResolvconf(&opts)
}

// Up brings the interface up: it must not be up already. Invalid input is
// refused before anything is touched; when a step fails, what was done is undone
// and the error says both.
func Up(ctx context.Context, req Request, opts Options) (*State, error) {
	so := SyncOptions{Options: opts}
	so.defaults()
	unlock, err := lockInterface(so.StateDir, req.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, _, err := upLocked(ctx, req, &so)
	return st, err
}

// upLocked checks that the interface is absent and creates it. A record left by
// an interface another tool removed is cleaned up first (cleanStaleLocked).
func upLocked(ctx context.Context, req Request, opts *SyncOptions) (*State, *Plan, error) {
	p, err := makePlan(ctx, req, &opts.Options)
	if err != nil {
		return nil, nil, err
	}
	if err := cleanStaleLocked(p.name, &opts.Options); err != nil {
		return nil, nil, err
	}
	if _, err := LoadState(opts.StateDir, p.name); err == nil {
		return nil, nil, &StateError{Kind: ErrAlreadyUp, Name: p.name, State: statePath(opts.StateDir, p.name),
			Msg: fmt.Sprintf("%s is already up (state in %s)", p.name, statePath(opts.StateDir, p.name))}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	if _, err := opts.Host.Link(p.name); err == nil {
		return nil, nil, &StateError{Kind: ErrExists, Name: p.name, Msg: fmt.Sprintf("interface %s already exists", p.name)}
	} else if !errors.Is(err, hostnet.ErrNotFound) {
		return nil, nil, err
	}
	return createLocked(ctx, req, p, opts)
}

// cleanStaleLocked removes what the state record of interface name lists when
// the interface itself is gone: removed by a foreign `ip link del` or
// `wg-quick down`, which leave wgnet's nftables table, routes in other tables,
// changed sysctls and the record behind. It says so in one line; its down hooks
// are not run (wg-quick down ran its own; after ip link del there is nothing for
// them to act on). Nothing is done when there is no record or the link is there.
func cleanStaleLocked(name string, o *Options) error {
	st, err := LoadState(o.StateDir, name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if _, err := o.Host.Link(name); err == nil {
		return nil
	} else if !errors.Is(err, hostnet.ErrNotFound) {
		return err
	}
	why := "ip link del or wg-quick down?"
	if st.LogFile != "" {
		why += " or its daemon died: see " + st.LogFile
	}
	o.logf("%s is gone but its record %s is not (%s): removing what the record lists, without its down hooks", name, statePath(o.StateDir, name), why)
	if err := teardown(st, o); err != nil {
		return fmt.Errorf("up %s: clean up after the interface removed by another tool: %w (state kept in %s)", name, err, statePath(o.StateDir, name))
	}
	return removeState(o.StateDir, name)
}

// FirewallTable is the nftables table (family inet) wgnet owns for interface name.
func FirewallTable(name string) string { return "wgnet-" + name }

func (o *Options) runHook(ctx context.Context, name, hook string) error {
	cmd := strings.ReplaceAll(hook, "%i", name)
	o.logf("%s", cmd)
	return o.RunHook(ctx, cmd)
}

// forwardingChanges works out the sysctls that turn on forwarding from interface
// name, as narrowly as the kernel allows, skipping those already on:
//
//   - IPv4: net.ipv4.conf.NAME.forwarding=1. IPv4 forwarding is decided by the
//     interface a packet came in on, so this forwards what arrives through the
//     tunnel and nothing else.
//   - IPv6: net.ipv6.conf.NAME.force_forwarding=1 (Linux 6.17+). Older kernels
//     only have the global switch: net.ipv6.conf.all.forwarding=1, and then
//     accept_ra=2 on every interface that had accept_ra=1, because a forwarding
//     host otherwise ignores router advertisements.
func forwardingChanges(h hostnet.HostNet, name string, v4, v6 bool) ([]SysctlChange, error) {
	var out []SysctlChange
	want := func(key, val string) error {
		old, err := h.Sysctl(key)
		if err != nil {
			return err
		}
		if old != val {
			out = append(out, SysctlChange{Key: key, Old: old, New: val})
		}
		return nil
	}
	if v4 {
		if err := want("net/ipv4/conf/"+name+"/forwarding", "1"); err != nil {
			return nil, err
		}
	}
	if v6 {
		ff := "net/ipv6/conf/" + name + "/force_forwarding"
		if _, err := h.Sysctl(ff); err == nil {
			if err := want(ff, "1"); err != nil {
				return nil, err
			}
		} else if errors.Is(err, hostnet.ErrNotFound) {
			links, err := h.Links()
			if err != nil {
				return nil, err
			}
			for _, l := range links {
				key := "net/ipv6/conf/" + l.Name + "/accept_ra"
				if v, err := h.Sysctl(key); err == nil && v == "1" {
					out = append(out, SysctlChange{Key: key, Old: v, New: "2"})
				}
			}
			if err := want("net/ipv6/conf/all/forwarding", "1"); err != nil {
				return nil, err
			}
		} else {
			return nil, err
		}
	}
	return out, nil
}

// isShared reports whether a sysctl key is host-wide rather than the interface's own.
func isShared(key, name string) bool { return !strings.Contains(key, "/conf/"+name+"/") }

// sharedNeeds returns the host-wide sysctls an interface that forwards IPv6 relies
// on: global IPv6 forwarding where the kernel has no per-interface switch.
func sharedNeeds(h hostnet.HostNet, name string, v6 bool) ([]string, error) {
	if !v6 {
		return nil, nil
	}
	if _, err := h.Sysctl("net/ipv6/conf/" + name + "/force_forwarding"); err == nil {
		return nil, nil
	} else if !errors.Is(err, hostnet.ErrNotFound) {
		return nil, err
	}
	return []string{"net/ipv6/conf/all/forwarding"}, nil
}

// handOverWait bounds the wait for another interface's lock in handOver. It is
// short: two interfaces going down at once each hold their own lock and want the
// other's; one of them gives up (its state stays, for down to run again) rather
// than both waiting forever.
const handOverWait = 2 * time.Second

// handOver gives c, a host-wide change the interface name made, to another
// interface of the state directory that still needs global IPv6 forwarding, so
// that the last one down restores the old value. It returns that interface's name,
// or "" when none needs it. It holds the heir's lock while it rewrites the heir's
// state (the caller holds name's); an heir whose lock stays taken is an error.
func handOver(dir, name string, c SysctlChange) (string, error) {
	names, err := Names(dir)
	if err != nil {
		return "", err
	}
	for _, other := range names {
		if other == name {
			continue
		}
		if st, err := LoadState(dir, other); err != nil || len(st.Needs) == 0 {
			continue
		}
		unlock, err := lockWithin(dir, other, handOverWait)
		if err != nil {
			return "", fmt.Errorf("hand %s over to %s: %w", hostnet.SysctlName(c.Key), other, err)
		}
		st, err := LoadState(dir, other) // again, under its lock
		if err != nil || len(st.Needs) == 0 {
			unlock()
			continue
		}
		if !slices.ContainsFunc(st.Sysctls, func(x SysctlChange) bool { return x.Key == c.Key }) {
			st.Sysctls = append([]SysctlChange{c}, st.Sysctls...) // restored last
		}
		err = st.save(dir)
		unlock()
		return other, err
	}
	return "", nil
}

// Down takes down an interface that Up brought up: PreDown hooks, then it removes
// exactly what the state file lists (firewall table, routes, addresses, the
// interface and its daemon), restores the sysctls it changed, runs PostDown, and
// removes the state file. A failing hook is reported but does not stop the rest.
func Down(ctx context.Context, name string, opts Options) error {
	opts.defaults()
	unlock, err := lockInterface(opts.StateDir, name)
	if err != nil {
		return err
	}
	defer unlock()
	return downLocked(ctx, name, &opts)
}

// downLocked is Down with the interface's lock held.
func downLocked(ctx context.Context, name string, opts *Options) error {
	st, err := LoadState(opts.StateDir, name)
	if errors.Is(err, os.ErrNotExist) {
		if _, lerr := opts.Host.Link(name); lerr == nil {
			return &StateError{Kind: ErrNotOurs, Name: name, State: statePath(opts.StateDir, name),
				Msg: fmt.Sprintf("down %s: the interface was not brought up by wgnet (no %s)", name, statePath(opts.StateDir, name))}
		}
		return &StateError{Kind: ErrNotUp, Name: name, State: statePath(opts.StateDir, name),
			Msg: fmt.Sprintf("down %s: not up (no %s)", name, statePath(opts.StateDir, name))}
	}
	if err != nil {
		return fmt.Errorf("down %s: %w", name, err)
	}
	var errs []error
	for _, hook := range st.PreDown {
		if err := opts.runHook(ctx, name, hook); err != nil {
			errs = append(errs, fmt.Errorf("PreDown: %w", err))
		}
	}
	if st.SaveConfig != "" {
		// As wg-quick: after PreDown, before anything is removed; a config that
		// can't be saved stops down, with the interface still up.
		if err := saveConfig(st, opts); err != nil {
			return fmt.Errorf("down %s: %w (nothing removed)", name, errors.Join(append(errs, err)...))
		}
	}
	if err := teardown(st, opts); err != nil {
		return fmt.Errorf("down %s: %w (state kept in %s; run down again after fixing)", name, errors.Join(append(errs, err)...), statePath(opts.StateDir, name))
	}
	for _, hook := range st.PostDown {
		if err := opts.runHook(ctx, name, hook); err != nil {
			errs = append(errs, fmt.Errorf("PostDown: %w", err))
		}
	}
	reportKept(st, opts)
	// A change waiting for `wgnet confirm` goes with the interface; its timer sees
	// the pending file gone and exits.
	if err := os.Remove(pendingPath(opts.StateDir, name)); err == nil {
		opts.logf("the change waiting for `wgnet confirm %s` is dropped with the interface", name)
	}
	if err := removeState(opts.StateDir, name); err != nil {
		errs = append(errs, err)
	}
	if err := dropOutcome(opts.StateDir, name); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("down %s: %w", name, errors.Join(errs...))
	}
	return nil
}

// teardown undoes what st records, newest first, and forgets each thing in st as
// it is undone. Things already gone are fine.
func teardown(st *State, o *Options) error {
	h := o.Host
	var errs []error
	unsetDNS(st, o)
	gone := func(err error) bool { return err == nil || errors.Is(err, hostnet.ErrNotFound) }
	errs = append(errs, teardownTunnel(st, o)...)
	if err := removeHostFirewall(st, o); err != nil {
		errs = append(errs, err)
	}
	if st.Firewall != "" {
		backend, _ := h.FirewallBackend()
		o.logf("delete %s", hostnet.FirewallWhere(backend, st.Firewall))
		if err := h.DeleteFirewall(st.Firewall); !gone(err) {
			errs = append(errs, err)
		} else {
			st.Firewall = ""
		}
	}
	for i := len(st.Sysctls) - 1; i >= 0; i-- {
		c := st.Sysctls[i]
		if isShared(c.Key, st.Name) {
			if cur, err := h.Sysctl(c.Key); err == nil && cur != c.New {
				o.logf("%s is %s, no longer wgnet's %s: left alone", hostnet.SysctlName(c.Key), cur, c.New)
				st.Sysctls = st.Sysctls[:i]
				continue
			}
			if heir, err := handOver(o.StateDir, st.Name, c); err != nil {
				errs = append(errs, err)
				continue
			} else if heir != "" {
				o.logf("%s=%s stays: %s needs it too (it restores %s on its down)", hostnet.SysctlName(c.Key), c.New, heir, c.Old)
				st.Sysctls = st.Sysctls[:i]
				continue
			}
		}
		o.logf("sysctl -w %s=%s", hostnet.SysctlName(c.Key), c.Old)
		if err := h.SetSysctl(c.Key, c.Old); !gone(err) {
			errs = append(errs, err)
			continue
		}
		st.Sysctls = st.Sysctls[:i]
	}
	// Routes newest first, in one batch. Those recorded ahead (planned) but never
	// added are skipped; on a failure all stay recorded, for the next down.
	if len(st.Routes) > 0 {
		rs := slices.Clone(st.Routes)
		slices.Reverse(rs)
		if err := h.DelRoutes(rs); !gone(err) {
			errs = append(errs, err)
		} else {
			st.Routes = nil
		}
	}
	for i := len(st.Addresses) - 1; i >= 0; i-- {
		if err := h.DelAddr(st.Name, st.Addresses[i]); !gone(err) {
			errs = append(errs, err)
			continue
		}
		st.Addresses = st.Addresses[:i]
	}
	if st.Backend != "" {
		o.logf("remove %s interface %s", st.Backend, st.Name)
		if err := o.Devices.Remove(Created{Backend: st.Backend, PID: st.PID, LogFile: st.LogFile}, st.Name); err != nil {
			errs = append(errs, err)
		} else {
			st.Backend, st.PID = "", 0
		}
	}
	if len(errs) > 0 {
		if err := st.save(o.StateDir); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	return nil
}

// Names lists the interfaces that have a state file in dir ("" means
// NetnsStateDir()).
func Names(dir string) ([]string, error) {
	if dir == "" {
		dir = NetnsStateDir()
	}
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range m {
		out = append(out, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	return out, nil
}
