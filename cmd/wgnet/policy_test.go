package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyCLI edits a spec's policy with the CLI: comments stay, the rules
// land in order, bad input is a usage error (2) and an unknown name is refused.
func TestPolicyCLI(t *testing.T) {
	dir := t.TempDir()
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, dir, args...)
		if code != 0 {
			t.Fatalf("wgnet %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	must("init", "seg", "--subnet", "192.168.100.0/24", "--topology", "hub")
	must("add", "s1", "--hub", "--endpoint", "198.18.0.1:51820", "--tag", "core")
	must("add", "s2", "--tag", "app", "--route", "10.0.2.0/24")
	must("add", "s3", "--tag", "db", "--route", "10.0.3.0/24")
	path := filepath.Join(dir, "wgnet.yaml")
	src, _ := os.ReadFile(path)
	os.WriteFile(path, append(src, "# keep me\n"...), 0o644)
	must("policy", "group", "app", "tag:app")
	must("policy", "group", "db", "tag:db")
	must("policy", "add", "allow app -> db tcp 5432")
	must("policy", "add", "deny app -> db", "--at", "2")
	must("policy", "add", "allow any -> any icmp", "--at", "1")
	must("policy", "default", "deny")
	must("set", "s2", "--tag", "web")
	out := must("policy", "list")
	for _, want := range []string{"default: deny", "group app:", "  1  allow any -> any icmp", "  2  allow app -> db tcp 5432", "  3  deny app -> db"} {
		if !strings.Contains(out, want) {
			t.Errorf("policy list lacks %q:\n%s", want, out)
		}
	}
	if out := must("policy", "remove", "1"); !strings.Contains(out, "removed rule: allow any -> any icmp") {
		t.Errorf("remove said %q", out)
	}
	src, _ = os.ReadFile(path)
	for _, want := range []string{"# keep me", "tags: [app, web]", "- allow app -> db tcp 5432\n    - deny app -> db\n"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("spec lacks %q:\n%s", want, src)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"policy", "add", "allow app => db"}, 2, "the arrow"},
		{[]string{"policy", "add", "allow app -> nobody"}, 2, `"nobody": no group or host has that name`},
		{[]string{"policy", "remove", "7"}, 2, "no rule 7"},
		{[]string{"policy", "default", "maybe"}, 2, "want allow or deny"},
	} {
		_, errOut, code := cli(t, dir, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("wgnet %s: exit %d %q, want %d %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.want)
		}
	}
}

// TestPolicyCheck: check on a mesh whose policy keeps hosts apart reports the
// policy's findings, and not the peers the compiler left out on purpose.
func TestPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../internal/policy/testdata/mesh-deny.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "wgnet.yaml"), src, 0o644)
	if _, errOut, code := cli(t, dir, "set", "app1", "--tag", "app"); code != 0 { // makes the keys
		t.Fatal(errOut)
	}
	out, errOut, code := cli(t, dir, "check")
	if code != 0 || strings.Contains(out, "missing-peer") || strings.Contains(out, "no-route") ||
		!strings.Contains(out, "policy-unreachable: hosts[0]: no rule lets any other host reach app1 (default deny)") {
		t.Errorf("check: exit %d\n%s%s", code, out, errOut)
	}
}

// TestPolicyLab: wgnet lab holds the matrix to the spec's policy (exit 0 when
// it matches, checks naming their rules), and --no-policy's control run
// reaches everything on the same ports.
func TestPolicyLab(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../internal/policy/testdata/hub.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "wgnet.yaml"), src, 0o644)
	for _, tc := range []struct {
		args          []string
		blocked, pass int
	}{
		{[]string{"lab", "-o", "json", "--timeout", "5s"}, 40, 80},
		{[]string{"lab", "-o", "json", "--timeout", "5s", "--no-policy"}, 0, 120},
	} {
		out, errOut, code := cli(t, dir, tc.args...)
		if code != 0 {
			t.Fatalf("wgnet %s: exit %d\n%s", strings.Join(tc.args, " "), code, errOut)
		}
		var rep struct {
			Problems int `json:"problems"`
			Matrix   struct {
				Probes []struct {
					Checks []struct {
						Proto  string `json:"proto"`
						Port   int    `json:"port"`
						Want   bool   `json:"want"`
						Rule   string `json:"rule"`
						Result struct {
							OK bool `json:"ok"`
						} `json:"result"`
					} `json:"checks"`
				} `json:"probes"`
			} `json:"matrix"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		blocked, pass, ports := 0, 0, map[int]bool{}
		for _, p := range rep.Matrix.Probes {
			for _, c := range p.Checks {
				ports[c.Port] = true
				if c.Result.OK {
					pass++
				} else {
					blocked++
				}
				if c.Rule == "" && len(tc.args) == 5 {
					t.Errorf("a check names no rule: %+v", c)
				}
			}
		}
		if rep.Problems != 0 || blocked != tc.blocked || pass != tc.pass || !ports[5432] {
			t.Errorf("wgnet %s: %d problems, %d blocked, %d passed, ports %v; want 0, %d, %d with 5432",
				strings.Join(tc.args, " "), rep.Problems, blocked, pass, ports, tc.blocked, tc.pass)
		}
	}
}
