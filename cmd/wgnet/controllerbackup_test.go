package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// TestControllerBackupRestore backs up a running controller with hosts and
// tokens, restores it into a new data directory and starts a controller
// there: the same CA (a client pinned to the old CA hash connects, a join
// token made before the backup still works), the same networks, hosts,
// revisions and audit log. status, audit and token create --route on the way.
func TestControllerBackupRestore(t *testing.T) {
	dir := t.TempDir()
	url, hash, token := startControllerAt(t, filepath.Join(dir, "data"))
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	remote := []string{"--controller", url, "--ca-hash", hash, "--token-file", tokenFile}
	on := func(args ...string) []string { return append(append(args, remote...), "--network", "demo") }
	mustCLI(t, dir, append([]string{"network", "create", "demo", "--subnet", "10.61.0.0/24"}, remote...)...)
	for i, name := range []string{"s1", "s2"} {
		k, _ := wgkey.GeneratePrivate()
		mustCLI(t, dir, on("add", name, "--public-key", k.Public().String(), "--endpoint", "203.0.113."+string(rune('1'+i))+":51820")...)
	}
	if out := mustCLI(t, dir, append([]string{"status", "demo"}, remote...)...); strings.Count(out, "never reported") != 2 {
		t.Errorf("status before any agent reported:\n%s", out)
	}
	tok := strings.TrimSpace(mustCLI(t, dir, append([]string{"token", "create", "demo", "--uses", "2", "--route", "172.30.0.0/16"}, remote...)...))
	if _, errs, code := cli(t, dir, append([]string{"token", "create", "demo", "--route", "nope"}, remote...)...); code != 2 {
		t.Errorf("token create --route nope: exit %d (%s), want 2", code, errs)
	}
	listJSON := func() string { return mustCLI(t, dir, on("list", "-o", "json")...) }
	before := listJSON()

	archive := filepath.Join(dir, "backup.tar")
	mustCLI(t, dir, "controller", "backup", "--data", filepath.Join(dir, "data"), "--out", archive)
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}
	restored := filepath.Join(dir, "restored")
	if out := mustCLI(t, dir, "controller", "restore", "--data", restored, "--from", archive); !strings.Contains(out, "1 networks") {
		t.Errorf("restore: %s", out)
	}
	if _, errs, code := cli(t, dir, "controller", "restore", "--data", restored, "--from", archive); code == 0 || !strings.Contains(errs, "not empty") {
		t.Errorf("restore into a non-empty directory: exit %d, %s", code, errs)
	}

	url2, hash2, token2 := startControllerAt(t, restored)
	if hash2 != hash || token2 != "" {
		t.Errorf("restored controller: CA pin %s (want %s), new admin token %q (want none)", hash2, hash, token2)
	}
	remote[1] = url2 // the old pin and the old admin token
	if after := listJSON(); after != before {
		t.Errorf("hosts after restore:\n%s\nbefore:\n%s", after, before)
	}
	// The join token from before the backup works against the restored
	// controller when its URL is the restored one's (a real restore keeps the URL).
	jt, err := api.ParseJoinToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	jt.URLs = []string{url2}
	k, _ := wgkey.GeneratePrivate()
	e, err := client.Enroll(context.Background(), jt.String(), api.Host{Name: "s3", PublicKey: k.Public().String(), Keepalive: 25, Routes: []string{"172.30.3.0/24"}})
	if err != nil || e.Revision != 4 || len(e.Host.Routes) != 1 {
		t.Errorf("enroll on the restored controller with the old token: %+v, %v", e, err)
	}
	var audit api.Audit
	if err := json.Unmarshal([]byte(mustCLI(t, dir, append([]string{"controller", "audit", "-o", "json"}, remote...)...)), &audit); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit.Entries {
		actions = append(actions, e.Action+" "+e.Subject)
		if strings.Contains(e.Actor, token) {
			t.Errorf("audit entry holds the admin token: %+v", e)
		}
	}
	if len(actions) != 7 {
		t.Fatalf("audit after restore: %q", actions)
	}
	want := []string{"token-created admin " + actions[0][len("token-created admin "):], "network-created demo", "host-added s1", "host-added s2",
		"token-created " + actions[4][len("token-created "):], "host-added s3", "host-enrolled " + actions[6][len("host-enrolled "):]}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("audit after restore (-want +got):\n%s", diff)
	}
	if out := mustCLI(t, dir, append([]string{"controller", "audit"}, remote...)...); !strings.Contains(out, "host-enrolled") {
		t.Errorf("controller audit:\n%s", out)
	}
}
