package up

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/wgnet/wgnet/internal/spawn"
)

// editPending rewrites the pending file of wg0 through f.
func editPending(t *testing.T, dir string, f func(*pendingFile)) {
	t.Helper()
	pf, err := loadPendingFile(dir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	f(pf)
	b, err := json.Marshal(pf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pendingPath(dir, "wg0"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPendingWithoutTimer is issue 9 finding 4: a change made with --confirm
// whose timer never started (the command was killed between writing the pending
// file and starting it), died, or let the deadline pass was refused forever
// ("rolled back at" a time already past) and nothing rolled it back. The next
// command now rolls it back and goes on; `confirm` can keep it instead. A change
// whose timer runs is still refused, with a typed error.
func TestPendingWithoutTimer(t *testing.T) {
	orphans := map[string]func(*pendingFile){
		"never armed":   func(pf *pendingFile) { pf.Armed, pf.TimerPID = false, 0 },
		"timer gone":    func(pf *pendingFile) { pf.TimerPID = os.Getpid() }, // alive, but not a timer
		"deadline past": func(pf *pendingFile) { pf.Deadline = time.Now().Add(-time.Minute) },
	}
	for name, orphan := range orphans {
		for _, next := range []string{"sync", "up", "confirm"} {
			t.Run(name+"/"+next, func(t *testing.T) {
				fx := newFixture(t)
				c := hubConfig()
				fx.up(t, c, true)
				before := fx.world(t, "wg0")
				neu := clone(c)
				neu.Peers = slices.Delete(neu.Peers, 1, 2) // s2 goes
				opts := fx.syncOpts()
				opts.Confirm.Within = time.Minute
				if _, err := Sync(context.Background(), req("wg0", neu, true, true), opts); err != nil {
					t.Fatal(err)
				}
				changed := fx.world(t, "wg0")
				// A live timer: refused, typed.
				_, err := Sync(context.Background(), req("wg0", neu, true, true), opts)
				var se *StateError
				if !errors.Is(err, ErrPending) || !errors.As(err, &se) || se.Name != "wg0" {
					t.Fatalf("sync while a change is pending: %v, want a StateError of kind ErrPending", err)
				}
				editPending(t, fx.opts.StateDir, orphan)
				plain := fx.syncOpts()
				switch next {
				case "sync": // back to the old config, then to c3 without s3
					c3 := clone(c)
					c3.Peers = c3.Peers[:2]
					if _, err := Sync(context.Background(), req("wg0", c3, true, true), plain); err != nil {
						t.Fatalf("sync after the orphaned change: %v\n%s", err, fx.log.String())
					}
					if !strings.Contains(fx.log.String(), "rolling it back now") {
						t.Errorf("the log does not say the change was rolled back:\n%s", fx.log.String())
					}
					if _, ok := fx.world(t, "wg0").Dev.Peer(fixedPeer(3)); !ok {
						t.Error("s2 is not back: the orphaned change was not rolled back before the sync")
					}
				case "up": // TryUp: rolls the change back, then refuses: wg0 is up
					_, _, err := TryUp(context.Background(), req("wg0", c, true, true), opts)
					if !errors.Is(err, ErrAlreadyUp) {
						t.Errorf("up after the orphaned change: %v, want ErrAlreadyUp", err)
					}
					if d := cmp.Diff(before, fx.world(t, "wg0"), worldOpts...); d != "" {
						t.Errorf("not rolled back (-before +after):\n%s", d)
					}
				case "confirm":
					if _, err := ConfirmChange("wg0", plain); err != nil {
						t.Fatal(err)
					}
					if d := cmp.Diff(changed, fx.world(t, "wg0"), worldOpts...); d != "" {
						t.Errorf("confirm did not keep the change (-changed +after):\n%s", d)
					}
				}
				if _, err := LoadPending(fx.opts.StateDir, "wg0"); !errors.Is(err, ErrNoPending) {
					t.Errorf("still pending after %s: %v", next, err)
				}
			})
		}
	}
}

// TestTimerSurvivesDeadParent: the timer reports "ready" to the command that
// started it; when that command died first, the write fails (EPIPE) and the
// timer must still roll the change back at the deadline: it is all that can.
func TestTimerSurvivesDeadParent(t *testing.T) {
	fx := newFixture(t)
	c := hubConfig()
	fx.up(t, c, true)
	before := fx.world(t, "wg0")
	neu := clone(c)
	neu.Peers = neu.Peers[:1]
	opts := fx.syncOpts()
	opts.Confirm.Within = 200 * time.Millisecond
	if _, err := Sync(context.Background(), req("wg0", neu, true, true), opts); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPending(fx.opts.StateDir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the parent is gone
	defer w.Close()
	fd, err := unix.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(spawn.ReadyEnv, strconv.Itoa(fd)) // Ready closes fd
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := RunTimer(ctx, "wg0", p.ID, opts); err != nil {
		t.Fatalf("RunTimer with its parent gone: %v\n%s", err, fx.log.String())
	}
	if d := cmp.Diff(before, fx.world(t, "wg0"), worldOpts...); d != "" {
		t.Errorf("not rolled back (-before +after):\n%s", d)
	}
}

// TestTempFilesRemovedUnderLock: a writer killed mid-write leaves a temporary
// file (0600, possibly holding a private key). The next taker of the
// interface's lock removes those of that interface, never while another holds
// the lock (the file may be mid-write), never another interface's.
func TestTempFilesRemovedUnderLock(t *testing.T) {
	dir := t.TempDir()
	mine := []string{".wg0.json.tmp123", ".wg0.pending.tmp456", ".wg0.pid.tmp7"}
	others := []string{".wg01.json.tmp1", "wg0.json", ".wg1.pending.tmp2"}
	write := func(names []string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("PrivateKey"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	exists := func(n string) bool { _, err := os.Lstat(filepath.Join(dir, n)); return err == nil }

	unlock, err := lockInterface(dir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	write(mine) // mid-write by the holder
	write(others)
	if _, err := lockWithin(dir, "wg0", 0); err == nil {
		t.Fatal("took a lock that is held")
	}
	for _, n := range mine {
		if !exists(n) {
			t.Errorf("%s removed while its writer held the lock", n)
		}
	}
	unlock()
	unlock, err = lockInterface(dir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	for _, n := range mine {
		if exists(n) {
			t.Errorf("%s left behind", n)
		}
	}
	for _, n := range others {
		if !exists(n) {
			t.Errorf("%s removed: not a leftover of wg0", n)
		}
	}
}
