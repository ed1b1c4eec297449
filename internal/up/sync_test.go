package up

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/device/devicetest"
	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/hostnet/hostnettest"
	"github.com/wgnet/wgnet/internal/wgconf"
	"github.com/wgnet/wgnet/internal/wgkey"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// syncOpts are the fixture's options for Sync: devices opened from the fake, and
// no timer process (tests run RunTimer themselves).
func (fx *fixture) syncOpts() SyncOptions {
	return SyncOptions{
		Options: fx.opts,
		Open: func(name string) (device.Device, *device.State, error) {
			d, ok := fx.devs.devs[name]
			if !ok {
				return nil, nil, fmt.Errorf("open %s: %w", name, device.ErrNotFound)
			}
			return handle{d}, nil, nil
		},
		Confirm: Confirm{Spawn: func(*Pending, string) (int, error) { return 0, nil }},
	}
}

// world is everything a sync may change, for before/after comparisons.
type world struct {
	Host  hostnettest.Snapshot
	Dev   *device.State
	State string // the state file
}

func (fx *fixture) world(t *testing.T, name string) world {
	t.Helper()
	w := world{Host: fx.host.Snapshot()}
	if d, ok := fx.devs.devs[name]; ok {
		st, err := d.State()
		if err != nil {
			t.Fatal(err)
		}
		st.Normalize()
		w.Dev = st
	}
	if b, err := os.ReadFile(statePath(fx.opts.StateDir, name)); err == nil {
		w.State = string(b)
	}
	return w
}

var worldOpts = append(slices.Clone(cmpOpts), cmpopts.SortSlices(func(a, b netip.Prefix) bool { return comparePrefix(a, b) < 0 }))

// keys are fixed keys, so that golden files are stable.
func fixedPrivate(n byte) wgkey.Private {
	var k wgkey.Private
	for i := range k {
		k[i] = n + byte(i)
	}
	return k
}

func fixedPeer(n byte) wgkey.Key { return fixedPrivate(n).Public() }

func pfxs(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func ep(s string) *wgconf.Endpoint {
	e, err := wgconf.ParseEndpoint(s)
	if err != nil {
		panic(err)
	}
	return &e
}

// hubConfig is a hub with three spokes, the base the table tests change.
func hubConfig() *wgconf.Config {
	port := uint16(51820)
	return &wgconf.Config{
		Interface: wgconf.Interface{
			PrivateKey: fixedPrivate(1),
			ListenPort: &port,
			Addresses:  pfxs("10.99.0.1/24", "fd00:99::1/64"),
		},
		Peers: []wgconf.Peer{
			{Name: "s1", PublicKey: fixedPeer(2), AllowedIPs: pfxs("10.99.0.2/32", "10.10.2.0/24", "fd00:10:2::/64"), Endpoint: ep("198.18.0.2:51820"), PersistentKeepalive: 25},
			{Name: "s2", PublicKey: fixedPeer(3), AllowedIPs: pfxs("10.99.0.3/32", "10.10.3.0/24")},
			{Name: "s3", PublicKey: fixedPeer(4), AllowedIPs: pfxs("10.99.0.4/32")},
		},
	}
}

func clone(c *wgconf.Config) *wgconf.Config {
	out := *c
	out.Interface.Addresses = slices.Clone(c.Interface.Addresses)
	out.Peers = nil
	for _, p := range c.Peers {
		p.AllowedIPs = slices.Clone(p.AllowedIPs)
		out.Peers = append(out.Peers, p)
	}
	return &out
}

func (fx *fixture) up(t *testing.T, c *wgconf.Config, fwd bool) {
	t.Helper()
	if _, err := Up(context.Background(), req("wg0", c, fwd, fwd), fx.opts); err != nil {
		t.Fatalf("Up: %v\n%s", err, fx.log.String())
	}
}

func peerKeys(cs []PeerChange) []wgkey.Key {
	var out []wgkey.Key
	for _, c := range cs {
		out = append(out, c.PublicKey)
	}
	slices.SortFunc(out, func(a, b wgkey.Key) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(out)
}

// TestSync changes one thing at a time on a running hub and checks the plan, that
// only the changed peers were touched, and that the result is what Up of the new
// config makes from scratch.
func TestSync(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(c *wgconf.Config)
		fwd    bool // the new config asks for forwarding (the old one does)
		noRm   bool // the device cannot remove single allowed IPs
		want   func(p *Plan)
		routes RouteChanges
	}{
		{
			name: "nothing",
			edit: func(c *wgconf.Config) {},
			fwd:  true,
			want: func(p *Plan) {},
		},
		{
			name: "add a peer with a routed subnet",
			edit: func(c *wgconf.Config) {
				c.Peers = append(c.Peers, wgconf.Peer{Name: "s4", PublicKey: fixedPeer(5), AllowedIPs: pfxs("10.99.0.5/32", "10.10.5.0/24"), PresharedKey: fixedPeer(9), PersistentKeepalive: 25, Endpoint: ep("198.18.0.5:51820")})
			},
			fwd: true,
			want: func(p *Plan) {
				p.Peers = []PeerChange{{Op: PeerAdd, Name: "s4", PublicKey: fixedPeer(5), AllowedIPs: pfxs("10.10.5.0/24", "10.99.0.5/32"),
					Endpoint: &Change[string]{New: "198.18.0.5:51820"}, PresharedKey: "set", Keepalive: &Change[int]{New: 25}}}
				p.Routes.Add = []hostnet.Route{{Dst: netip.MustParsePrefix("10.10.5.0/24"), Dev: "wg0"}}
			},
		},
		{
			name: "remove a peer",
			edit: func(c *wgconf.Config) { c.Peers = slices.Delete(c.Peers, 1, 2) },
			fwd:  true,
			want: func(p *Plan) {
				p.Peers = []PeerChange{{Op: PeerRemove, Name: "s2", PublicKey: fixedPeer(3), AllowedIPs: pfxs("10.10.3.0/24", "10.99.0.3/32")}}
				p.Routes.Remove = []hostnet.Route{{Dst: netip.MustParsePrefix("10.10.3.0/24"), Dev: "wg0"}}
			},
		},
		{
			name: "change one peer's routed subnets",
			edit: func(c *wgconf.Config) { c.Peers[0].AllowedIPs = pfxs("10.99.0.2/32", "10.10.2.0/24", "10.20.2.0/24") },
			fwd:  true,
			want: func(p *Plan) {
				p.Peers = []PeerChange{{Op: PeerUpdate, Name: "s1", PublicKey: fixedPeer(2), AddAllowedIPs: pfxs("10.20.2.0/24"), RemoveAllowedIPs: pfxs("fd00:10:2::/64")}}
				p.Routes.Add = []hostnet.Route{{Dst: netip.MustParsePrefix("10.20.2.0/24"), Dev: "wg0"}}
				p.Routes.Remove = []hostnet.Route{{Dst: netip.MustParsePrefix("fd00:10:2::/64"), Dev: "wg0"}}
			},
		},
		{
			name: "change one peer's routed subnets on a device that cannot remove one",
			edit: func(c *wgconf.Config) { c.Peers[0].AllowedIPs = pfxs("10.99.0.2/32", "10.10.2.0/24") },
			fwd:  true,
			noRm: true,
			want: func(p *Plan) {
				p.Peers = []PeerChange{{Op: PeerUpdate, Name: "s1", PublicKey: fixedPeer(2), RemoveAllowedIPs: pfxs("fd00:10:2::/64"), ReplaceAllowedIPs: true}}
				p.Routes.Remove = []hostnet.Route{{Dst: netip.MustParsePrefix("fd00:10:2::/64"), Dev: "wg0"}}
			},
		},
		{
			name: "move a prefix from one peer to another",
			edit: func(c *wgconf.Config) {
				c.Peers[0].AllowedIPs = pfxs("10.99.0.2/32", "fd00:10:2::/64")
				c.Peers[1].AllowedIPs = pfxs("10.99.0.3/32", "10.10.3.0/24", "10.10.2.0/24")
			},
			fwd: true,
			want: func(p *Plan) {
				p.Peers = []PeerChange{
					{Op: PeerUpdate, Name: "s1", PublicKey: fixedPeer(2), RemoveAllowedIPs: pfxs("10.10.2.0/24")},
					{Op: PeerUpdate, Name: "s2", PublicKey: fixedPeer(3), AddAllowedIPs: pfxs("10.10.2.0/24")},
				}
			},
		},
		{
			name: "endpoint, keepalive and preshared key of one peer",
			edit: func(c *wgconf.Config) {
				c.Peers[0].Endpoint = ep("198.18.0.22:51820")
				c.Peers[0].PersistentKeepalive = 0
				c.Peers[2].PresharedKey = fixedPeer(7)
			},
			fwd: true,
			want: func(p *Plan) {
				p.Peers = []PeerChange{
					{Op: PeerUpdate, Name: "s1", PublicKey: fixedPeer(2), Endpoint: &Change[string]{Old: "198.18.0.2:51820", New: "198.18.0.22:51820"}, Keepalive: &Change[int]{Old: 25}},
					{Op: PeerUpdate, Name: "s3", PublicKey: fixedPeer(4), PresharedKey: "set"},
				}
			},
		},
		{
			name: "private key and port",
			edit: func(c *wgconf.Config) {
				c.Interface.PrivateKey = fixedPrivate(8)
				port := uint16(51821)
				c.Interface.ListenPort = &port
			},
			fwd: true,
			want: func(p *Plan) {
				p.PrivateKey = true
				pub := fixedPrivate(8).Public()
				p.PublicKey = &pub
				p.ListenPort = &Change[int]{Old: 51820, New: 51821}
			},
		},
		{
			name: "no listen port in the config keeps the running one",
			edit: func(c *wgconf.Config) { c.Interface.ListenPort = nil },
			fwd:  true,
			want: func(p *Plan) {},
		},
		{
			name: "addresses and MTU",
			edit: func(c *wgconf.Config) {
				c.Interface.Addresses = pfxs("10.99.0.1/24", "10.98.0.1/24")
				c.Interface.MTU = 1380
			},
			fwd: true,
			want: func(p *Plan) {
				p.MTU = &Change[int]{Old: 1420, New: 1380}
				p.Addresses = PrefixChanges{Add: pfxs("10.98.0.1/24"), Remove: pfxs("fd00:99::1/64")}
			},
		},
		{
			name: "forwarding no longer needed",
			edit: func(c *wgconf.Config) {},
			fwd:  false,
			want: func(p *Plan) {
				p.Sysctls = []SysctlChange{
					{Key: "net/ipv4/conf/wg0/forwarding", Old: "1", New: "0"},
					{Key: "net/ipv6/conf/wg0/force_forwarding", Old: "1", New: "0"},
				}
				p.Firewall = &FirewallChange{Action: "delete", Table: "wgnet-wg0"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			old := hubConfig()
			fx.up(t, old, true)
			dev := fx.devs.devs["wg0"]
			dev.SetNoRemoval(tt.noRm)
			dev.Touched()
			neu := clone(old)
			tt.edit(neu)
			req := req("wg0", neu, tt.fwd, tt.fwd)

			plan, err := Sync(context.Background(), req, fx.syncOpts())
			if err != nil {
				t.Fatalf("Sync: %v\n%s", err, fx.log.String())
			}
			want := &Plan{Interface: "wg0"}
			tt.want(want)
			ignore := cmpopts.IgnoreFields(Plan{}, "Notes")
			if diff := cmp.Diff(want, plan, ignore, cmpopts.IgnoreUnexported(Plan{}, PeerChange{}, FirewallChange{}), cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("plan (-want +got):\n%s\n%s", diff, planText(plan))
			}
			if diff := cmp.Diff(peerKeys(plan.Peers), peerKeys(touchedChanges(dev.Touched()))); diff != "" {
				t.Errorf("peers touched on the device, beyond the plan's (-plan +touched):\n%s", diff)
			}
			// The slow obvious way: up the new config on a fresh host.
			fresh := newFixture(t)
			fresh.up(t, neu, tt.fwd)
			got, wantW := fx.world(t, "wg0"), fresh.world(t, "wg0")
			if neu.Interface.ListenPort == nil {
				wantW.Dev.ListenPort = got.Dev.ListenPort
			}
			if diff := cmp.Diff(wantW.Host, got.Host, worldOpts...); diff != "" {
				t.Errorf("host after sync differs from up of the new config (-up +sync):\n%s", diff)
			}
			if diff := cmp.Diff(wantW.Dev, got.Dev, worldOpts...); diff != "" {
				t.Errorf("device after sync differs from up of the new config (-up +sync):\n%s", diff)
			}
			// A second sync finds nothing to do.
			again, err := PlanSync(context.Background(), req, fx.syncOpts())
			if err != nil {
				t.Fatal(err)
			}
			if !again.Empty() {
				t.Errorf("second sync is not empty:\n%s", planText(again))
			}
			// And down still removes everything.
			if err := Down(context.Background(), "wg0", fx.opts); err != nil {
				t.Fatalf("Down after sync: %v", err)
			}
			before := newFixture(t).host.Snapshot()
			if diff := cmp.Diff(before, fx.host.Snapshot(), worldOpts...); diff != "" {
				t.Errorf("down after sync did not restore the host (-fresh +after):\n%s", diff)
			}
		})
	}
}

// touchedChanges wraps keys as changes, for peerKeys.
func touchedChanges(ks []wgkey.Key) []PeerChange {
	var out []PeerChange
	for _, k := range ks {
		out = append(out, PeerChange{PublicKey: k})
	}
	return out
}

// TestSyncRandom checks Sync against the slow obvious way on random pairs of
// configs: Up(A) then Sync(B) leaves host and device exactly as Up(B) does on a
// fresh host, touches exactly the peers whose config differs, and a sync back to A
// gives Up(A).
func TestSyncRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pool := pfxs("10.10.1.0/24", "10.10.2.0/24", "10.10.3.0/24", "10.10.4.0/24", "10.99.0.2/32", "10.99.0.3/32",
		"10.99.0.4/32", "fd00:10:1::/64", "fd00:10:2::/64", "10.20.0.0/16", "10.20.1.0/24", "192.168.7.0/24")
	addrs := pfxs("10.99.0.1/24", "fd00:99::1/64", "10.98.0.1/24")
	endpoints := []string{"198.18.0.2:51820", "198.18.0.3:51820", "198.18.0.4:4242"}
	peers := []wgkey.Key{fixedPeer(10), fixedPeer(11), fixedPeer(12), fixedPeer(13), fixedPeer(14), fixedPeer(15)}
	random := func() (*wgconf.Config, bool) {
		port := uint16(51820 + r.IntN(2))
		c := &wgconf.Config{Interface: wgconf.Interface{PrivateKey: fixedPrivate(byte(1 + r.IntN(2))), ListenPort: &port}}
		for _, a := range addrs {
			if r.IntN(2) == 0 || len(c.Interface.Addresses) == 0 && a == addrs[len(addrs)-1] {
				c.Interface.Addresses = append(c.Interface.Addresses, a)
			}
		}
		owner := make([]int, len(pool))
		for i := range owner {
			owner[i] = r.IntN(len(peers) + 1) // len(peers): nobody
		}
		for i, k := range peers {
			if r.IntN(3) == 0 {
				continue
			}
			p := wgconf.Peer{PublicKey: k, PersistentKeepalive: 25 * r.IntN(2)}
			for j, o := range owner {
				if o == i {
					p.AllowedIPs = append(p.AllowedIPs, pool[j])
				}
			}
			if i%2 == 0 { // an endpoint can be changed, not removed
				p.Endpoint = ep(endpoints[r.IntN(len(endpoints))])
			}
			if r.IntN(2) == 0 {
				p.PresharedKey = fixedPeer(byte(40 + r.IntN(2)))
			}
			c.Peers = append(c.Peers, p)
		}
		return c, r.IntN(2) == 0
	}
	// peerText is a peer's configuration, for the slow comparison of what changed.
	peerText := func(c *wgconf.Config) map[wgkey.Key]string {
		out := map[wgkey.Key]string{}
		for _, p := range c.Peers {
			out[p.PublicKey] = fmt.Sprint(sortedPrefixes(p.AllowedIPs), p.Endpoint, p.PresharedKey, p.PersistentKeepalive)
		}
		return out
	}
	var stats struct{ plans, peers, replaced, routes, sysctls, firewalls int }
	defer func() { t.Logf("changes seen: %+v", stats) }()
	for i := range 150 {
		a, fa := random()
		b, fb := random()
		noRm := i%3 == 0
		fx := newFixture(t)
		fx.up(t, a, fa)
		dev := fx.devs.devs["wg0"]
		dev.SetNoRemoval(noRm)
		dev.Touched()
		plan, err := Sync(context.Background(), req("wg0", b, fb, fb), fx.syncOpts())
		if err != nil {
			t.Fatalf("case %d: Sync: %v", i, err)
		}
		if !plan.Empty() {
			stats.plans++
		}
		stats.peers += len(plan.Peers)
		for _, c := range plan.Peers {
			if c.ReplaceAllowedIPs {
				stats.replaced++
			}
		}
		stats.routes += len(plan.Routes.Add) + len(plan.Routes.Remove)
		stats.sysctls += len(plan.Sysctls)
		if plan.Firewall != nil {
			stats.firewalls++
		}
		ta, tb := peerText(a), peerText(b)
		var changed []wgkey.Key
		for k := range ta {
			if tb[k] != ta[k] {
				changed = append(changed, k)
			}
		}
		for k := range tb {
			if _, ok := ta[k]; !ok {
				changed = append(changed, k)
			}
		}
		if diff := cmp.Diff(peerKeys(touchedChanges(changed)), peerKeys(plan.Peers), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("case %d: peers in the plan (-changed in config +plan):\n%s", i, diff)
		}
		if diff := cmp.Diff(peerKeys(plan.Peers), peerKeys(touchedChanges(dev.Touched())), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("case %d: peers touched (-plan +device):\n%s", i, diff)
		}
		fresh := newFixture(t)
		fresh.up(t, b, fb)
		got, want := fx.world(t, "wg0"), fresh.world(t, "wg0")
		if diff := cmp.Diff(want.Host, got.Host, worldOpts...); diff != "" {
			t.Fatalf("case %d: host (-up B +sync A to B):\n%s\nplan:\n%s", i, diff, planText(plan))
		}
		if diff := cmp.Diff(want.Dev, got.Dev, worldOpts...); diff != "" {
			t.Fatalf("case %d: device (-up B +sync A to B):\n%s\nplan:\n%s", i, diff, planText(plan))
		}
		// And back.
		if _, err := Sync(context.Background(), req("wg0", a, fa, fa), fx.syncOpts()); err != nil {
			t.Fatalf("case %d: Sync back: %v", i, err)
		}
		back := newFixture(t)
		back.up(t, a, fa)
		got, want = fx.world(t, "wg0"), back.world(t, "wg0")
		if diff := cmp.Diff(want.Host, got.Host, worldOpts...); diff != "" {
			t.Fatalf("case %d: host (-up A +sync B back to A):\n%s", i, diff)
		}
		if diff := cmp.Diff(want.Dev, got.Dev, worldOpts...); diff != "" {
			t.Fatalf("case %d: device (-up A +sync B back to A):\n%s", i, diff)
		}
	}
}

// TestSyncFailureRestores fails each step a sync takes in turn: the sync reports
// the failure and leaves host, device and state file as they were.
func TestSyncFailureRestores(t *testing.T) {
	// on turns forwarding on and adds things; off turns it off and removes things.
	on := func(c *wgconf.Config) {
		c.Interface.MTU = 1380
		c.Interface.Addresses = append(c.Interface.Addresses, netip.MustParsePrefix("10.98.0.1/24"))
		c.Peers = append(c.Peers, wgconf.Peer{Name: "s4", PublicKey: fixedPeer(5), AllowedIPs: pfxs("10.99.0.5/32", "10.10.5.0/24")})
		c.Peers[0].AllowedIPs = pfxs("10.99.0.2/32")
	}
	off := func(c *wgconf.Config) {
		c.Interface.Addresses = c.Interface.Addresses[:1]
		c.Peers = c.Peers[:2]
		c.Peers[0].AllowedIPs = pfxs("10.99.0.2/32", "10.10.2.0/24", "10.20.2.0/24")
	}
	for _, tt := range []struct {
		step       string
		edit       func(*wgconf.Config)
		fwdBefore  bool
		fwdAfter   bool
		failDevice bool
	}{
		{step: "SetSysctl", edit: on, fwdAfter: true},
		{step: "ApplyFirewall", edit: on, fwdAfter: true},
		{step: "configure", edit: on, fwdAfter: true, failDevice: true},
		{step: "SetMTU", edit: on, fwdAfter: true},
		{step: "AddAddr", edit: on, fwdAfter: true},
		{step: "AddRoute", edit: on, fwdAfter: true},
		{step: "DelRoute", edit: on, fwdAfter: true},
		{step: "DelAddr", edit: off, fwdBefore: true},
		{step: "DelRoute", edit: off, fwdBefore: true},
		{step: "SetSysctl", edit: off, fwdBefore: true},
		{step: "DeleteFirewall", edit: off, fwdBefore: true},
	} {
		t.Run(fmt.Sprintf("%s while turning forwarding %v", tt.step, tt.fwdAfter), func(t *testing.T) {
			fx := newFixture(t)
			old := hubConfig()
			fx.up(t, old, tt.fwdBefore)
			before := fx.world(t, "wg0")
			if tt.failDevice {
				fx.devs.devs["wg0"].SetFailConfigure(errors.New("injected"))
			} else {
				fx.host.FailOn(tt.step, errors.New("injected"))
			}
			neu := clone(old)
			tt.edit(neu)
			_, err := Sync(context.Background(), req("wg0", neu, tt.fwdAfter, tt.fwdAfter), fx.syncOpts())
			if err == nil || !strings.Contains(err.Error(), "injected") || !strings.Contains(err.Error(), "everything restored") {
				t.Fatalf("Sync = %v, want the injected failure, everything restored\n%s", err, fx.log.String())
			}
			after := fx.world(t, "wg0")
			if diff := cmp.Diff(before, after, worldOpts...); diff != "" {
				t.Errorf("not restored (-before +after):\n%s\n%s", diff, fx.log.String())
			}
		})
	}
}

// TestSyncDryRunChangesNothing plans a sync that would change everything and
// checks that nothing was touched.
func TestSyncDryRunChangesNothing(t *testing.T) {
	fx := newFixture(t)
	old := hubConfig()
	fx.up(t, old, true)
	neu := clone(old)
	neu.Peers = append(neu.Peers[1:], wgconf.Peer{PublicKey: fixedPeer(5), AllowedIPs: pfxs("10.10.5.0/24")})
	neu.Interface.PrivateKey = fixedPrivate(9)
	neu.Interface.MTU = 1300
	before := fx.world(t, "wg0")
	calls := len(fx.host.Calls())
	fx.devs.devs["wg0"].Touched()
	plan, err := PlanSync(context.Background(), req("wg0", neu, false, false), fx.syncOpts())
	if err != nil {
		t.Fatal(err)
	}
	if plan.Empty() {
		t.Fatal("the plan is empty")
	}
	if diff := cmp.Diff(before, fx.world(t, "wg0"), worldOpts...); diff != "" {
		t.Errorf("dry run changed things (-before +after):\n%s", diff)
	}
	if c := fx.host.Calls(); len(c) != calls {
		t.Errorf("dry run made host calls: %q", c[calls:])
	}
	if k := fx.devs.devs["wg0"].Touched(); len(k) != 0 {
		t.Errorf("dry run configured peers %v", k)
	}
}

// TestSyncAdopt takes over an interface that another tool made (no state file):
// the plan says so, a state file appears, and Down removes it all.
func TestSyncAdopt(t *testing.T) {
	fx := newFixture(t)
	pristine := fx.host.Snapshot()
	c := hubConfig()
	// As wg-quick would have made it: interface, key, peers, addresses, routes.
	fx.host.AddLink("wg0", "tun", 1420)
	d := NewFakeDevice(fx, "wg0")
	p, err := makePlan(context.Background(), req("wg0", c, false, false), &fx.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Configure(p.want.Replace()); err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Interface.Addresses {
		if err := fx.host.AddAddr("wg0", a); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []string{"10.10.2.0/24", "fd00:10:2::/64", "10.10.3.0/24", "10.77.0.0/16"} {
		if err := fx.host.AddRoute(hostnet.Route{Dst: netip.MustParsePrefix(r), Dev: "wg0"}); err != nil {
			t.Fatal(err)
		}
	}
	neu := clone(c)
	neu.Peers = neu.Peers[:2] // s3 goes
	plan, err := Sync(context.Background(), req("wg0", neu, false, false), fx.syncOpts())
	if err != nil {
		t.Fatalf("Sync: %v\n%s", err, fx.log.String())
	}
	if !plan.Adopt || len(plan.Peers) != 1 || plan.Peers[0].Op != PeerRemove {
		t.Errorf("plan:\n%s", planText(plan))
	}
	if len(plan.Routes.Add)+len(plan.Routes.Remove) != 0 {
		t.Errorf("routes changed: %+v", plan.Routes)
	}
	st, err := LoadState(fx.opts.StateDir, "wg0")
	if err != nil {
		t.Fatalf("no state file after adopting: %v", err)
	}
	if !st.Adopted || !st.Complete || st.Backend != "fake" || st.PID != 0 {
		t.Errorf("state: %+v", st)
	}
	// The route added by hand (10.77.0.0/16) is not wgnet's: sync left it, and so
	// down does. Everything else goes.
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pristine, fx.host.Snapshot(), worldOpts...); diff != "" {
		t.Errorf("after down (-before adoption +after):\n%s", diff)
	}
}

// NewFakeDevice registers a fake device for name in the fixture, as if another
// tool had made it.
func NewFakeDevice(fx *fixture, name string) device.Device {
	fx.devs.devs[name] = devicetest.NewFake(name)
	return handle{fx.devs.devs[name]}
}

// TestSyncLeavesRoamedEndpoints: a peer that roamed keeps its endpoint when the
// config did not change it, and gets the new one when it did.
func TestSyncLeavesRoamedEndpoints(t *testing.T) {
	fx := newFixture(t)
	c := hubConfig()
	fx.up(t, c, true)
	roamed := netip.MustParseAddrPort("203.0.113.9:40000")
	if err := fx.devs.devs["wg0"].Configure(device.Config{Peers: []device.PeerConfig{{PublicKey: fixedPeer(2), Endpoint: &roamed}}}); err != nil {
		t.Fatal(err)
	}
	plan, err := Sync(context.Background(), req("wg0", c, true, true), fx.syncOpts())
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Empty() || len(plan.Notes) == 0 || !strings.Contains(plan.Notes[0], "roamed") {
		t.Errorf("plan for an unchanged config with a roamed peer:\n%s", planText(plan))
	}
	st, _ := fx.devs.devs["wg0"].State()
	if p, _ := st.Peer(fixedPeer(2)); p.Endpoint != roamed {
		t.Errorf("endpoint = %v, want the roamed %v", p.Endpoint, roamed)
	}
	neu := clone(c)
	neu.Peers[0].Endpoint = ep("198.18.0.99:51820")
	plan, err = Sync(context.Background(), req("wg0", neu, true, true), fx.syncOpts())
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Peers) != 1 || plan.Peers[0].Endpoint == nil || plan.Peers[0].Endpoint.New != "198.18.0.99:51820" {
		t.Errorf("plan for a changed endpoint:\n%s", planText(plan))
	}
}

// TestConfirmTimer: a sync with a deadline saves the interface as it was (with the
// endpoint a peer roamed to), refuses a second change, and is undone by the timer
// unless confirmed.
func TestConfirmTimer(t *testing.T) {
	for _, confirm := range []bool{false, true} {
		t.Run(fmt.Sprintf("confirmed=%v", confirm), func(t *testing.T) {
			fx := newFixture(t)
			c := hubConfig()
			c.Peers[1].PresharedKey = fixedPeer(30)
			fx.up(t, c, true)
			roamed := netip.MustParseAddrPort("203.0.113.3:40000")
			if err := fx.devs.devs["wg0"].Configure(device.Config{Peers: []device.PeerConfig{{PublicKey: fixedPeer(3), Endpoint: &roamed}}}); err != nil {
				t.Fatal(err)
			}
			before := fx.world(t, "wg0")
			neu := clone(c)
			neu.Peers = slices.Delete(neu.Peers, 1, 2) // s2 goes
			opts := fx.syncOpts()
			opts.Confirm.Within = 300 * time.Millisecond
			r := req("wg0", neu, true, true)
			if _, err := Sync(context.Background(), r, opts); err != nil {
				t.Fatal(err)
			}
			changed := fx.world(t, "wg0")
			if _, ok := changed.Dev.Peer(fixedPeer(3)); ok {
				t.Fatal("s2 still there after the sync")
			}
			fi, err := os.Stat(pendingPath(fx.opts.StateDir, "wg0"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("pending file: %v, %v", fi, err)
			}
			if _, err := Sync(context.Background(), r, opts); err == nil || !strings.Contains(err.Error(), "waiting for confirmation") {
				t.Errorf("second sync while pending = %v, want a refusal", err)
			}
			if _, _, err := TryUp(context.Background(), req("wg0", c, false, false), opts); err == nil || !strings.Contains(err.Error(), "waiting for confirmation") {
				t.Errorf("up while pending = %v, want a refusal", err)
			}
			p, err := LoadPending(fx.opts.StateDir, "wg0")
			if err != nil {
				t.Fatal(err)
			}
			if confirm {
				if _, err := ConfirmChange("wg0", opts); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := RunTimer(ctx, "wg0", p.ID, opts); err != nil {
				t.Fatalf("RunTimer: %v\n%s", err, fx.log.String())
			}
			want := before
			if confirm {
				want = changed
			}
			if diff := cmp.Diff(want, fx.world(t, "wg0"), worldOpts...); diff != "" {
				t.Errorf("after the timer (-want +got):\n%s\n%s", diff, fx.log.String())
			}
			if _, err := LoadPending(fx.opts.StateDir, "wg0"); !errors.Is(err, ErrNoPending) {
				t.Errorf("pending after the timer: %v", err)
			}
		})
	}
}

// TestRollbackLeavesAnotherInterface: an interface taken down and brought up
// again while a change is pending is not the one the change was made to; the
// timer leaves it alone and drops the pending change.
func TestRollbackLeavesAnotherInterface(t *testing.T) {
	fx := newFixture(t)
	opts := fx.syncOpts()
	opts.Confirm.Within = time.Minute
	if _, _, err := TryUp(context.Background(), req("wg0", hubConfig(), false, false), opts); err != nil {
		t.Fatal(err)
	}
	// `wgnet down` drops the pending change with the interface; put it back, as if
	// the interface had gone another way (deleted by hand, the daemon killed).
	pending, err := os.ReadFile(pendingPath(fx.opts.StateDir, "wg0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPending(fx.opts.StateDir, "wg0"); !errors.Is(err, ErrNoPending) {
		t.Errorf("pending after down: %v", err)
	}
	if err := os.WriteFile(pendingPath(fx.opts.StateDir, "wg0"), pending, 0o600); err != nil {
		t.Fatal(err)
	}
	fx.up(t, hubConfig(), false)
	before := fx.world(t, "wg0")
	if _, err := Rollback(context.Background(), "wg0", opts); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, fx.world(t, "wg0"), worldOpts...); diff != "" {
		t.Errorf("the rollback touched the new interface (-before +after):\n%s", diff)
	}
	if _, err := LoadPending(fx.opts.StateDir, "wg0"); !errors.Is(err, ErrNoPending) {
		t.Errorf("pending after rollback: %v", err)
	}
}

// TestConfirmFailedSync: a sync with a deadline that fails half-way is restored
// at once and leaves nothing pending.
func TestConfirmFailedSync(t *testing.T) {
	fx := newFixture(t)
	c := hubConfig()
	fx.up(t, c, true)
	before := fx.world(t, "wg0")
	neu := clone(c)
	neu.Peers = neu.Peers[:1]
	fx.host.FailOn("DelRoute", errors.New("injected"))
	opts := fx.syncOpts()
	opts.Confirm.Within = time.Minute
	if _, err := Sync(context.Background(), req("wg0", neu, true, true), opts); err == nil || !strings.Contains(err.Error(), "everything restored") {
		t.Fatalf("Sync = %v, want the injected failure, everything restored", err)
	}
	if diff := cmp.Diff(before, fx.world(t, "wg0"), worldOpts...); diff != "" {
		t.Errorf("not restored (-before +after):\n%s", diff)
	}
	if _, err := LoadPending(fx.opts.StateDir, "wg0"); !errors.Is(err, ErrNoPending) {
		t.Errorf("pending after a failed sync: %v", err)
	}
}

// TestTryUp: up with a deadline is undone by taking the interface down.
func TestTryUp(t *testing.T) {
	fx := newFixture(t)
	before := fx.world(t, "wg0")
	opts := fx.syncOpts()
	opts.Confirm.Within = time.Minute
	if _, _, err := TryUp(context.Background(), req("wg0", hubConfig(), true, false), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(fx.opts.StateDir, "wg0"); err != nil {
		t.Fatal(err)
	}
	if _, err := Rollback(context.Background(), "wg0", opts); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, fx.world(t, "wg0"), worldOpts...); diff != "" {
		t.Errorf("after rolling back up (-before +after):\n%s", diff)
	}
	if _, err := ConfirmChange("wg0", opts); !errors.Is(err, ErrNoPending) {
		t.Errorf("confirm after rollback = %v, want ErrNoPending", err)
	}
}

// TestPlanGolden renders one plan of every kind of change as text and JSON.
func TestPlanGolden(t *testing.T) {
	fx := newFixture(t)
	old := hubConfig()
	fx.up(t, old, true)
	neu := clone(old)
	neu.Interface.Addresses = pfxs("10.99.0.1/24")
	neu.Peers[0].AllowedIPs = pfxs("10.99.0.2/32", "10.10.2.0/24", "10.20.2.0/24")
	neu.Peers[0].Endpoint = ep("198.18.0.22:51820")
	neu.Peers = slices.Delete(neu.Peers, 1, 2)
	neu.Peers = append(neu.Peers, wgconf.Peer{Name: "s4", PublicKey: fixedPeer(5), AllowedIPs: pfxs("10.99.0.5/32", "10.10.5.0/24"), PersistentKeepalive: 25})
	plan, err := PlanSync(context.Background(), req("wg0", neu, true, true), fx.syncOpts())
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for file, got := range map[string]string{"plan.txt": planText(plan), "plan.json": string(js) + "\n"} {
		path := filepath.Join("testdata", file)
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
	}
}
