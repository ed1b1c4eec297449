package up

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStateDirTrust: down runs the PreDown/PostDown hooks of a state file as
// root, so a state directory or file someone else could have written is refused
// (issue 9, finding 3: a planted state file's PreDown ran on down).
func TestStateDirTrust(t *testing.T) {
	t.Setenv("SUDO_UID", "")
	plant := func(t *testing.T, dir string) {
		t.Helper()
		st := &State{Version: stateVersion, Name: "wg0", PreDown: []string{"touch " + filepath.Join(dir, "pwned")}}
		if err := st.save(dir); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		root    bool // needs root to chown
		wantErr string
	}{
		{"own", func(t *testing.T, dir string) {}, false, ""},
		{"group-writable dir", func(t *testing.T, dir string) {
			mustState(t, os.Chmod(dir, 0o770))
		}, false, "writable by group (mode 0770)"},
		{"foreign-owned dir", func(t *testing.T, dir string) {
			mustState(t, os.Chown(dir, 65534, 65534))
		}, true, "owned by uid 65534"},
		{"foreign-owned file", func(t *testing.T, dir string) {
			mustState(t, os.Chown(statePath(dir, "wg0"), 65534, 65534))
		}, true, "wg0.json: owned by uid 65534"},
		{"symlinked file", func(t *testing.T, dir string) {
			real := filepath.Join(t.TempDir(), "wg0.json")
			mustState(t, os.Rename(statePath(dir, "wg0"), real))
			mustState(t, os.Symlink(real, statePath(dir, "wg0")))
		}, false, "is a symbolic link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to chown a file to uid 65534")
			}
			dir := filepath.Join(t.TempDir(), "state")
			plant(t, dir)
			tt.setup(t, dir)
			_, err := LoadState(dir, "wg0")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadState: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadState: %v, want an error saying %q", err, tt.wantErr)
			}
			err = Down(t.Context(), "wg0", Options{StateDir: dir, RunHook: func(ctx context.Context, cmd string) error {
				t.Errorf("down ran hook %q from an untrusted state file", cmd)
				return nil
			}})
			if err == nil {
				t.Error("down with an untrusted state file: nil error")
			}
		})
	}
}

func mustState(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
