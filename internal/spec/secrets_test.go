package spec

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgkey"
)

func TestSecretsDir(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"wgnet.yaml", "wgnet.secrets"},
		{"/etc/wgnet/prod.yml", "/etc/wgnet/prod.secrets"},
		{"conf/a.b.yaml", "conf/a.b.secrets"},
		{"spec", "spec.secrets"},
		{".wgnet", ".wgnet.secrets"},
	}
	for _, tt := range tests {
		if got := SecretsDir(tt.spec); got != tt.want {
			t.Errorf("SecretsDir(%q) = %q, want %q", tt.spec, got, tt.want)
		}
	}
}

func mustPrivate(t *testing.T) wgkey.Private {
	t.Helper()
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPSK(t *testing.T) wgkey.Key {
	t.Helper()
	k, err := wgkey.GeneratePSK()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestSecretsRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wgnet.secrets")
	k1, k2, psk := mustPrivate(t), mustPrivate(t), mustPSK(t)
	for _, err := range []error{
		WritePrivateKey(dir, "s1", k1),
		WritePrivateKey(dir, "s2", k2),
		WritePSK(dir, Pair{"s2", "s1"}, psk),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("secrets dir mode %04o, want 0700", m)
	}
	for _, f := range []string{"s1.key", "s2.key", "s1+s2.psk"} {
		if m := mode(t, filepath.Join(dir, f)); m != 0o600 {
			t.Errorf("%s mode %04o, want 0600", f, m)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "s1.key"))
	if string(b) != k1.Base64()+"\n" {
		t.Errorf("s1.key holds %d bytes, want the base64 key and a newline", len(b))
	}
	sec, warns, err := LoadSecrets(dir)
	if err != nil || len(warns) > 0 {
		t.Fatalf("LoadSecrets: %v %v", warns, err)
	}
	want := Secrets{
		PrivateKeys:   map[string]wgkey.Private{"s1": k1, "s2": k2},
		PresharedKeys: map[Pair]wgkey.Key{{"s1", "s2"}: psk},
	}
	if diff := cmp.Diff(want, sec); diff != "" {
		t.Errorf("LoadSecrets (-want +got):\n%s", diff)
	}
}

// TestKeyFileReadByWG checks that wg(8) reads a key file as we write it.
func TestKeyFileReadByWG(t *testing.T) {
	wg, err := exec.LookPath("wg")
	if err != nil {
		t.Skip("wg (wireguard-tools) not installed")
	}
	dir := t.TempDir()
	k := mustPrivate(t)
	if err := WritePrivateKey(dir, "s1", k); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(filepath.Join(dir, "s1.key"))
	defer f.Close()
	cmd := exec.Command(wg, "pubkey")
	cmd.Stdin = f
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != k.Public().String() {
		t.Errorf("wg pubkey = %s, want %s", got, k.Public())
	}
}

func TestLoadSecretsMissingDir(t *testing.T) {
	sec, warns, err := LoadSecrets(filepath.Join(t.TempDir(), "none.secrets"))
	if err != nil || len(warns) > 0 || sec.PrivateKeys == nil || sec.PresharedKeys == nil || len(sec.PrivateKeys)+len(sec.PresharedKeys) > 0 {
		t.Errorf("LoadSecrets(missing) = %v, %v, %v; want empty maps", sec, warns, err)
	}
}

// secretsWarnings returns LoadSecrets' warnings about a directory others can read.
func secretsWarnings(t *testing.T) diag.List {
	dir := filepath.Join(t.TempDir(), "w.secrets")
	must(t, WritePrivateKey(dir, "s1", mustPrivate(t)))
	must(t, os.Chmod(dir, 0o750))
	_, warns, err := LoadSecrets(dir)
	if err != nil || len(warns) != 1 {
		t.Fatalf("LoadSecrets = %v, %v; want one warning", warns, err)
	}
	return warns
}

func TestLoadSecretsWarnings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "w.secrets")
	if err := WritePrivateKey(dir, "s1", mustPrivate(t)); err != nil {
		t.Fatal(err)
	}
	if err := WritePrivateKey(dir, "s2", mustPrivate(t)); err != nil {
		t.Fatal(err)
	}
	s1, s2 := filepath.Join(dir, "s1.key"), filepath.Join(dir, "s2.key")
	must(t, os.Chmod(s1, 0o644))
	must(t, os.Chmod(s2, 0o640))
	must(t, os.Chmod(dir, 0o750))
	must(t, os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "Bad Name.key"), nil, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "s1-s2.psk"), nil, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, ".s3.key.tmp123"), nil, 0o600))
	sec, warns, err := LoadSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"secrets directory " + dir + " is group accessible (mode 0750); run: chmod 700 " + dir,
		dir + `/Bad Name.key: "Bad Name" is not a host name; file ignored`,
		dir + "/notes.txt: not a HOST.key or A+B.psk file; ignored",
		dir + "/s1-s2.psk: not named HOST1+HOST2.psk; file ignored",
		"key file " + s1 + " is world accessible (mode 0644); run: chmod 600 " + s1,
		"key file " + s2 + " is group accessible (mode 0640); run: chmod 600 " + s2,
	}
	var got []string
	for _, w := range warns {
		if w.File != dir || w.Severity != diag.Warning || w.Code != CodeSecretsMode {
			t.Errorf("%v: want a %s warning about %s", w, CodeSecretsMode, dir)
		}
		got = append(got, w.Message)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if len(sec.PrivateKeys) != 2 {
		t.Errorf("loaded %d private keys, want 2 (warnings don't stop a key)", len(sec.PrivateKeys))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLoadSecretsBadKeys(t *testing.T) {
	dir := t.TempDir()
	secret := "c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IHNlY3I=" // 32 bytes but not clamped: fine
	good := mustPrivate(t).Base64()
	files := map[string]string{
		"s1.key":    "not a key\n",
		"s2.key":    good[:40] + "\n",
		"s3.key":    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"s4.key":    secret + "\n",
		"s1+s2.psk": "short\n",
		"s2+s3.psk": mustPSK(t).String(),
		"s3+s2.psk": mustPSK(t).String(),
	}
	for f, c := range files {
		must(t, os.WriteFile(filepath.Join(dir, f), []byte(c), 0o600))
	}
	sec, _, err := LoadSecrets(dir)
	if err == nil {
		t.Fatal("LoadSecrets accepted bad keys")
	}
	msg := err.Error()
	for _, want := range []string{
		dir + "/s1.key: not a private key",
		dir + "/s2.key: not a private key",
		dir + "/s3.key: not a private key",
		dir + "/s1+s2.psk: not a preshared key",
		"a second preshared key for s2 and s3",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	for _, leak := range []string{good[:8], good[4:12], "not a key\n"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error %q quotes key material %q", msg, leak)
		}
	}
	if _, ok := sec.PrivateKeys["s4"]; !ok {
		t.Error("a good key was not loaded next to bad ones")
	}
}

// TestLoadSecretsSymlink: a key that is a link could lead to a file someone else
// controls; it is refused, not followed (issue 9, finding 3). This test said the
// opposite before that fix.
func TestLoadSecretsSymlink(t *testing.T) {
	real := t.TempDir()
	k := mustPrivate(t)
	must(t, WritePrivateKey(real, "s1", k))
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o700))
	must(t, os.Symlink(filepath.Join(real, "s1.key"), filepath.Join(dir, "s1.key")))
	sec, _, err := LoadSecrets(dir)
	if err == nil || !strings.Contains(err.Error(), "s1.key: is a symbolic link") {
		t.Errorf("LoadSecrets with a symlinked key: %v, want refused", err)
	}
	if _, ok := sec.PrivateKeys["s1"]; ok {
		t.Error("the key behind the symlink was loaded")
	}
	// A symlinked secrets directory is refused too.
	link := filepath.Join(t.TempDir(), "wgnet.secrets")
	must(t, os.Symlink(real, link))
	if _, _, err := LoadSecrets(link); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("LoadSecrets of a symlinked directory: %v, want refused", err)
	}
}

func TestRemoveHostSecrets(t *testing.T) {
	dir := t.TempDir()
	must(t, WritePrivateKey(dir, "s1", mustPrivate(t)))
	must(t, WritePrivateKey(dir, "s2", mustPrivate(t)))
	must(t, WritePSK(dir, Pair{"s1", "s2"}, mustPSK(t)))
	must(t, WritePSK(dir, Pair{"s3", "s1"}, mustPSK(t)))
	must(t, WritePSK(dir, Pair{"s2", "s3"}, mustPSK(t)))
	must(t, RemoveHostSecrets(dir, "s1"))
	must(t, RemoveHostSecrets(dir, "s1")) // twice: nothing left is fine
	var got []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if diff := cmp.Diff([]string{"s2+s3.psk", "s2.key"}, got); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
	if err := RemoveHostSecrets(dir, "../x"); err == nil {
		t.Error("RemoveHostSecrets accepted a path as host name")
	}
	if err := RemoveHostSecrets(filepath.Join(dir, "none"), "s1"); err != nil {
		t.Errorf("RemoveHostSecrets(missing dir) = %v", err)
	}
}

func TestWriteRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, err := range map[string]error{
		"bad host":  WritePrivateKey(dir, "../etc/passwd", mustPrivate(t)),
		"zero key":  WritePrivateKey(dir, "s1", wgkey.Private{}),
		"bad pair":  WritePSK(dir, Pair{"s1", "s1"}, mustPSK(t)),
		"bad name":  WritePSK(dir, Pair{"s1", "a+b"}, mustPSK(t)),
		"zero psk":  WritePSK(dir, Pair{"s1", "s2"}, wgkey.Key{}),
		"empty one": WritePSK(dir, Pair{"s1", ""}, mustPSK(t)),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("refused writes left %d files", len(entries))
	}
}

func TestEnsureKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wgnet.secrets")
	own := mustPrivate(t) // s2 keeps it on the host: never in dir
	kept := mustPrivate(t)
	must(t, WritePrivateKey(dir, "s3", kept))
	s := &Spec{
		Hosts: []Host{
			{Name: "s1"},
			{Name: "s2", PublicKey: own.Public()},
			{Name: "s3"},
		},
		PresharedKeys: []Pair{{"s2", "s1"}},
	}
	must(t, EnsureKeys(s, dir))
	sec, warns, err := LoadSecrets(dir)
	if err != nil || len(warns) > 0 {
		t.Fatal(warns, err)
	}
	if len(sec.PrivateKeys) != 2 || sec.PrivateKeys["s1"].Public() != s.Hosts[0].PublicKey {
		t.Errorf("s1: no private key generated to match its public key")
	}
	if _, ok := sec.PrivateKeys["s2"]; ok || s.Hosts[1].PublicKey != own.Public() {
		t.Errorf("s2 keeps its own key: got a private key or a new public key")
	}
	if !sec.PrivateKeys["s3"].Equal(kept) || s.Hosts[2].PublicKey != kept.Public() {
		t.Errorf("s3: the existing private key was not kept and derived from")
	}
	if _, ok := sec.PresharedKeys[Pair{"s1", "s2"}]; !ok {
		t.Errorf("no preshared key generated for s1+s2")
	}

	// A second run changes nothing.
	before := snapshot(t, dir)
	pubs := []wgkey.Key{s.Hosts[0].PublicKey, s.Hosts[1].PublicKey, s.Hosts[2].PublicKey}
	must(t, EnsureKeys(s, dir))
	if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
		t.Errorf("second EnsureKeys changed the secrets (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(pubs, []wgkey.Key{s.Hosts[0].PublicKey, s.Hosts[1].PublicKey, s.Hosts[2].PublicKey}); diff != "" {
		t.Errorf("second EnsureKeys changed public keys:\n%s", diff)
	}

	// A public key that does not match the private key is an error.
	s.Hosts[2].PublicKey = own.Public()
	if err := EnsureKeys(s, dir); err == nil || !strings.Contains(err.Error(), "host s3: public_key does not match the private key in "+dir+"/s3.key") {
		t.Errorf("EnsureKeys with a mismatched key = %v", err)
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestDocumentEnsureKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wgnet.yaml")
	d, err := Init(path, InitOptions{Network: "lab", Subnets: pfx("10.99.0.0/24"), Topology: TopologyHub})
	must(t, err)
	_, err = d.AddHost(Host{Name: "s1", Endpoint: "198.18.0.1:51820"})
	must(t, err)
	_, err = d.AddHost(Host{Name: "s2", Keepalive: 25})
	must(t, err)
	must(t, d.AddPresharedPair(Pair{"s2", "s1"}))
	must(t, d.Validate())
	dir := SecretsDir(path)
	must(t, d.EnsureKeys(dir))
	must(t, d.Save())

	s, err := Load(path)
	must(t, err)
	sec, warns, err := LoadSecrets(dir)
	if err != nil || len(warns) > 0 {
		t.Fatal(warns, err)
	}
	errs, warnings := s.CheckSecrets(sec)
	if len(errs)+len(warnings) > 0 {
		t.Errorf("CheckSecrets after EnsureKeys: %v %v", errs, warnings)
	}
	for _, h := range s.Hosts {
		if h.PublicKey != sec.PrivateKeys[h.Name].Public() {
			t.Errorf("%s: saved public key does not match its private key", h.Name)
		}
	}
	src, _ := os.ReadFile(path)
	for _, k := range sec.PrivateKeys {
		if bytes.Contains(src, []byte(k.Base64())) {
			t.Fatal("a private key ended up in the spec")
		}
	}
}

// secretsProblems builds a spec and secrets with every kind of mismatch and
// returns what CheckSecrets finds (also used by TestEveryCodeTested).
func secretsProblems(t *testing.T) []diag.List {
	k1, k2, stray := mustPrivate(t), mustPrivate(t), mustPrivate(t)
	src := header + "hosts:\n" +
		"  - {name: s1, address: 192.168.100.1, endpoint: 1.2.3.4:51820, public_key: " + k2.Public().String() + "}\n" +
		"  - {name: s2, address: 192.168.100.2, endpoint: 1.2.3.5:51820}\n" +
		"  - {name: s3, address: 192.168.100.3, endpoint: 1.2.3.6:51820}\n" +
		"preshared_keys: [[s1, s2]]\n"
	s, err := Parse("wgnet.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	sec := Secrets{
		PrivateKeys:   map[string]wgkey.Private{"s1": k1, "s2": k2, "s9": stray},
		PresharedKeys: map[Pair]wgkey.Key{{"s2", "s3"}: mustPSK(t)},
	}
	errs, warns := s.CheckSecrets(sec)
	return []diag.List{errs, warns}
}

func TestCheckSecrets(t *testing.T) {
	ps := secretsProblems(t)
	var got []string
	for _, p := range append(ps[0], ps[1]...) {
		got = append(got, p.Severity.String()+" "+p.Code+": "+p.Located())
	}
	// s1's public key is s2's: the message names the right one, which is random,
	// so compare up to it.
	want := []string{
		"error spec-key-mismatch: wgnet.yaml:6: hosts[0].public_key: host s1: public_key is not the public key of s1.key in the secrets directory (it is ",
		"error spec-key-missing: wgnet.yaml:8: hosts[2].public_key: host s3 has no public_key and no private key s3.key in the secrets directory",
		"error spec-psk-missing: wgnet.yaml:9: preshared_keys[0] [s1, s2]: no preshared key s1+s2.psk in the secrets directory",
		"warning spec-secret-unused: wgnet.yaml: s2+s3.psk in the secrets directory is not used by the spec",
		"warning spec-secret-unused: wgnet.yaml: s9.key in the secrets directory is not used by the spec",
	}
	if len(got) == len(want) && strings.HasPrefix(got[0], want[0]) {
		got[0] = want[0]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CheckSecrets (-want +got):\n%s", diff)
	}
}
