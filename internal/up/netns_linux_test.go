package up

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rewriteState changes the record of name in dir as edit says, as another
// wgnet (or another namespace's) would have written it.
func rewriteState(t *testing.T, dir, name string, edit func(m map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(statePath(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStateOtherNetns: a record is stamped with the network namespace it was
// written in, and one of another namespace (a state directory two namespaces
// share, WGNET_STATE_DIR) is refused by up, sync and down, which touch nothing
// (issue 9 finding 5: down from another namespace said "down" and orphaned the
// real one's nft table).
func TestStateOtherNetns(t *testing.T) {
	here, err := netnsHere()
	if err != nil {
		t.Skip(err)
	}
	fx := newFixture(t)
	fx.up(t, stateV1Config(), true)
	st, err := LoadState(fx.opts.StateDir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	if st.Netns != here {
		t.Fatalf("record stamped with netns %d, want this one, %d", st.Netns, here)
	}
	rewriteState(t, fx.opts.StateDir, "wg0", func(m map[string]any) { m["netns"] = here + 1 })
	before := fx.host.Snapshot()

	if _, err := LoadState(fx.opts.StateDir, "wg0"); !errors.Is(err, ErrOtherNetns) {
		t.Errorf("LoadState of another namespace's record: %v, want ErrOtherNetns", err)
	}
	if st, err := ReadState(fx.opts.StateDir, "wg0"); err != nil || st.Netns != here+1 {
		t.Errorf("ReadState: %+v, %v", st, err)
	}
	err = Down(context.Background(), "wg0", fx.opts)
	var se *StateError
	if !errors.Is(err, ErrOtherNetns) || !errors.As(err, &se) || se.Name != "wg0" {
		t.Errorf("Down: %v, want a StateError of kind ErrOtherNetns", err)
	}
	if _, err := Up(context.Background(), req("wg0", stateV1Config(), true, false), fx.opts); !errors.Is(err, ErrOtherNetns) {
		t.Errorf("Up: %v, want ErrOtherNetns", err)
	}
	if _, err := Sync(context.Background(), req("wg0", stateV1Config(), true, false), fx.syncOpts()); !errors.Is(err, ErrOtherNetns) {
		t.Errorf("Sync: %v, want ErrOtherNetns", err)
	}
	if len(fx.hooks) != 0 {
		t.Errorf("hooks run: %q", fx.hooks)
	}
	if diff := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); diff != "" {
		t.Errorf("a refused command changed the host (-before +after):\n%s", diff)
	}
	if _, err := ReadState(fx.opts.StateDir, "wg0"); err != nil {
		t.Errorf("the other namespace's record is gone: %v", err)
	}
	// A save of a record of another namespace is refused too.
	st.Netns = here + 1
	if err := st.save(fx.opts.StateDir); !errors.Is(err, ErrOtherNetns) {
		t.Errorf("save: %v, want ErrOtherNetns", err)
	}
}

// TestAdoptOld: a record of the layout before namespaces were kept apart
// (testdata/state-v1.json in the state directory itself, no namespace) moves,
// with its daemon's pid and log files, into this namespace's directory when its
// interface is here, and stays where it is when it is not.
func TestAdoptOld(t *testing.T) {
	here, err := netnsHere()
	if err != nil {
		t.Skip(err)
	}
	v1, err := os.ReadFile("testdata/state-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir := netnsDir(root, here)
	write := func() {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(v1, &m); err != nil {
			t.Fatal(err)
		}
		m["log_file"] = filepath.Join(root, "wg0.log")
		b, _ := json.Marshal(m)
		for f, data := range map[string][]byte{"wg0.json": b, "wg0.pid": []byte("4242\n"), "wg0.log": []byte("log\n")} {
			if err := os.WriteFile(filepath.Join(root, f), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write()
	var asked *State
	elsewhere := func(st *State, ino uint64) bool { asked = st; return false }
	if got := adoptOld(root, dir, here, elsewhere); len(got) != 0 {
		t.Errorf("moved %v, though its interface is not here", got)
	}
	if asked == nil || asked.PID != 4242 || asked.Backend != "userspace" {
		t.Errorf("lives asked about %+v", asked)
	}
	if _, err := ReadState(root, "wg0"); err != nil {
		t.Errorf("the record moved or went: %v", err)
	}

	if got := adoptOld(root, dir, here, func(*State, uint64) bool { return true }); len(got) != 1 || got[0] != "wg0" {
		t.Fatalf("moved %v, want [wg0]", got)
	}
	for _, f := range []string{"wg0.json", "wg0.pid", "wg0.log"} {
		if _, err := os.Stat(filepath.Join(root, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left in %s: %v", f, root, err)
		}
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not in %s: %v", f, dir, err)
		}
	}
	st, err := LoadState(dir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	if st.Netns != here || st.LogFile != filepath.Join(dir, "wg0.log") || st.Firewall != "wgnet-wg0" || len(st.Sysctls) != 5 {
		t.Errorf("moved record: %+v", st)
	}

	// Another record of wg0 in the old place does not replace this one; one
	// stamped with another namespace is not asked about.
	write()
	if got := adoptOld(root, dir, here, func(*State, uint64) bool { return true }); len(got) != 0 {
		t.Errorf("moved %v over the record already there", got)
	}
	rewriteState(t, root, "wg0", func(m map[string]any) { m["netns"] = here + 1 })
	asked = nil
	if got := adoptOld(root, t.TempDir(), here, elsewhere); len(got) != 0 || asked != nil {
		t.Errorf("another namespace's record: moved %v, lives asked about %+v", got, asked)
	}
}
