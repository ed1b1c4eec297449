package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/netnstest"
)

// TestCLIAgent: join --no-run against a controller process, the files it
// writes (0600 in a 0700 directory, no private key outside the key file),
// show -o json, the refusals (a second join, a default route, no token, not
// joined) with exit 2, a route the token does not allow waiting for an
// admin's approval, and leave.
func TestCLIAgent(t *testing.T) {
	remote := startController(t)
	dir := t.TempDir()
	mustCLI(t, dir, append([]string{"network", "create", "demo", "--subnet", "10.62.0.0/24"}, remote...)...)
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, dir, append([]string{"token", "create", "demo", "--uses", "3", "--route", "172.19.0.0/16", "-o", "json"}, remote...)...)), &tok); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "join")
	if err := os.WriteFile(tokenFile, []byte(tok.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	adir := filepath.Join(t.TempDir(), "agent")
	iface := "wgt" + netnstest.Unique(8)
	out := mustCLI(t, dir, "agent", "join", "--token-file", tokenFile, "--name", "s1", "--endpoint", "192.0.2.7:51820",
		"--route", "172.19.1.0/24", "--dir", adir, "--interface", iface, "--allow", "dns,full-tunnel", "--no-run", "-o", "json")
	var joined struct{ Network, Host, PublicKey string }
	if err := json.Unmarshal([]byte(out), &joined); err != nil || joined.Network != "demo" || joined.Host != "s1" {
		t.Fatalf("join -o json: %s (%v)", out, err)
	}
	for path, want := range map[string]os.FileMode{adir: 0o700, filepath.Join(adir, "agent.json"): 0o600, filepath.Join(adir, "private.key"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %04o", path, fi.Mode(), err, want)
		}
	}
	key, _ := os.ReadFile(filepath.Join(adir, "private.key"))
	conf, _ := os.ReadFile(filepath.Join(adir, "agent.json"))
	if len(key) < 44 || strings.Contains(string(conf), strings.TrimSpace(string(key))) {
		t.Errorf("agent.json holds the private key, or no key was written")
	}
	if !strings.Contains(string(conf), `"allow": {`) || !strings.Contains(string(conf), `"full_tunnel": true`) || strings.Contains(string(conf), `"fwmark"`) {
		t.Errorf("agent.json does not say what join --allow dns,full-tunnel allowed:\n%s", conf)
	}
	var shown struct {
		Network, Host string
		URLs          []string `json:"urls"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "agent", "show", "--dir", adir, "-o", "json")), &shown); err != nil || shown.Host != "s1" || len(shown.URLs) != 1 {
		t.Errorf("show: %+v, %v", shown, err)
	}
	if o := mustCLI(t, dir, "agent", "show", "--dir", adir); strings.Contains(o, "wgnet-agent-") {
		t.Errorf("show prints the credential: %s", o)
	}
	other := filepath.Join(t.TempDir(), "other")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "join", "--token-file", tokenFile, "--dir", adir, "--no-run"}, "already joined"},
		{[]string{"agent", "join", "--token-file", tokenFile, "--name", "s2", "--route", "0.0.0.0/0", "--dir", other, "--no-run"}, "default route"},
		{[]string{"agent", "join", "--dir", other}, "give the join token"},
		{[]string{"agent", "join", "--token-file", tokenFile, "--name", "s2", "--allow", "dns,hooks", "--dir", other, "--no-run"}, `--allow "hooks"`},
		{[]string{"agent", "show", "--dir", other}, "not joined"},
		{[]string{"agent", "run", "--dir", other, "--metrics", "0.0.0.0:9586"}, "loopback"},
		{[]string{"agent", "run", "--dir", other, "--resolve-every", "500ms"}, "1s or more"},
	} {
		_, errs, code := cli(t, dir, tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("wgnet %s: exit %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, errs, tc.want)
		}
	}
	// A route the token does not allow waits for an admin instead.
	pend := filepath.Join(t.TempDir(), "pending")
	if _, errs, code := cli(t, dir, "agent", "join", "--token-file", tokenFile, "--name", "s2", "--route", "10.99.0.0/24", "--dir", pend, "--no-run"); code != 0 || !strings.Contains(errs, "approval") {
		t.Errorf("join asking for a route the token does not allow: exit %d, %q; want 0 and a word of the approval", code, errs)
	}
	if o := mustCLI(t, dir, append([]string{"list", "--network", "demo"}, remote...)...); !strings.Contains(o, "waiting for approval: 10.99.0.0/24") {
		t.Errorf("list does not show s2's route waiting:\n%s", o)
	}
	mustCLI(t, dir, "agent", "leave", "--dir", pend, "--backend", "userspace")
	if o := mustCLI(t, dir, "agent", "leave", "--dir", adir, "--backend", "userspace"); !strings.Contains(o, "s1 left network demo") {
		t.Errorf("leave: %s", o)
	}
	if _, err := os.Stat(filepath.Join(adir, "agent.json")); !os.IsNotExist(err) {
		t.Errorf("agent.json after leave: %v", err)
	}
	var hosts struct{ Hosts []any }
	if err := json.Unmarshal([]byte(mustCLI(t, dir, append([]string{"list", "--network", "demo", "-o", "json"}, remote...)...)), &hosts); err != nil || len(hosts.Hosts) != 0 {
		t.Errorf("hosts after leave: %+v, %v", hosts, err)
	}
}
