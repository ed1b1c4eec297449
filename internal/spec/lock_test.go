package spec

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEditSerialised: edits racing on one spec each read it after the others
// wrote it, so none is lost and every address is handed out once (issue 9,
// finding 1). flock locks conflict between open files, so goroutines race like
// processes here; cmd/wgnet's TestCLIConcurrentAdds races real processes.
func TestEditSerialised(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wgnet.yaml")
	d, err := Init(path, InitOptions{Network: "n", Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}})
	must(t, err)
	must(t, d.Save())
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Edit(path, func(d *Document) error {
				_, err := d.AddHost(Host{Name: fmt.Sprintf("h%d", i)})
				return err
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("edit %d: %v", i, err)
		}
	}
	s, err := Load(path)
	must(t, err)
	sec, _, err := LoadSecrets(SecretsDir(path))
	must(t, err)
	addrs := map[netip.Addr]bool{}
	for _, h := range s.Hosts {
		addrs[h.Addresses[0]] = true
		if k, ok := sec.PrivateKeys[h.Name]; !ok || k.Public() != h.PublicKey {
			t.Errorf("host %s: key file and spec disagree", h.Name)
		}
	}
	if len(s.Hosts) != n || len(addrs) != n || len(sec.PrivateKeys) != n {
		t.Errorf("%d edits: %d hosts, %d addresses, %d keys", n, len(s.Hosts), len(addrs), len(sec.PrivateKeys))
	}
}

func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wgnet.yaml")
	l, err := LockSpec(path, true)
	must(t, err)
	defer l.Unlock()
	old := LockTimeout
	LockTimeout = 50 * time.Millisecond
	defer func() { LockTimeout = old }()
	if _, err := LockSpec(path, false); err == nil || !strings.Contains(err.Error(), "another wgnet has held it") {
		t.Errorf("shared lock while an edit holds it: %v, want a timeout", err)
	}
	l.Unlock()
	r1, err := LockSpec(path, false)
	must(t, err)
	r2, err := LockSpec(path, false)
	must(t, err) // readers share
	r1.Unlock()
	r2.Unlock()
}

// TestSaveSymlinkedSpec: a spec that is a link is written at its target.
func TestSaveSymlinkedSpec(t *testing.T) {
	real := filepath.Join(t.TempDir(), "net.yaml")
	d, err := Init(real, InitOptions{Network: "n", Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}})
	must(t, err)
	must(t, d.Save())
	link := filepath.Join(t.TempDir(), "wgnet.yaml")
	must(t, os.Symlink(real, link))
	must(t, Edit(link, func(d *Document) error { _, err := d.AddHost(Host{Name: "a"}); return err }))
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link is gone: %v %v", fi.Mode(), err)
	}
	if s, err := Load(real); err != nil || len(s.Hosts) != 1 {
		t.Errorf("target after the edit: %v %v", s, err)
	}
}

// TestSecretsForeignOwner: secrets someone else owns are refused (issue 9,
// finding 3).
func TestSecretsForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown to uid 65534")
	}
	t.Setenv("SUDO_UID", "")
	dir := filepath.Join(t.TempDir(), "wgnet.secrets")
	must(t, WritePrivateKey(dir, "s1", mustPrivate(t)))
	must(t, os.Chown(filepath.Join(dir, "s1.key"), 65534, 65534))
	if _, _, err := LoadSecrets(dir); err == nil || !strings.Contains(err.Error(), "s1.key: owned by uid 65534") {
		t.Errorf("foreign key file: %v", err)
	}
	must(t, os.Chown(filepath.Join(dir, "s1.key"), 0, 0))
	must(t, os.Chown(dir, 65534, 65534))
	want := dir + ": owned by uid 65534, not root or you (uid 0); chown -R 0 " + dir + " or remove it"
	if _, _, err := LoadSecrets(dir); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("foreign secrets dir: %v\nwant %s", err, want)
	}
	if err := WritePrivateKey(dir, "s2", mustPrivate(t)); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("write into a foreign secrets dir: %v", err)
	}
}
