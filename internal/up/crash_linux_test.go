package up_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// TestConfirmKilledBeforeTimer is issue 9 finding 4 with the real command: a
// `sync --confirm` killed (WGNET_TEST_CRASH_AT=pending-saved: SIGKILL right
// after the pending file is written, before the timer starts) left a change
// pending that nothing rolled back, and every later change was refused with a
// deadline already past. Now the next `wgnet sync` rolls it back and goes on,
// and `wgnet confirm` can keep it.
func TestConfirmKilledBeforeTimer(t *testing.T) {
	l := newLab(t, "hub", "s1")
	hub := l.hosts[0]
	l.up(hub)
	// A config with one more peer, for a change to make.
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(hub.conf)
	if err != nil {
		t.Fatal(err)
	}
	more := filepath.Join(t.TempDir(), hub.ifname+".conf")
	if err := os.WriteFile(more, append(conf, []byte("\n[Peer]\nPublicKey = "+k.Public().String()+"\nAllowedIPs = 10.99.0.77/32\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	crash := func() {
		t.Helper()
		out, err := hub.ns.Try("env", "WGNET_STATE_DIR="+l.stateDir, "WGNET_TEST_CRASH_AT=pending-saved", wgnet(t), "sync", "--confirm", "1m", more)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != -1 && !strings.Contains(err.Error(), "signal: killed") {
			t.Fatalf("sync with WGNET_TEST_CRASH_AT: %v, want it killed\n%s", err, out)
		}
		p, err := up.LoadPending(l.stateDir, hub.ifname)
		if err != nil {
			t.Fatalf("no pending change after the crash: %v", err)
		}
		if p.TimerPID != 0 || p.Armed {
			t.Fatalf("pending change after the crash has a timer: %+v", p)
		}
	}

	crash()
	out, err := l.wgnet(hub, "sync", more)
	if err != nil {
		t.Fatalf("sync after a sync --confirm killed before its timer: %v\n%s", err, out)
	}
	if !strings.Contains(out, "rolling it back now") {
		t.Errorf("sync does not say it rolled the pending change back:\n%s", out)
	}
	if _, err := up.LoadPending(l.stateDir, hub.ifname); !errors.Is(err, up.ErrNoPending) {
		t.Errorf("still pending after sync: %v", err)
	}
	if got := hub.ns.Run(t, "wg", "show", hub.ifname, "peers"); !strings.Contains(got, k.Public().String()) {
		t.Errorf("the sync did not add the new peer:\n%s", got)
	}

	if out, err := l.wgnet(hub, "sync", hub.conf); err != nil {
		t.Fatalf("sync back: %v\n%s", err, out)
	}
	crash()
	out, err = l.wgnet(hub, "confirm", hub.ifname)
	if err != nil || !strings.Contains(out, "is kept") {
		t.Errorf("confirm after the crash: %v\n%s", err, out)
	}
	if _, err := up.LoadPending(l.stateDir, hub.ifname); !errors.Is(err, up.ErrNoPending) {
		t.Errorf("still pending after confirm: %v", err)
	}
	if out, err := l.wgnet(hub, "down", hub.ifname); err != nil {
		t.Errorf("down: %v\n%s", err, out)
	}
}
