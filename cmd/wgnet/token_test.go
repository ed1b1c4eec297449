package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/store"
)

// TestAdminTokenRotation rotates the admin token as an operator would: make a
// second one, switch to it, revoke the first, which stops working at once;
// the last admin token can't be revoked; a revoked join token leaves the
// list (the store's conformance test shows it admits no one); no secret is
// ever listed.
func TestAdminTokenRotation(t *testing.T) {
	dir := t.TempDir()
	url, hash, first := startControllerAt(t, filepath.Join(dir, "data"))
	n := 0
	as := func(token string, args ...string) []string {
		n++
		f := filepath.Join(dir, "token-file-"+string(rune('a'+n)))
		if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return append(args, "--controller", url, "--ca-hash", hash, "--token-file", f)
	}
	id := func(secret string) string { return store.HashToken(secret).ID() }

	second := strings.TrimSpace(mustCLI(t, dir, as(first, "token", "admin")...))
	if !strings.HasPrefix(second, "wgnet-admin-") || second == first {
		t.Fatalf("token admin printed %q", second)
	}
	mustCLI(t, dir, as(second, "network", "create", "n", "--subnet", "10.80.0.0/24")...)
	mustCLI(t, dir, as(second, "token", "create", "n", "--uses", "3")...)

	var list struct {
		Tokens []struct{ ID, Kind string } `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, dir, as(second, "token", "list", "-o", "json")...)), &list); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, tk := range list.Tokens {
		kinds[tk.ID] = tk.Kind
	}
	if len(kinds) != 3 || kinds[id(first)] != "admin" || kinds[id(second)] != "admin" {
		t.Errorf("token list: %+v; want the two admin tokens %s, %s and one join token", list, id(first), id(second))
	}
	text := mustCLI(t, dir, as(second, "token", "list")...)
	if strings.Contains(text, strings.TrimPrefix(first, "wgnet-admin-")) || strings.Contains(text, strings.TrimPrefix(second, "wgnet-admin-")) {
		t.Errorf("token list shows a secret:\n%s", text)
	}

	// Rotate: the second revokes the first, which is refused from then on.
	if out := mustCLI(t, dir, as(second, "token", "revoke", id(first))...); !strings.Contains(out, "revoked "+id(first)) {
		t.Errorf("revoke: %s", out)
	}
	if _, errs, code := cli(t, dir, as(first, "network", "list")...); code != 2 || !strings.Contains(errs, "401") && !strings.Contains(strings.ToLower(errs), "unauthorized") {
		t.Errorf("the revoked admin token: exit %d, %s", code, errs)
	}
	// The last admin token stays.
	if _, errs, code := cli(t, dir, as(second, "token", "revoke", id(second))...); code != 2 || !strings.Contains(errs, "last admin token") {
		t.Errorf("revoke the last admin token: exit %d, %s", code, errs)
	}
	mustCLI(t, dir, as(second, "network", "list")...)

	// A join token, revoked, is gone.
	var jt struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, dir, as(second, "token", "list", "-o", "json")...)), &list); err != nil {
		t.Fatal(err)
	}
	for _, tk := range list.Tokens {
		if tk.Kind == "enroll" {
			jt.ID = tk.ID
		}
	}
	mustCLI(t, dir, as(second, "token", "revoke", jt.ID)...)
	if out := mustCLI(t, dir, as(second, "token", "list")...); strings.Contains(out, jt.ID) {
		t.Errorf("revoked join token still listed:\n%s", out)
	}
	if _, errs, code := cli(t, dir, as(second, "token", "revoke", jt.ID)...); code != 2 || !strings.Contains(errs, "not found") {
		t.Errorf("revoke it again: exit %d, %s", code, errs)
	}
}
