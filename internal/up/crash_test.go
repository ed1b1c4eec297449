package up

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/hostnet/hostnettest"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// routesConf is a config with n peers, each routed one /32 outside the
// interface's own prefix (so that each needs a route), and forwarding on.
func routesConf(t testing.TB, n int) *wgconf.Config {
	t.Helper()
	_, priv := mustKey(t)
	var b strings.Builder
	fmt.Fprintf(&b, "[Interface]\nPrivateKey = %s\nListenPort = 51820\nAddress = 10.99.0.1/24\n", priv)
	for i := range n {
		k, _ := mustKey(t)
		fmt.Fprintf(&b, "\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.50.%d.%d/32\n", k.Public(), i>>8, i&0xff)
	}
	c, err := wgconf.Parse("wg0.conf", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// crashed runs f, which must die in the fake host's injected crash, as if the
// process had been killed there.
func crashed(t *testing.T, f func() error) {
	t.Helper()
	defer func() {
		t.Helper()
		if _, ok := recover().(hostnettest.Crash); !ok {
			t.Fatal("no crash")
		}
	}()
	err := f()
	t.Fatalf("returned %v instead of crashing", err)
}

// checkRecorded checks the state file's promise after a crash: every route
// through wg0 that is there (the kernel's prefix route aside) is recorded, so
// that down removes it.
func checkRecorded(t *testing.T, fx *fixture) *State {
	t.Helper()
	st, err := LoadState(fx.opts.StateDir, "wg0")
	if err != nil {
		t.Fatalf("no state after the crash: %v", err)
	}
	rs, err := fx.host.Routes("wg0", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Dst == netip.MustParsePrefix("10.99.0.0/24") {
			continue
		}
		if !slices.Contains(st.Routes, normRoute(r)) {
			t.Errorf("route %v is there but not in the state record", r)
		}
	}
	return st
}

// TestCrashMidRoutes kills up, and then a sync, after K of N routes were added
// (the fake host panics in the batch), and checks that the state record names
// every route that is there and that Down then restores the host exactly.
func TestCrashMidRoutes(t *testing.T) {
	const n = 300
	for _, k := range []int{0, 1, 137, n - 1} {
		t.Run(fmt.Sprintf("up/after %d of %d", k, n), func(t *testing.T) {
			fx := newFixture(t)
			before := fx.host.Snapshot()
			fx.host.CrashAfter("AddRoute", k)
			crashed(t, func() error {
				_, err := Up(context.Background(), req("wg0", routesConf(t, n), true, false), fx.opts)
				return err
			})
			if got := len(fx.host.Snapshot().Routes) - len(before.Routes) - 1; got != k {
				t.Fatalf("%d routes added before the crash, want %d", got, k)
			}
			st := checkRecorded(t, fx)
			if st.Complete || len(st.Routes) != n {
				t.Errorf("state after the crash: complete %v, %d routes recorded; want incomplete, all %d planned", st.Complete, len(st.Routes), n)
			}
			if err := Down(context.Background(), "wg0", fx.opts); err != nil {
				t.Fatalf("Down: %v", err)
			}
			if diff := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); diff != "" {
				t.Errorf("down after the crash did not restore the host (-before +after):\n%s", diff)
			}
		})
	}
	for _, k := range []int{0, 99, 199} {
		t.Run(fmt.Sprintf("sync/after %d of 200", k), func(t *testing.T) {
			fx := newFixture(t)
			before := fx.host.Snapshot()
			small, big := routesConf(t, 100), routesConf(t, 300)
			if _, err := Up(context.Background(), req("wg0", small, true, false), fx.opts); err != nil {
				t.Fatal(err)
			}
			fx.host.CrashAfter("AddRoute", k)
			crashed(t, func() error {
				_, err := Sync(context.Background(), req("wg0", big, true, false), fx.syncOpts())
				return err
			})
			checkRecorded(t, fx)
			if err := Down(context.Background(), "wg0", fx.opts); err != nil {
				t.Fatalf("Down: %v", err)
			}
			if diff := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); diff != "" {
				t.Errorf("down after the crash did not restore the host (-before +after):\n%s", diff)
			}
		})
	}
}

// TestFailMidRoutes fails the K-th route of up's batch: up undoes everything
// and leaves no state.
func TestFailMidRoutes(t *testing.T) {
	fx := newFixture(t)
	before := fx.host.Snapshot()
	fx.host.FailAfter("AddRoute", 57, errors.New("no buffer space"))
	_, err := Up(context.Background(), req("wg0", routesConf(t, 200), true, false), fx.opts)
	if err == nil || !strings.Contains(err.Error(), "everything undone") {
		t.Fatalf("Up: %v, want the failure undone", err)
	}
	if diff := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); diff != "" {
		t.Errorf("host after a failed up (-before +after):\n%s", diff)
	}
	if _, err := LoadState(fx.opts.StateDir, "wg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state left: %v", err)
	}
}
