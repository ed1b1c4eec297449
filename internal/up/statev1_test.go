package up

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// stateV1Config is the config testdata/state-v1.json was written for (by `wgnet
// up` of the release before the reconcile engine, against the fakes, with the
// old-kernel fake so that every field of the record is set).
func stateV1Config() *wgconf.Config {
	c := hubConfig()
	c.Interface.PreDown = []string{"echo pre-down %i"}
	c.Interface.PostDown = []string{"echo post-down %i"}
	return c
}

// TestStateV1 checks that an interface brought up by the release before the
// reconcile engine (its state record checked in as testdata/state-v1.json) can
// still be synced and brought down, and that down then restores the host exactly.
func TestStateV1(t *testing.T) {
	v1, err := os.ReadFile("testdata/state-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t)
	fx.devs.oldKernel = true
	before := fx.host.Snapshot()
	// The interface as that release left it, with its record.
	fx.up(t, stateV1Config(), true)
	if err := os.WriteFile(statePath(fx.opts.StateDir, "wg0"), v1, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(fx.opts.StateDir, "wg0")
	if err != nil {
		t.Fatalf("LoadState of a v1 record: %v", err)
	}
	if st.Version != 1 || !st.Complete || len(st.Sysctls) != 5 || st.Firewall != "wgnet-wg0" {
		t.Fatalf("v1 record read as %+v", st)
	}

	// Sync a change: s3 goes, s2 loses its routed subnet.
	c := stateV1Config()
	c.Peers = c.Peers[:2]
	c.Peers[1].AllowedIPs = pfxs("10.99.0.3/32")
	r := req("wg0", c, true, true)
	plan, err := Sync(context.Background(), r, fx.syncOpts())
	if err != nil {
		t.Fatalf("Sync: %v\n%s", err, fx.log.String())
	}
	if got, want := peerKeys(plan.Peers), peerKeys([]PeerChange{{PublicKey: fixedPeer(3)}, {PublicKey: fixedPeer(4)}}); !cmp.Equal(got, want) {
		t.Errorf("sync touched peers %v, want s2 and s3", got)
	}
	if want := []hostnet.Route{{Dst: netip.MustParsePrefix("10.10.3.0/24"), Dev: "wg0"}}; !cmp.Equal(plan.Routes.Remove, want, cmpOpts...) {
		t.Errorf("routes removed: %v, want %v", plan.Routes.Remove, want)
	}
	if len(plan.Sysctls) != 0 || plan.Firewall != nil || plan.Adopt {
		t.Errorf("plan: %+v", plan)
	}

	fx.hooks = nil
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if d := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); d != "" {
		t.Errorf("down did not restore the host (-before +after):\n%s", d)
	}
	if d := cmp.Diff([]string{"echo pre-down wg0", "echo post-down wg0"}, fx.hooks); d != "" {
		t.Errorf("hooks run by down (-want +got):\n%s", d)
	}
	if _, ok := fx.devs.devs["wg0"]; ok {
		t.Error("the device is still there")
	}
	if _, err := LoadState(fx.opts.StateDir, "wg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left: %v", err)
	}
}
