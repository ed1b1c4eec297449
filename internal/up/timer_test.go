package up

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestGoroutineTimer: a sync with a deadline and the in-process timer is rolled
// back at the deadline, exactly, and the timer's goroutine is gone after Close.
func TestGoroutineTimer(t *testing.T) {
	fx := newFixture(t)
	fx.up(t, hubConfig(), true)
	before := fx.world(t, "wg0")
	errs := make(chan error, 1)
	timer := &GoroutineTimer{Options: fx.syncOpts(), Errs: errs}
	defer timer.Close()
	opts := fx.syncOpts()
	opts.Confirm = Confirm{Within: 300 * time.Millisecond, Timer: timer}
	c := hubConfig()
	c.Peers = c.Peers[:2]
	if _, err := Sync(context.Background(), req("wg0", c, true, true), opts); err != nil {
		t.Fatalf("Sync: %v\n%s", err, fx.log.String())
	}
	if _, err := LoadPending(fx.opts.StateDir, "wg0"); err != nil {
		t.Fatalf("no pending change: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := LoadPending(fx.opts.StateDir, "wg0")
		if errors.Is(err, ErrNoPending) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not rolled back within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	timer.Close()
	select {
	case err := <-errs:
		t.Fatalf("timer: %v", err)
	default:
	}
	if d := cmp.Diff(before, fx.world(t, "wg0"), worldOpts...); d != "" {
		t.Errorf("after the timer (-want +got):\n%s\n%s", d, fx.log.String())
	}
}
