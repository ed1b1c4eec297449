package up

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"
)

// TestConfirmOutcome is issue 10: `sync --confirm` with nothing to change left
// `wgnet confirm` failing, and a confirm after the timer rolled the change back
// could not say so. The last outcome is now recorded: no change, rolled back (by
// the timer), and a new change or down forgets it.
func TestConfirmOutcome(t *testing.T) {
	fx := newFixture(t)
	c := hubConfig()
	fx.up(t, c, true)
	dir := fx.opts.StateDir
	opts := fx.syncOpts()
	opts.Confirm.Within = 200 * time.Millisecond
	r := req("wg0", c, true, true)
	if plan, err := Sync(context.Background(), r, opts); err != nil || !plan.Empty() {
		t.Fatalf("sync --confirm of the same config: %v, %+v", err, plan)
	}
	if _, err := LoadPending(dir, "wg0"); !errors.Is(err, ErrNoPending) {
		t.Fatalf("pending after a sync that changed nothing: %v", err)
	}
	if o, err := LastOutcome(dir, "wg0"); err != nil || o.Kind != OutcomeNoChange || o.Command != "sync" {
		t.Fatalf("outcome after a sync that changed nothing: %+v, %v", o, err)
	}

	neu := clone(c)
	neu.Peers = slices.Delete(neu.Peers, 1, 2)
	if _, err := Sync(context.Background(), req("wg0", neu, true, true), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := LastOutcome(dir, "wg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("outcome while a change is pending: %v, want none", err)
	}
	p, err := LoadPending(dir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := RunTimer(ctx, "wg0", p.ID, opts); err != nil {
		t.Fatalf("RunTimer: %v\n%s", err, fx.log.String())
	}
	o, err := LastOutcome(dir, "wg0")
	if err != nil || o.Kind != OutcomeRolledBack || o.Command != "sync" || time.Since(o.At) > time.Minute {
		t.Fatalf("outcome after the timer rolled back: %+v, %v", o, err)
	}

	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if _, err := LastOutcome(dir, "wg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("outcome after down: %v, want none", err)
	}
}
