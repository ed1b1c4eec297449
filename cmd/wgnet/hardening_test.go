package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wgnet/wgnet/internal/spec"
)

// Regression tests for issue 9, findings 1-3: lost edits, key paths that are
// shell, and secrets someone else owns.

// run runs wgnet in dir from any goroutine (cli calls t.Fatal).
func run(bin, dir string, args ...string) (string, int) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		return err.Error(), -1
	}
	return out.String(), 0
}

// parallel runs n wgnet commands at once; args(i) gives the i-th command's.
func parallel(t *testing.T, dir string, n int, args func(i int) []string) (outs []string, codes []int) {
	t.Helper()
	bin := wgnetBin(t)
	outs, codes = make([]string, n), make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], codes[i] = run(bin, dir, args(i)...)
		}()
	}
	wg.Wait()
	return outs, codes
}

// checkKeysMatch fails unless every host of the spec in dir has a key file whose
// public key is the spec's, and there are no other key files.
func checkKeysMatch(t *testing.T, dir string) *spec.Spec {
	t.Helper()
	s, err := spec.Load(filepath.Join(dir, "wgnet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sec, _, err := spec.LoadSecrets(filepath.Join(dir, "wgnet.secrets"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range s.Hosts {
		k, ok := sec.PrivateKeys[h.Name]
		if !ok {
			t.Errorf("host %s: no key file", h.Name)
		} else if k.Public() != h.PublicKey {
			t.Errorf("host %s: spec public key %s, key file's %s", h.Name, h.PublicKey, k.Public())
		}
	}
	if len(sec.PrivateKeys) != len(s.Hosts) {
		t.Errorf("%d key files for %d hosts", len(sec.PrivateKeys), len(s.Hosts))
	}
	return s
}

func TestCLIConcurrentAdds(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init", "par", "--subnet", "10.0.0.0/24", "--topology", "mesh")
	const n = 20
	outs, codes := parallel(t, dir, n, func(i int) []string {
		return []string{"add", fmt.Sprintf("h%d", i+1), "--endpoint", fmt.Sprintf("10.1.0.%d:51820", i+1)}
	})
	told := map[string]string{}
	for i := range n {
		if codes[i] != 0 {
			t.Errorf("add h%d: exit %d: %s", i+1, codes[i], outs[i])
			continue
		}
		// "added h3 at 10.0.0.3": no two processes are told the same address.
		f := strings.Fields(outs[i])
		addr := f[len(f)-1]
		if other, dup := told[addr]; dup {
			t.Errorf("h%d and %s were both told %s", i+1, other, addr)
		}
		told[addr] = fmt.Sprintf("h%d", i+1)
	}
	s := checkKeysMatch(t, dir)
	addrs := map[string]bool{}
	for _, h := range s.Hosts {
		for _, a := range h.Addresses {
			addrs[a.String()] = true
		}
	}
	if len(s.Hosts) != n || len(addrs) != n {
		t.Errorf("%d parallel adds: %d hosts, %d distinct addresses; want %d each", n, len(s.Hosts), len(addrs), n)
	}
	t.Logf("%d parallel adds: %d hosts, %d distinct addresses, %d matching key files", n, len(s.Hosts), len(addrs), n)
}

func TestCLIConcurrentSameName(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init", "par", "--subnet", "10.0.0.0/24", "--topology", "mesh")
	const n = 10
	outs, codes := parallel(t, dir, n, func(int) []string { return []string{"add", "same"} })
	ok := 0
	for i := range n {
		switch {
		case codes[i] == 0:
			ok++
		case !strings.Contains(outs[i], "same"):
			t.Errorf("a losing add says: %s", outs[i])
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d parallel adds of one name succeeded, want exactly 1", ok, n)
	}
	if s := checkKeysMatch(t, dir); len(s.Hosts) != 1 {
		t.Errorf("%d hosts, want 1", len(s.Hosts))
	}
}

// TestCLIKeyPathInjection: a private_key_file lands in a root shell hook; one
// that is not plain data is refused wherever it comes in.
func TestCLIKeyPathInjection(t *testing.T) {
	dir := t.TempDir()
	pwned := filepath.Join(t.TempDir(), "pwned")
	bad := "/etc/wireguard/x.key; touch " + pwned
	mustCLI(t, dir, "init", "inj", "--subnet", "10.0.0.0/24", "--topology", "mesh")
	mustCLI(t, dir, "add", "a", "--endpoint", "10.1.0.1:51820")
	pub := "q58mKMMlwUHp+yQw8QaFD2KTC8PwsS3zmpuEpJx8HRI="
	before, _ := os.ReadFile(filepath.Join(dir, "wgnet.yaml"))

	// add and set: a usage error, the spec untouched.
	for _, args := range [][]string{
		{"add", "b", "--public-key", pub, "--private-key-file", bad},
		{"set", "a", "--public-key", pub, "--private-key-file", bad},
		{"add", "c", "--public-key", pub, "--private-key-file", "/etc/../shadow"},
	} {
		out, errs, code := cli(t, dir, args...)
		if code == 0 || !strings.Contains(errs, "--private-key-file") {
			t.Errorf("wgnet %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "wgnet.yaml")); !bytes.Equal(before, after) {
		t.Errorf("a refused edit changed the spec:\n%s", after)
	}

	// A hand-edited spec: refused with file:line by every command that reads it.
	spath := filepath.Join(dir, "wgnet.yaml")
	src := string(before) + "  - name: b\n    address: [10.0.0.9]\n    public_key: " + pub + "\n    private_key_file: '" + bad + "'\n"
	if err := os.WriteFile(spath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	line := strings.Count(src[:strings.Index(src, "private_key_file")], "\n") + 1
	want := fmt.Sprintf("wgnet.yaml:%d: hosts[1].private_key_file", line)
	if _, err := spec.Load(spath); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("load of the hand-edited spec: %v\nwant %q", err, want)
	}
	if _, errs, _ := spec.Check("wgnet.yaml", []byte(src)); len(errs) != 1 || errs[0].Code != spec.CodePrivateKeyFile || errs[0].Line != line {
		t.Errorf("check of the hand-edited spec: %v, want one %s at line %d", errs, spec.CodePrivateKeyFile, line)
	}
	_, errs, code := cli(t, dir, "render")
	if code == 0 || !strings.Contains(errs, want) {
		t.Errorf("render of the hand-edited spec: exit %d, %s\nwant %q", code, errs, want)
	}

	// import: the hook form refused with file:line.
	idir := t.TempDir()
	k1 := strings.TrimSpace(mustCLI(t, idir, "genkey"))
	cmd := exec.Command(wgnetBin(t), "pubkey")
	cmd.Stdin = strings.NewReader(k1 + "\n")
	p1, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	conf1 := "[Interface]\nPrivateKey = " + k1 + "\nAddress = 10.0.0.1/24\nListenPort = 51820\n\n" +
		"[Peer]\nPublicKey = " + pub + "\nAllowedIPs = 10.0.0.2/32\nEndpoint = 10.1.0.2:51820\n"
	conf2 := "[Interface]\nAddress = 10.0.0.2/24\nListenPort = 51820\nPostUp = wg set %i private-key " + bad + "\n\n" +
		"[Peer]\nPublicKey = " + strings.TrimSpace(string(p1)) + "\nAllowedIPs = 10.0.0.1/32\n"
	if err := os.WriteFile(filepath.Join(idir, "s1.conf"), []byte(conf1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(idir, "s2.conf"), []byte(conf2), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code = cli(t, idir, "import", "s1.conf", "s2.conf")
	if code == 0 || !strings.Contains(errs, "s2.conf:4: PostUp") {
		t.Errorf("import of an injected key hook: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(idir, "wgnet.yaml")); err == nil {
		t.Error("a refused import wrote the spec")
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Error("the injected command ran")
	}
}

// TestCLIForeignSecrets: wgnet refuses secrets it cannot trust, and names the
// path and the fix.
func TestCLIForeignSecrets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user (chown 65534)")
	}
	t.Setenv("SUDO_UID", "")
	newNet := func(t *testing.T) string {
		dir := t.TempDir()
		mustCLI(t, dir, "init", "trust", "--subnet", "10.0.0.0/24", "--topology", "mesh")
		mustCLI(t, dir, "add", "a", "--endpoint", "10.1.0.1:51820")
		return dir
	}
	t.Run("secrets dir", func(t *testing.T) {
		dir := newNet(t)
		if err := os.Chown(filepath.Join(dir, "wgnet.secrets"), 65534, 65534); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"render"}, {"add", "b"}, {"list"}} {
			_, errs, code := cli(t, dir, args...)
			if code == 0 || !strings.Contains(errs, "wgnet.secrets: owned by uid 65534") || !strings.Contains(errs, "chown -R 0 ") {
				t.Errorf("wgnet %s with a foreign secrets dir: exit %d, %s", args[0], code, errs)
			}
		}
	})
	for _, file := range []string{"wgnet.secrets/a.key", "wgnet.yaml"} {
		t.Run(file, func(t *testing.T) {
			dir := newNet(t)
			if err := os.Chown(filepath.Join(dir, file), 65534, 65534); err != nil {
				t.Fatal(err)
			}
			_, errs, code := cli(t, dir, "render")
			if code == 0 || !strings.Contains(errs, file+": owned by uid 65534") {
				t.Errorf("render with a foreign %s: exit %d, %s", file, code, errs)
			}
		})
	}
	t.Run("render into a symlinked out/HOST", func(t *testing.T) {
		dir := newNet(t)
		elsewhere := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "out"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, filepath.Join(dir, "out", "a")); err != nil {
			t.Fatal(err)
		}
		_, errs, code := cli(t, dir, "render")
		if code == 0 || !strings.Contains(errs, filepath.Join("out", "a")+": is a symbolic link") {
			t.Errorf("render into a symlinked out/a: exit %d, %s", code, errs)
		}
		if ents, _ := os.ReadDir(elsewhere); len(ents) > 0 {
			t.Errorf("render wrote through the link: %v", ents)
		}
	})
	t.Run("render into a foreign out/HOST", func(t *testing.T) {
		dir := newNet(t)
		host := filepath.Join(dir, "out", "a")
		if err := os.MkdirAll(host, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(host, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, errs, code := cli(t, dir, "render")
		if code == 0 || !strings.Contains(errs, "out/a: owned by uid 65534") {
			t.Errorf("render into a foreign out/a: exit %d, %s", code, errs)
		}
	})
}

// TestCLISymlinkedSpec: a spec that is a link is edited at its target, and the
// link stays a link.
func TestCLISymlinkedSpec(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(t.TempDir(), "net.yaml")
	link := filepath.Join(dir, "wgnet.yaml")
	mustCLI(t, dir, "-f", real, "init", "ln", "--subnet", "10.0.0.0/24", "--topology", "mesh")
	if err := os.Chmod(real, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, dir, "add", "a", "--endpoint", "10.1.0.1:51820")
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("after an edit, wgnet.yaml is %v (%v), want still a symlink", fi.Mode(), err)
	}
	rfi, err := os.Stat(real)
	if err != nil || rfi.Mode().Perm() != 0o640 {
		t.Errorf("target mode after the edit: %v (%v), want 0640 kept", rfi.Mode(), err)
	}
	s, err := spec.Load(real)
	if err != nil || len(s.Hosts) != 1 {
		t.Errorf("the edit did not reach the target: %v, %v", s, err)
	}
}
