// Package hostnettest holds an in-memory hostnet.HostNet for unit tests, with
// failure injection and snapshots, and the conformance test every HostNet
// implementation passes (Run). For tests only; it imports hostnet and nothing else
// of wgnet.
package hostnettest

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/wgnet/wgnet/internal/hostnet"
)

// Fake is an in-memory host: links, addresses, routes, sysctls and firewall tables,
// behaving like Linux where package up relies on it (a deleted link takes its
// addresses, routes and per-interface sysctls with it; an address adds its prefix
// route; Add of an existing thing is ErrExists).
type Fake struct {
	mu sync.Mutex
	// guarded by mu:
	links   map[string]*fakeLink
	routes  []hostnet.Route // Table normalised to 0 for main
	sysctls map[string]string
	fws     map[string]hostnet.Firewall
	flows   []hostnet.Flow // connection tracking
	tunnel  tunnelParts    // rules and tunnel tables (fake_tunnel.go)
	next    int
	failOn  map[string]failure
	calls   []string
}

type fakeLink struct {
	hostnet.Link
	addrs []netip.Prefix
}

// perLinkSysctls are created with each link, copied from conf/default like Linux.
var perLinkSysctls = []string{
	"net/ipv4/conf/%s/forwarding",
	"net/ipv4/conf/%s/rp_filter",
	"net/ipv6/conf/%s/forwarding",
	"net/ipv6/conf/%s/force_forwarding",
	"net/ipv6/conf/%s/accept_ra",
}

// NewFake returns a host with loopback, the global forwarding sysctls (all off,
// accept_ra 1) and no firewall tables.
func NewFake() *Fake {
	f := &Fake{
		links: map[string]*fakeLink{},
		sysctls: map[string]string{
			"net/ipv4/ip_forward":                    "0",
			"net/ipv6/conf/all/forwarding":           "0",
			"net/ipv6/conf/all/force_forwarding":     "0",
			"net/ipv6/conf/all/accept_ra":            "1",
			"net/ipv4/conf/all/forwarding":           "0",
			"net/ipv4/conf/all/src_valid_mark":       "0",
			"net/ipv4/conf/default/forwarding":       "0",
			"net/ipv4/conf/default/rp_filter":        "1",
			"net/ipv6/conf/default/forwarding":       "0",
			"net/ipv6/conf/default/force_forwarding": "0",
			"net/ipv6/conf/default/accept_ra":        "1",
		},
		fws:    map[string]hostnet.Firewall{},
		tunnel: newTunnelParts(),
		failOn: map[string]failure{},
	}
	f.AddLink("lo", "loopback", 65536)
	return f
}

// AddLink creates a link (down, no addresses), as a device backend would.
func (f *Fake) AddLink(name, typ string, mtu int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	f.links[name] = &fakeLink{Link: hostnet.Link{Name: name, Index: f.next, Type: typ, MTU: mtu}}
	for _, k := range perLinkSysctls {
		def := f.sysctls[fmt.Sprintf(k, "default")]
		if def == "" {
			def = "0"
		}
		f.sysctls[fmt.Sprintf(k, name)] = def
	}
}

// DelLink removes a link with its addresses, routes and per-interface sysctls.
func (f *Fake) DelLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.links, name)
	f.routes = slices.DeleteFunc(f.routes, func(r hostnet.Route) bool { return r.Dev == name })
	for _, k := range perLinkSysctls {
		delete(f.sysctls, fmt.Sprintf(k, name))
	}
}

// failure is a fault injected into a method: after more successful calls, the
// next fails with err, or panics with Crash.
type failure struct {
	after int
	err   error
	crash bool
}

// Crash is what a call made to crash (CrashAfter) panics with.
type Crash struct{ Call string }

func (c Crash) String() string { return "hostnettest: crash at " + c.Call }

// FailOn makes the next call of method (e.g. "AddRoute") fail with err. The
// batch methods AddRoutes and DelRoutes count as one AddRoute or DelRoute call
// per route.
func (f *Fake) FailOn(method string, err error) { f.FailAfter(method, 0, err) }

// FailAfter lets n more calls of method succeed and makes the next one fail
// with err: FailAfter("AddRoute", 3, err) fails the fourth route of a batch.
func (f *Fake) FailAfter(method string, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failOn[method] = failure{after: n, err: err}
}

// CrashAfter lets n more calls of method succeed and makes the next one panic
// with a Crash, as if the process died there: nothing of the caller runs after
// it but deferred functions (the fake's lock is released), and what was done
// stays done. A test recovers the panic and goes on as the next process would.
func (f *Fake) CrashAfter(method string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failOn[method] = failure{after: n, crash: true}
}

// Calls returns the mutating calls made so far, e.g. "AddRoute 10.0.0.0/24 wg0 0".
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Snapshot is a deep copy of the fake's state, comparable with cmp.Diff.
type Snapshot struct {
	Links     map[string]hostnet.Link
	Addrs     map[string][]netip.Prefix
	Routes    []hostnet.Route
	Sysctls   map[string]string
	Firewalls map[string]hostnet.Firewall
	// Rules are both families' policy routing rules; TunnelFirewalls the
	// tunnel tables.
	Rules           []hostnet.Rule
	TunnelFirewalls map[string]hostnet.TunnelFirewall
}

// Snapshot returns the current state.
func (f *Fake) Snapshot() Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Snapshot{
		Links:     map[string]hostnet.Link{},
		Addrs:     map[string][]netip.Prefix{},
		Routes:    slices.Clone(f.routes),
		Sysctls:   maps.Clone(f.sysctls),
		Firewalls: map[string]hostnet.Firewall{},
	}
	for n, l := range f.links {
		s.Links[n] = l.Link
		s.Addrs[n] = slices.Clone(l.addrs)
	}
	for n, fw := range f.fws {
		s.Firewalls[n] = fw.Clone()
	}
	s.Rules, s.TunnelFirewalls = f.tunnel.snapshot()
	slices.SortFunc(s.Routes, func(a, b hostnet.Route) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
	return s
}

// begin records a call and returns the injected failure, if any. mu must be held.
func (f *Fake) beginLocked(method string, args ...any) error {
	call := strings.TrimSpace(method + " " + fmt.Sprintln(args...))
	f.calls = append(f.calls, call)
	fl, ok := f.failOn[method]
	switch {
	case !ok:
		return nil
	case fl.after > 0:
		fl.after--
		f.failOn[method] = fl
		return nil
	}
	delete(f.failOn, method)
	if fl.crash {
		panic(Crash{Call: call})
	}
	return fmt.Errorf("%s: %w", method, fl.err)
}

func (f *Fake) linkLocked(name string) (*fakeLink, error) {
	l, ok := f.links[name]
	if !ok {
		return nil, fmt.Errorf("link %s: %w", name, hostnet.ErrNotFound)
	}
	return l, nil
}

func (f *Fake) Links() ([]hostnet.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []hostnet.Link
	for _, l := range f.links {
		out = append(out, l.Link)
	}
	slices.SortFunc(out, func(a, b hostnet.Link) int { return a.Index - b.Index })
	return out, nil
}

func (f *Fake) Link(name string) (hostnet.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.linkLocked(name)
	if err != nil {
		return hostnet.Link{}, err
	}
	return l.Link, nil
}

func (f *Fake) SetMTU(name string, mtu int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("SetMTU", name, mtu); err != nil {
		return err
	}
	l, err := f.linkLocked(name)
	if err != nil {
		return err
	}
	if mtu < 68 || mtu > 65535 {
		return fmt.Errorf("set mtu %d on %s: invalid argument", mtu, name)
	}
	l.MTU = mtu
	return nil
}

func (f *Fake) SetUp(name string, up bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("SetUp", name, up); err != nil {
		return err
	}
	l, err := f.linkLocked(name)
	if err != nil {
		return err
	}
	l.Up = up
	return nil
}

func (f *Fake) Addrs(name string) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.linkLocked(name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.addrs), nil
}

func (f *Fake) AddAddr(name string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("AddAddr", name, p); err != nil {
		return err
	}
	l, err := f.linkLocked(name)
	if err != nil {
		return err
	}
	if slices.Contains(l.addrs, p) {
		return fmt.Errorf("add address %s to %s: %w", p, name, hostnet.ErrExists)
	}
	l.addrs = append(l.addrs, p)
	r := hostnet.Route{Dst: p.Masked(), Dev: name}
	if p.Bits() < p.Addr().BitLen() && !slices.Contains(f.routes, r) {
		f.routes = append(f.routes, r) // the kernel's prefix route
	}
	return nil
}

func (f *Fake) DelAddr(name string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("DelAddr", name, p); err != nil {
		return err
	}
	l, err := f.linkLocked(name)
	if err != nil {
		return err
	}
	i := slices.Index(l.addrs, p)
	if i < 0 {
		return fmt.Errorf("delete address %s from %s: %w", p, name, hostnet.ErrNotFound)
	}
	l.addrs = slices.Delete(l.addrs, i, i+1)
	// The prefix route stays while another address of the link is in the prefix
	// (IPv6 keeps it per prefix; IPv4 promotes a secondary address, as it does
	// with promote_secondaries, which up turns on before removing one).
	if slices.ContainsFunc(l.addrs, func(a netip.Prefix) bool { return a.Masked() == p.Masked() }) {
		return nil
	}
	f.routes = slices.DeleteFunc(f.routes, func(r hostnet.Route) bool {
		return r == hostnet.Route{Dst: p.Masked(), Dev: name}
	})
	return nil
}

func normTable(t int) int {
	if t == hostnet.TableMain {
		return 0
	}
	return t
}

func (f *Fake) Routes(name string, table int) ([]hostnet.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.linkLocked(name); err != nil {
		return nil, err
	}
	var out []hostnet.Route
	for _, r := range f.routes {
		if r.Dev == name && r.Table == normTable(table) {
			r.Table = table
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *Fake) AddRoute(r hostnet.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addRouteLocked(r)
}

func (f *Fake) addRouteLocked(r hostnet.Route) error {
	if err := f.beginLocked("AddRoute", r.Dst, r.Dev, r.Table); err != nil {
		return err
	}
	if _, err := f.linkLocked(r.Dev); err != nil {
		return err
	}
	r.Dst, r.Table = r.Dst.Masked(), normTable(r.Table)
	if slices.Contains(f.routes, r) {
		return fmt.Errorf("add route %s dev %s: %w", r.Dst, r.Dev, hostnet.ErrExists)
	}
	f.routes = append(f.routes, r)
	return nil
}

func (f *Fake) DelRoute(r hostnet.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.delRouteLocked(r)
}

func (f *Fake) delRouteLocked(r hostnet.Route) error {
	if err := f.beginLocked("DelRoute", r.Dst, r.Dev, r.Table); err != nil {
		return err
	}
	r.Dst, r.Table = r.Dst.Masked(), normTable(r.Table)
	i := slices.Index(f.routes, r)
	if i < 0 {
		return fmt.Errorf("delete route %s dev %s: %w", r.Dst, r.Dev, hostnet.ErrNotFound)
	}
	f.routes = slices.Delete(f.routes, i, i+1)
	return nil
}

// AddRoutes adds each route as AddRoute does (and records an AddRoute call for
// each), skipping those already there.
func (f *Fake) AddRoutes(rs []hostnet.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rs {
		if err := f.addRouteLocked(r); err != nil && !errors.Is(err, hostnet.ErrExists) {
			return err
		}
	}
	return nil
}

// DelRoutes deletes each route as DelRoute does (and records a DelRoute call
// for each), skipping those not there.
func (f *Fake) DelRoutes(rs []hostnet.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rs {
		if err := f.delRouteLocked(r); err != nil && !errors.Is(err, hostnet.ErrNotFound) {
			return err
		}
	}
	return nil
}

// RouteMTU returns the MTU of the link of the longest main-table route to dst.
func (f *Fake) RouteMTU(dst netip.Addr) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	best := -1
	mtu := 0
	for _, r := range f.routes {
		if r.Table != 0 {
			continue
		}
		match := (!dst.IsValid() && r.Dst.Bits() == 0 && r.Dst.Addr().Is4()) ||
			(dst.IsValid() && r.Dst.Contains(dst))
		if match && r.Dst.Bits() > best {
			if l, ok := f.links[r.Dev]; ok {
				best, mtu = r.Dst.Bits(), l.MTU
			}
		}
	}
	return mtu, nil
}

func (f *Fake) Sysctl(key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.sysctls[key]
	if !ok {
		return "", fmt.Errorf("sysctl %s: %w", hostnet.SysctlName(key), hostnet.ErrNotFound)
	}
	return v, nil
}

func (f *Fake) SetSysctl(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("SetSysctl", key, value); err != nil {
		return err
	}
	if _, ok := f.sysctls[key]; !ok {
		return fmt.Errorf("sysctl -w %s=%s: %w", hostnet.SysctlName(key), value, hostnet.ErrNotFound)
	}
	f.sysctls[key] = value
	return nil
}

// SetSysctlValue creates or changes a sysctl without recording a call, to set up
// a test (e.g. to remove force_forwarding as on kernels before 6.17, pass "").
func (f *Fake) SetSysctlValue(key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if value == "" {
		delete(f.sysctls, key)
		return
	}
	f.sysctls[key] = value
}

func (f *Fake) ApplyFirewall(fw hostnet.Firewall) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("ApplyFirewall", fw.Table, fw.ClampMSS, fw.DropRedirects, filterText(fw.Filter)); err != nil {
		return err
	}
	if err := fw.Filter.Validate(); err != nil {
		return fmt.Errorf("firewall %s: %w", fw.Table, err)
	}
	f.fws[fw.Table] = fw.Clone()
	return nil
}

func (f *Fake) Firewall(table string) (hostnet.Firewall, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fw, ok := f.fws[table]
	if !ok {
		return hostnet.Firewall{}, fmt.Errorf("firewall %s: %w", table, hostnet.ErrNotFound)
	}
	return fw.Clone(), nil
}

func (f *Fake) DeleteFirewall(table string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("DeleteFirewall", table); err != nil {
		return err
	}
	if _, ok := f.fws[table]; !ok {
		return fmt.Errorf("delete firewall %s: %w", table, hostnet.ErrNotFound)
	}
	delete(f.fws, table)
	return nil
}

// filterText is a filter in a recorded call: its interface, rule count and default.
func filterText(fl *hostnet.Filter) string {
	if fl == nil {
		return "no-filter"
	}
	return fmt.Sprintf("filter %s %d rules default-accept=%v", fl.Iface, len(fl.Rules), fl.DefaultAccept)
}

// AddFlow adds a connection-tracking entry, as a connection would.
func (f *Fake) AddFlow(fl hostnet.Flow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flows = append(f.flows, fl)
}

// Flows returns the connection-tracking entries.
func (f *Fake) Flows() []hostnet.Flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.flows)
}

func (f *Fake) ForgetFlows(match func(hostnet.Flow) bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginLocked("ForgetFlows"); err != nil {
		return 0, err
	}
	n := len(f.flows)
	f.flows = slices.DeleteFunc(f.flows, match)
	return n - len(f.flows), nil
}

var _ hostnet.HostNet = (*Fake)(nil)
