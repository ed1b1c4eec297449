package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// TestPolicyOnController: the policy verbs and add/set --tag act on a
// controller's network as they do on a spec; a rule naming nothing is refused
// with the controller's reason, and the listing reads back what was set.
func TestPolicyOnController(t *testing.T) {
	remote := startController(t)
	dir := t.TempDir()
	on := func(args ...string) []string { return append(append(args, remote...), "--network", "n") }
	mustCLI(t, dir, append([]string{"network", "create", "n", "--subnet", "10.61.0.0/24"}, remote...)...)
	key := func() string {
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			t.Fatal(err)
		}
		return k.Public().String()
	}
	mustCLI(t, dir, on("add", "hub", "--public-key", key(), "--endpoint", "198.18.9.1:51820")...)
	mustCLI(t, dir, on("add", "app1", "--public-key", key(), "--tag", "app")...)
	mustCLI(t, dir, on("add", "db1", "--public-key", key(), "--route", "172.19.3.0/24")...)
	mustCLI(t, dir, on("set", "db1", "--tag", "db")...)

	mustCLI(t, dir, on("policy", "group", "apps", "tag:app")...)
	mustCLI(t, dir, on("policy", "group", "dbs", "tag:db")...)
	mustCLI(t, dir, on("policy", "add", "allow apps -> dbs tcp 5432")...)
	mustCLI(t, dir, on("policy", "add", "allow any -> any icmp", "--at", "1")...)
	mustCLI(t, dir, on("policy", "default", "deny")...)
	if _, errs, code := cli(t, dir, on("policy", "add", "allow nosuch -> dbs")...); code != 2 || !strings.Contains(errs, "nosuch") {
		t.Errorf("policy add naming nothing: exit %d, %s", code, errs)
	}
	var l struct {
		Default string              `json:"default"`
		Groups  map[string][]string `json:"groups"`
		Rules   []string            `json:"rules"`
	}
	out := mustCLI(t, dir, on("policy", "list", "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if l.Default != "deny" || strings.Join(l.Rules, "|") != "allow any -> any icmp|allow apps -> dbs tcp 5432" ||
		strings.Join(l.Groups["apps"], ",") != "tag:app" {
		t.Errorf("policy list: %+v", l)
	}
	mustCLI(t, dir, on("policy", "remove", "1")...)
	if out := mustCLI(t, dir, on("policy", "list")...); !strings.Contains(out, "1  allow apps -> dbs tcp 5432") || strings.Contains(out, "icmp") {
		t.Errorf("policy list after remove 1:\n%s", out)
	}
	// The host's rendered config carries the compiled filter.
	mustCLI(t, dir, on("render", "--out", "out")...)
	var hosts struct {
		Hosts []struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, dir, on("list", "-o", "json")...)), &hosts); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts.Hosts {
		if h.Name == "db1" && strings.Join(h.Tags, ",") != "db" {
			t.Errorf("db1's tags: %v", h.Tags)
		}
	}
}
