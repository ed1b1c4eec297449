package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// startController runs `wgnet controller` on 127.0.0.1:0 and returns the flags
// that reach it (CA pinned by hash, token in a file). It is killed at the end.
func startController(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	url, hash, token := startControllerAt(t, filepath.Join(dir, "data"))
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--controller", url, "--ca-hash", hash, "--token-file", tokenFile}
}

// startControllerAt runs `wgnet controller --data data` on 127.0.0.1:0 until
// the test ends and returns its URL, its CA pin and the admin token it
// printed ("" when the store had one already).
func startControllerAt(t *testing.T, data string, extra ...string) (url, hash, token string) {
	t.Helper()
	p := startControllerProc(t, append([]string{"--listen", "127.0.0.1:0", "--data", data}, extra...)...)
	return p.url, p.hash, p.token
}

// controllerProc is a `wgnet controller` process a test started.
type controllerProc struct {
	url, hash, token string
	cmd              *exec.Cmd
}

// startControllerProc runs `wgnet controller ARGS...` until the test ends
// (or the test kills it), and reads its URL, CA pin and admin token from
// what it prints.
func startControllerProc(t *testing.T, args ...string) *controllerProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, wgnetBin(t), append([]string{"controller"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb syncWriter
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	p := &controllerProc{cmd: cmd}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && strings.HasPrefix(f[0], "wgnet-admin-"):
			p.token = f[0]
		case len(f) == 3 && f[0] == "ca":
			p.hash = f[1]
		case len(f) == 2 && f[0] == "listening":
			p.url = f[1]
			return p
		}
	}
	cmd.Wait()
	t.Fatalf("controller %v did not start: %v\n%s", args, sc.Err(), errb.String())
	return nil
}

func TestCLIController(t *testing.T) {
	remote := startController(t)
	dir := t.TempDir()
	on := func(args ...string) []string { return append(append(args, remote...), "--network", "demo") }
	mustCLI(t, dir, append([]string{"network", "create", "demo", "--subnet", "10.60.0.0/24", "--subnet", "fd60::/64"}, remote...)...)
	if out := mustCLI(t, dir, append([]string{"network", "list"}, remote...)...); !strings.Contains(out, "demo") {
		t.Errorf("network list: %s", out)
	}
	var keys []string
	for i := 0; i < 3; i++ {
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.Public().String())
	}
	out := mustCLI(t, dir, on("add", "s1", "--public-key", keys[0], "--endpoint", "203.0.113.1:51820", "--route", "172.18.1.0/24")...)
	if !strings.Contains(out, "added s1 at 10.60.0.1, fd60::1") {
		t.Errorf("add s1: %s", out)
	}
	mustCLI(t, dir, on("add", "s2", "--public-key", keys[1], "--endpoint", "203.0.113.2:51820")...)
	mustCLI(t, dir, on("add", "s3", "--public-key", keys[2], "--keepalive", "25")...)
	for _, bad := range [][]string{
		on("add", "s4"), // no public key: the controller holds none
		on("add", "s4", "--public-key", keys[0], "--listen-port", "1"),
		on("remove", "s3", "--new-hub", "s2"),
		{"list", "--network", "demo"},            // --network without --controller
		on("add", "s4", "--public-key", keys[0]), // the key of s1: 409
	} {
		if _, errs, code := cli(t, dir, bad...); code != 2 {
			t.Errorf("wgnet %s: exit %d, want 2 (%s)", strings.Join(bad, " "), code, errs)
		}
	}
	mustCLI(t, dir, on("set", "s2", "--route", "172.18.2.0/24")...)
	var hosts struct {
		Hosts []struct {
			Name   string   `json:"name"`
			Routes []string `json:"routes"`
			Hub    bool     `json:"hub"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, dir, on("list", "-o", "json")...)), &hosts); err != nil {
		t.Fatal(err)
	}
	if len(hosts.Hosts) != 3 || !hosts.Hosts[0].Hub || len(hosts.Hosts[1].Routes) != 1 {
		t.Errorf("list: %+v", hosts)
	}
	mustCLI(t, dir, on("check")...)
	mustCLI(t, dir, on("render", "--out", "out")...)
	b, err := os.ReadFile(filepath.Join(dir, "out", "s3", "wg0.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(string(b)), "privatekey") || !strings.Contains(string(b), "172.18.2.0/24") {
		t.Errorf("rendered s3:\n%s", b)
	}
	tok := strings.TrimSpace(mustCLI(t, dir, append([]string{"token", "create", "demo", "--ttl", "1h", "--uses", "2"}, remote...)...))
	jt, err := api.ParseJoinToken(tok)
	if err != nil || jt.CAHash != remote[3] || jt.URLs[0] != remote[1] {
		t.Errorf("join token %q: %+v, %v", tok, jt, err)
	}
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	e, err := client.Enroll(context.Background(), tok, api.Host{Name: "s5", PublicKey: k.Public().String(), Keepalive: 25})
	if err != nil || e.Network != "demo" || len(e.Host.Addresses) != 2 {
		t.Errorf("enroll with the token: %+v, %v", e, err)
	}
	mustCLI(t, dir, on("remove", "s3")...)
	mustCLI(t, dir, append([]string{"network", "delete", "demo"}, remote...)...)
	if _, err := os.Stat(filepath.Join(dir, "wgnet.yaml")); err == nil {
		t.Error("a controller command wrote a spec")
	}
}
