package up

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/hostnet"
)

// Recorder records every call that changes the system, made through the
// HostNet, Devices and Open it wraps, as one line per change ("AddRoute
// 10.10.5.0/24 wg0 0", "wg wg0 peer KEY allowed-ips +10.10.5.0/24"). Tests
// compare what it saw with ExpectedCalls of the Plan the engine returned: the
// engine must make exactly the changes it says it makes. It is exported (in a
// test file) for the netns tests of package up_test.
type Recorder struct {
	mu    sync.Mutex // guards calls
	calls []string
}

func (r *Recorder) add(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, a...))
}

// Take returns the calls recorded since the last Take, sorted, and forgets them.
func (r *Recorder) Take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	slices.Sort(out)
	return out
}

// Host wraps h.
func (r *Recorder) Host(h hostnet.HostNet) hostnet.HostNet { return &recHost{HostNet: h, r: r} }

// Devices wraps d: Create and Remove are recorded, and the devices Create
// returns record their Configure calls.
func (r *Recorder) Devices(d Devices) Devices { return &recDevices{d: d, r: r} }

// Open wraps open (device.OpenState when nil).
func (r *Recorder) Open(open func(string) (device.Device, *device.State, error)) func(string) (device.Device, *device.State, error) {
	if open == nil {
		open = device.OpenState
	}
	return func(name string) (device.Device, *device.State, error) {
		d, st, err := open(name)
		if err != nil {
			return nil, nil, err
		}
		return r.Device(d), st, nil
	}
}

// Device wraps d.
func (r *Recorder) Device(d device.Device) device.Device { return &recDevice{Device: d, r: r} }

type recHost struct {
	hostnet.HostNet
	r *Recorder
}

func (h *recHost) SetMTU(name string, mtu int) error {
	h.r.add("SetMTU %s %d", name, mtu)
	return h.HostNet.SetMTU(name, mtu)
}

func (h *recHost) SetUp(name string, up bool) error {
	h.r.add("SetUp %s %v", name, up)
	return h.HostNet.SetUp(name, up)
}

func (h *recHost) AddAddr(name string, p netip.Prefix) error {
	h.r.add("AddAddr %s %s", name, p)
	return h.HostNet.AddAddr(name, p)
}

func (h *recHost) DelAddr(name string, p netip.Prefix) error {
	h.r.add("DelAddr %s %s", name, p)
	return h.HostNet.DelAddr(name, p)
}

func (h *recHost) AddRoute(rt hostnet.Route) error {
	h.r.add("AddRoute %s", routeLine(rt))
	return h.HostNet.AddRoute(rt)
}

func (h *recHost) DelRoute(rt hostnet.Route) error {
	h.r.add("DelRoute %s", routeLine(rt))
	return h.HostNet.DelRoute(rt)
}

func (h *recHost) AddRoutes(rs []hostnet.Route) error {
	for _, rt := range rs {
		h.r.add("AddRoute %s", routeLine(rt))
	}
	return h.HostNet.AddRoutes(rs)
}

func (h *recHost) DelRoutes(rs []hostnet.Route) error {
	for _, rt := range rs {
		h.r.add("DelRoute %s", routeLine(rt))
	}
	return h.HostNet.DelRoutes(rs)
}

func (h *recHost) SetSysctl(key, value string) error {
	h.r.add("SetSysctl %s=%s", key, value)
	return h.HostNet.SetSysctl(key, value)
}

func (h *recHost) ApplyFirewall(fw hostnet.Firewall) error {
	h.r.add("ApplyFirewall %s %v", fw.Table, fw.ClampMSS)
	return h.HostNet.ApplyFirewall(fw)
}

func (h *recHost) ForgetFlows(match func(hostnet.Flow) bool) (int, error) {
	h.r.add("ForgetFlows")
	return h.HostNet.ForgetFlows(match)
}

func (h *recHost) DeleteFirewall(table string) error {
	h.r.add("DeleteFirewall %s", table)
	return h.HostNet.DeleteFirewall(table)
}

func routeLine(rt hostnet.Route) string {
	rt = normRoute(rt)
	return fmt.Sprintf("%s dev %s table %d", rt.Dst, rt.Dev, rt.Table)
}

type recDevices struct {
	d Devices
	r *Recorder
}

func (d *recDevices) Create(ctx context.Context, req CreateRequest) (device.Device, Created, error) {
	d.r.add("Create %s", req.Name)
	dev, c, err := d.d.Create(ctx, req)
	if err != nil {
		return nil, c, err
	}
	return d.r.Device(dev), c, nil
}

func (d *recDevices) Remove(c Created, name string) error {
	d.r.add("Remove %s", name)
	return d.d.Remove(c, name)
}

// recDevice records Configure; it keeps telling whether the device removes
// single allowed IPs, which the engine asks.
type recDevice struct {
	device.Device
	r *Recorder
}

func (d *recDevice) RemovesAllowedIPs() bool { return device.RemovesAllowedIPs(d.Device) }

func (d *recDevice) Configure(c device.Config) error {
	for _, l := range configLines(d.Name(), c) {
		d.r.add("%s", l)
	}
	return d.Device.Configure(c)
}

// configLines is one line per thing a patch changes, plus one for the call.
func configLines(name string, c device.Config) []string {
	out := []string{"wg " + name + " configure"}
	l := func(format string, a ...any) { out = append(out, "wg "+name+" "+fmt.Sprintf(format, a...)) }
	if c.PrivateKey != nil {
		l("private-key")
	}
	if c.ListenPort != nil {
		l("listen-port %d", *c.ListenPort)
	}
	if c.FwMark != nil {
		l("fwmark %d", *c.FwMark)
	}
	if c.ReplacePeers {
		l("replace-peers")
	}
	for _, p := range c.Peers {
		k := p.PublicKey.String()
		if p.Remove {
			l("peer %s remove", k)
			continue
		}
		if p.ReplaceAllowedIPs {
			l("peer %s replace-allowed-ips", k)
		}
		for _, a := range p.RemoveAllowedIPs {
			l("peer %s allowed-ips -%s", k, a.Masked())
		}
		for _, a := range p.AllowedIPs {
			l("peer %s allowed-ips +%s", k, a.Masked())
		}
		if p.Endpoint != nil {
			l("peer %s endpoint %s", k, *p.Endpoint)
		}
		if p.PresharedKey != nil {
			l("peer %s preshared-key", k)
		}
		if p.PersistentKeepalive != nil {
			l("peer %s keepalive %d", k, int(p.PersistentKeepalive.Seconds()))
		}
	}
	return out
}

// ExpectedCalls are the calls a Plan says it makes, from the Plan's exported
// fields (and the link setup of an interface just created), sorted like
// Recorder.Take. A plan that removes an IPv4 address also turns on the
// interface's promote_secondaries, so that the other addresses stay (see
// applyPlan): that is part of removing an address, not a change of its own.
func ExpectedCalls(p *Plan) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	name := p.Interface
	if p.linkUp {
		add("Create %s", name)
		add("SetMTU %s %d", name, p.upMTU)
		add("SetUp %s true", name)
	}
	if p.MTU != nil && !p.linkUp {
		add("SetMTU %s %d", name, p.MTU.New)
	}
	for _, a := range p.Addresses.Add {
		add("AddAddr %s %s", name, a)
	}
	v4gone := false
	for _, a := range p.Addresses.Remove {
		add("DelAddr %s %s", name, a)
		v4gone = v4gone || a.Addr().Is4()
	}
	if v4gone {
		add("SetSysctl net/ipv4/conf/%s/promote_secondaries=1", name)
	}
	for _, r := range p.Routes.Add {
		add("AddRoute %s", routeLine(r))
	}
	for _, r := range p.Routes.Remove {
		add("DelRoute %s", routeLine(r))
	}
	for _, c := range p.Sysctls {
		add("SetSysctl %s=%s", c.Key, c.New)
	}
	if fw := p.Firewall; fw != nil {
		if fw.Action == "delete" {
			add("DeleteFirewall %s", fw.Table)
		} else {
			add("ApplyFirewall %s %v", fw.Table, fw.ClampMSS)
			if fw.forget != nil {
				add("ForgetFlows")
			}
		}
	}
	// The device: one Configure for what is added and changed, one for what is
	// removed (peers, and single allowed IPs).
	wg := func(format string, a ...any) { add("wg "+name+" "+format, a...) }
	adds, removes := false, false
	if p.PrivateKey {
		wg("private-key")
		adds = true
	}
	if p.ListenPort != nil {
		wg("listen-port %d", p.ListenPort.New)
		adds = true
	}
	if p.FwMark != nil {
		wg("fwmark %d", p.FwMark.New)
		adds = true
	}
	for _, c := range p.Peers {
		k := c.PublicKey.String()
		if c.Op == PeerRemove {
			wg("peer %s remove", k)
			removes = true
			continue
		}
		touched := false
		plus := c.AddAllowedIPs
		if c.Op == PeerAdd {
			plus = c.AllowedIPs
		}
		for _, a := range plus {
			wg("peer %s allowed-ips +%s", k, a)
			touched = true
		}
		if c.ReplaceAllowedIPs {
			wg("peer %s replace-allowed-ips", k)
			touched = true
		} else if len(c.RemoveAllowedIPs) > 0 {
			for _, a := range c.RemoveAllowedIPs {
				wg("peer %s allowed-ips -%s", k, a)
			}
			removes = true
		}
		if c.Endpoint != nil {
			wg("peer %s endpoint %s", k, c.Endpoint.New)
			touched = true
		}
		if c.PresharedKey != "" {
			wg("peer %s preshared-key", k)
			touched = true
		}
		if c.Keepalive != nil {
			wg("peer %s keepalive %d", k, c.Keepalive.New)
			touched = true
		}
		adds = adds || touched || c.Op == PeerAdd
	}
	if adds {
		wg("configure")
	}
	if removes {
		wg("configure")
	}
	slices.Sort(out)
	return out
}
