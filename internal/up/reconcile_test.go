package up

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
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

// lockedDevices is fakeDevices made safe for several goroutines: its links live
// in a hostnettest.Fake, its devices are devicetest.Fakes.
type lockedDevices struct {
	host *hostnettest.Fake

	mu   sync.Mutex // guards devs
	devs map[string]*devicetest.Fake
}

func (f *lockedDevices) Create(_ context.Context, req CreateRequest) (device.Device, Created, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.devs[req.Name]; ok {
		return nil, Created{}, fmt.Errorf("create %s: exists", req.Name)
	}
	f.host.AddLink(req.Name, "tun", req.MTU)
	d := devicetest.NewFake(req.Name)
	f.devs[req.Name] = d
	return handle{d}, Created{Backend: device.BackendUserspace, PID: 4242}, nil
}

func (f *lockedDevices) Remove(_ Created, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.host.DelLink(name)
	delete(f.devs, name)
	return nil
}

func (f *lockedDevices) open(name string) (device.Device, *device.State, error) {
	d, ok := f.dev(name)
	if !ok {
		return nil, nil, fmt.Errorf("open %s: %w", name, device.ErrNotFound)
	}
	return handle{d}, nil, nil
}

func (f *lockedDevices) dev(name string) (*devicetest.Fake, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devs[name]
	return d, ok
}

// lockedBuffer is a log several goroutines write to.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// engineFx runs the engine on the fakes, every change going through a Recorder.
type engineFx struct {
	host *hostnettest.Fake
	devs *lockedDevices
	rec  *Recorder
	log  *lockedBuffer
	opts SyncOptions
	// base is the host before any interface.
	base hostnettest.Snapshot
}

func newEngineFx(t *testing.T) *engineFx {
	t.Helper()
	// The host of newFixture: eth0 with the default route.
	fx := &engineFx{host: newFixture(t).host, rec: &Recorder{}, log: &lockedBuffer{}}
	fx.devs = &lockedDevices{host: fx.host, devs: map[string]*devicetest.Fake{}}
	fx.opts = SyncOptions{
		Options: Options{
			StateDir: t.TempDir(),
			Host:     fx.rec.Host(fx.host),
			Devices:  fx.rec.Devices(fx.devs),
			Log:      fx.log,
			RunHook:  func(context.Context, string) error { return nil },
			Resolve: func(context.Context, string) (netip.Addr, error) {
				return netip.Addr{}, errors.New("no resolver in this test")
			},
		},
		Open: fx.rec.Open(fx.devs.open),
	}
	fx.base = fx.host.Snapshot()
	fx.rec.Take() // the setup above is not the engine's
	return fx
}

// reconcile runs Reconcile and checks that the calls made are exactly those
// the returned plan lists.
func (fx *engineFx) reconcile(t *testing.T, what string, r Request) *Plan {
	t.Helper()
	plan, err := Reconcile(context.Background(), r, fx.opts)
	if err != nil {
		t.Fatalf("%s: Reconcile: %v\n%s", what, err, fx.log.String())
	}
	if diff := cmp.Diff(ExpectedCalls(plan), fx.rec.Take()); diff != "" {
		t.Errorf("%s: calls made, against the plan (-plan +made):\n%s\nplan:\n%s", what, diff, planText(plan))
	}
	return plan
}

// touched returns the peers the device's Configure calls named since the last
// call, and those the plan names, both sorted.
func (fx *engineFx) touched(t *testing.T, name string, plan *Plan) (made, planned []wgkey.Key) {
	t.Helper()
	d, ok := fx.devs.dev(name)
	if !ok {
		t.Fatalf("no device %s", name)
	}
	sortKeys := func(ks []wgkey.Key) []wgkey.Key {
		slices.SortFunc(ks, func(a, b wgkey.Key) int { return bytes.Compare(a[:], b[:]) })
		return slices.Compact(ks)
	}
	return sortKeys(d.Touched()), peerKeys(plan.Peers)
}

// engineEdits are the changes TestReconcileRecorder makes to hubConfig, each
// on its own and all at once.
var engineEdits = []struct {
	name string
	edit func(c *wgconf.Config, fwd *bool)
}{
	{"add a peer", func(c *wgconf.Config, _ *bool) {
		c.Peers = append(c.Peers, wgconf.Peer{Name: "s4", PublicKey: fixedPeer(5), AllowedIPs: pfxs("10.99.0.5/32", "10.10.5.0/24"), PersistentKeepalive: 25, Endpoint: ep("198.18.0.5:51820")})
	}},
	{"remove a peer", func(c *wgconf.Config, _ *bool) {
		c.Peers = slices.DeleteFunc(c.Peers, func(p wgconf.Peer) bool { return p.Name == "s2" })
	}},
	{"change one peer's prefixes", func(c *wgconf.Config, _ *bool) {
		peerNamed(c, "s1").AllowedIPs = pfxs("10.99.0.2/32", "10.10.2.0/24", "10.20.2.0/24")
	}},
	{"change an address", func(c *wgconf.Config, _ *bool) {
		c.Interface.Addresses = pfxs("10.99.0.254/24", "fd00:99::1/64")
	}},
	{"a route-bearing prefix", func(c *wgconf.Config, _ *bool) {
		peerNamed(c, "s3").AllowedIPs = pfxs("10.99.0.4/32", "10.10.4.0/24")
	}},
	{"forwarding off", func(_ *wgconf.Config, fwd *bool) { *fwd = false }},
}

func peerNamed(c *wgconf.Config, name string) *wgconf.Peer {
	i := slices.IndexFunc(c.Peers, func(p wgconf.Peer) bool { return p.Name == name })
	return &c.Peers[i]
}

// TestReconcileRecorder brings an interface up through the engine, changes it
// and reconciles it back, step by step: the calls made to the host and the
// device are exactly what each returned plan lists, the peers the plan leaves
// alone are not named in any device call, and reconciling back gives the
// interface and the host exactly as they were.
func TestReconcileRecorder(t *testing.T) {
	all := func(c *wgconf.Config, fwd *bool) {
		for _, e := range engineEdits {
			e.edit(c, fwd)
		}
	}
	cases := append(slices.Clone(engineEdits), struct {
		name string
		edit func(c *wgconf.Config, fwd *bool)
	}{"everything at once", all})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fx := newEngineFx(t)
			base := req("wg0", hubConfig(), true, true)
			plan := fx.reconcile(t, "up", base)
			if !plan.linkUp || len(plan.Peers) != 3 {
				t.Fatalf("up: plan does not create the interface with its 3 peers:\n%s", planText(plan))
			}
			fx.touched(t, "wg0", plan)
			upWorld := fx.host.Snapshot()
			d, _ := fx.devs.dev("wg0")
			upDev, _ := d.State()

			c, fwd := hubConfig(), true
			tc.edit(c, &fwd)
			for _, step := range []struct {
				what string
				r    Request
			}{
				{"change", req("wg0", c, fwd, fwd)},
				{"back", base},
			} {
				plan := fx.reconcile(t, step.what, step.r)
				if plan.Empty() {
					t.Fatalf("%s: empty plan", step.what)
				}
				if made, planned := fx.touched(t, "wg0", plan); !slices.Equal(made, planned) {
					t.Errorf("%s: the device calls named peers %v, the plan %v", step.what, made, planned)
				}
				if plan := fx.reconcile(t, step.what+" again", step.r); !plan.Empty() {
					t.Errorf("%s again: plan not empty:\n%s", step.what, planText(plan))
				}
			}
			if diff := cmp.Diff(upWorld, fx.host.Snapshot(), worldOpts...); diff != "" {
				t.Errorf("host after reconciling back (-up +now):\n%s", diff)
			}
			now, _ := d.State()
			upDev.Normalize()
			now.Normalize()
			if diff := cmp.Diff(upDev, now, worldOpts...); diff != "" {
				t.Errorf("device after reconciling back (-up +now):\n%s", diff)
			}
			if err := Down(context.Background(), "wg0", fx.opts.Options); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fx.base, fx.host.Snapshot(), worldOpts...); diff != "" {
				t.Errorf("host after down (-before +after):\n%s", diff)
			}
		})
	}
}

// TestReconcileUnchangedIsNoop: a reconcile of what is already there plans
// nothing and calls nothing that changes the system.
func TestReconcileUnchangedIsNoop(t *testing.T) {
	for _, fwd := range []bool{false, true} {
		t.Run(fmt.Sprintf("forwarding=%v", fwd), func(t *testing.T) {
			fx := newEngineFx(t)
			r := req("wg0", hubConfig(), fwd, fwd)
			fx.reconcile(t, "up", r)
			state, err := os.ReadFile(statePath(fx.opts.StateDir, "wg0"))
			if err != nil {
				t.Fatal(err)
			}
			before := fx.host.Snapshot()
			for i := range 3 {
				plan, err := Reconcile(context.Background(), r, fx.opts)
				if err != nil {
					t.Fatal(err)
				}
				if !plan.Empty() {
					t.Errorf("reconcile %d: plan not empty:\n%s", i, planText(plan))
				}
				if calls := fx.rec.Take(); len(calls) != 0 {
					t.Errorf("reconcile %d: calls made: %q", i, calls)
				}
			}
			if diff := cmp.Diff(before, fx.host.Snapshot(), worldOpts...); diff != "" {
				t.Errorf("host (-before +after):\n%s", diff)
			}
			after, _ := os.ReadFile(statePath(fx.opts.StateDir, "wg0"))
			if !bytes.Equal(state, after) {
				t.Errorf("state file rewritten by a no-op:\n%s\n->\n%s", state, after)
			}
		})
	}
}

// TestReconcileDeviceGoneCleansUp: when the device went away behind wgnet's
// back (the daemon died, ip link del) and its state stayed, Reconcile removes
// what the record lists, says so, and creates the interface again as it was.
// Sync, which does not create, still refuses with ErrNotRunning.
func TestReconcileDeviceGoneCleansUp(t *testing.T) {
	fx := newEngineFx(t)
	r := req("wg0", hubConfig(), true, true)
	fx.reconcile(t, "up", r)
	up1 := fx.host.Snapshot()
	if err := fx.devs.Remove(Created{}, "wg0"); err != nil { // the daemon died
		t.Fatal(err)
	}
	_, err := Sync(context.Background(), r, fx.opts)
	var se *StateError
	if !errors.Is(err, ErrNotRunning) || !errors.As(err, &se) || se.Name != "wg0" {
		t.Fatalf("Sync with the device gone = %v, want a StateError ErrNotRunning", err)
	}
	fx.rec.Take()
	plan, err := Reconcile(context.Background(), r, fx.opts)
	if err != nil {
		t.Fatalf("Reconcile after the device went: %v\n%s", err, fx.log.String())
	}
	if !plan.linkUp {
		t.Errorf("reconcile did not create the interface again:\n%s", planText(plan))
	}
	if calls := fx.rec.Take(); !slices.Contains(calls, "DeleteFirewall wgnet-wg0") || !slices.Contains(calls, "Create wg0") {
		t.Errorf("calls: %q, want the stale table deleted and the interface created", calls)
	}
	if !strings.Contains(fx.log.String(), "wg0 is gone but its record") {
		t.Errorf("log does not say the stale record was cleaned:\n%s", fx.log.String())
	}
	if diff := cmp.Diff(up1, fx.host.Snapshot(), append(worldOpts, cmpopts.IgnoreFields(hostnet.Link{}, "Index"))...); diff != "" {
		t.Errorf("host after the second up (-first +second):\n%s", diff)
	}
	if err := Down(context.Background(), "wg0", fx.opts.Options); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fx.base, fx.host.Snapshot(), worldOpts...); diff != "" {
		t.Errorf("host after down (-before +after):\n%s", diff)
	}
}

// TestReconcileConfirmOnCreate: Reconcile with a confirmation deadline of an
// absent interface creates it provisionally; unconfirmed, the timer takes it
// down again (the host as before, no state, no pending change); confirmed, it
// stays.
func TestReconcileConfirmOnCreate(t *testing.T) {
	for _, confirm := range []bool{false, true} {
		t.Run(fmt.Sprintf("confirmed=%v", confirm), func(t *testing.T) {
			fx := newEngineFx(t)
			errs := make(chan error, 4)
			timer := &GoroutineTimer{Options: fx.opts, Errs: errs}
			defer timer.Close()
			opts := fx.opts
			opts.Confirm = Confirm{Within: 200 * time.Millisecond, Timer: timer}
			r := req("wg0", hubConfig(), true, true)
			plan, err := Reconcile(context.Background(), r, opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ExpectedCalls(plan), fx.rec.Take()); diff != "" {
				t.Errorf("calls made, against the plan (-plan +made):\n%s", diff)
			}
			if _, ok := fx.devs.dev("wg0"); !ok {
				t.Fatal("no device after a provisional reconcile")
			}
			if _, err := LoadPending(fx.opts.StateDir, "wg0"); err != nil {
				t.Fatalf("no pending change: %v", err)
			}
			if _, err := Reconcile(context.Background(), r, opts); err == nil {
				t.Error("a second reconcile while the first waits for confirmation succeeded")
			}
			if confirm {
				if _, err := ConfirmChange("wg0", opts); err != nil {
					t.Fatal(err)
				}
			}
			up := fx.host.Snapshot()
			if !waitFor(5*time.Second, func() bool {
				_, err := LoadPending(fx.opts.StateDir, "wg0")
				return errors.Is(err, ErrNoPending)
			}) {
				t.Fatalf("the change is still pending after its deadline\n%s", fx.log.String())
			}
			timer.Close()
			select {
			case err := <-errs:
				t.Fatalf("timer: %v", err)
			default:
			}
			_, serr := LoadState(fx.opts.StateDir, "wg0")
			_, dev := fx.devs.dev("wg0")
			if confirm {
				if serr != nil || !dev {
					t.Fatalf("confirmed, but state %v, device %v", serr, dev)
				}
				if diff := cmp.Diff(up, fx.host.Snapshot(), worldOpts...); diff != "" {
					t.Errorf("host changed after the confirmation (-up +now):\n%s", diff)
				}
				return
			}
			if !errors.Is(serr, os.ErrNotExist) || dev {
				t.Fatalf("rolled back, but state %v, device %v", serr, dev)
			}
			if diff := cmp.Diff(fx.base, fx.host.Snapshot(), worldOpts...); diff != "" {
				t.Errorf("host after the rollback (-before +after):\n%s", diff)
			}
		})
	}
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReconcileReresolves: a peer whose Endpoint is a host name gets the
// address the name resolves to now. Reconciling the same intent again after
// the name moved changes that peer's endpoint and nothing else (what the
// agent's periodic reconcile relies on, issue 15); while the name stays put,
// a reconcile is a no-op.
func TestReconcileReresolves(t *testing.T) {
	fx := newEngineFx(t)
	var mu sync.Mutex
	addr := netip.MustParseAddr("198.18.0.30")
	fx.opts.Resolve = func(_ context.Context, host string) (netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		if host != "s2.example.test" {
			return netip.Addr{}, fmt.Errorf("%s: no such host", host)
		}
		return addr, nil
	}
	c := hubConfig()
	peerNamed(c, "s2").Endpoint = ep("s2.example.test:51820")
	r := req("wg0", c, true, true)
	fx.reconcile(t, "up", r)
	endpointOf := func() string {
		d, ok := fx.devs.dev("wg0")
		if !ok {
			t.Fatal("no device wg0")
		}
		st, err := d.State()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Peers {
			if p.PublicKey == peerNamed(c, "s2").PublicKey && p.Endpoint.IsValid() {
				return p.Endpoint.String()
			}
		}
		return ""
	}
	if got := endpointOf(); got != "198.18.0.30:51820" {
		t.Fatalf("s2's endpoint after up = %q", got)
	}
	same := fx.reconcile(t, "same name, same address", r)
	if !same.Empty() {
		t.Errorf("reconcile with the name unmoved: plan not empty:\n%s", planText(same))
	}
	fx.touched(t, "wg0", same) // forget the peers up configured
	mu.Lock()
	addr = netip.MustParseAddr("198.18.0.31")
	mu.Unlock()
	plan := fx.reconcile(t, "the name moved", r)
	made, _ := fx.touched(t, "wg0", plan)
	if got := endpointOf(); got != "198.18.0.31:51820" || len(made) != 1 || made[0] != peerNamed(c, "s2").PublicKey {
		t.Errorf("after the name moved: s2's endpoint %q, peers touched %v; want 198.18.0.31:51820 and s2 alone\n%s", got, made, planText(plan))
	}
}
