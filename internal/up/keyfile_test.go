package up

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestUpKeyFile: a host that keeps its own key (intent.Host.KeyFile) gets it
// loaded natively; a missing, bad or untrusted key file stops up before
// anything is touched.
func TestUpKeyFile(t *testing.T) {
	k, _ := mustKey(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "wg0.key")
	if err := os.WriteFile(good, []byte(k.Base64()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, "loose.key")
	if err := os.WriteFile(loose, []byte(k.Base64()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o666); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}

	fx := newFixture(t)
	cfg := hubConfig()
	r := req("wg0", cfg, false, false)
	r.Host.PrivateKey = [32]byte{}
	r.Host.KeyFile = good
	if _, err := Up(context.Background(), r, fx.opts); err != nil {
		t.Fatal(err)
	}
	st, err := fx.devs.devs["wg0"].State()
	if err != nil {
		t.Fatal(err)
	}
	if st.PublicKey != k.Public() {
		t.Errorf("device key %s, want the key file's %s", st.PublicKey, k.Public())
	}

	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.key"), "no such file"},
		{bad, "not a WireGuard private key"},
		{loose, "writable"},
		{link, "symbolic link"},
	} {
		fx := newFixture(t)
		before := fx.host.Snapshot()
		r := req("wg0", hubConfig(), false, false)
		r.Host.PrivateKey = [32]byte{}
		r.Host.KeyFile = tc.path
		_, err := Up(context.Background(), r, fx.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", filepath.Base(tc.path), err, tc.want)
		}
		if d := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); len(fx.devs.devs) != 0 || d != "" {
			t.Errorf("%s: something was touched before the key was read", filepath.Base(tc.path))
		}
	}
}
