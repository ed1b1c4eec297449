package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
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
	for _, args := range [][]string{{"set", "app1", "--tag", "app"}, {"render", "--out", "out"}} { // set makes the keys
		if _, errOut, code := cli(t, dir, args...); code != 0 {
			t.Fatal(errOut)
		}
	}
	var confs []string
	for _, h := range []string{"app1", "app2", "db1", "db2", "hub"} {
		confs = append(confs, filepath.Join("out", h, "wg0.conf"))
	}
	for _, tc := range []struct {
		args          []string
		blocked, pass int
	}{
		{[]string{"lab", "-o", "json", "--timeout", "5s"}, 80, 160},
		{[]string{"lab", "-o", "json", "--timeout", "5s", "--no-policy"}, 0, 240},
		// The rendered files carry the filters (nft hooks read back): the
		// lab of the files enforces and expects the same.
		{append([]string{"lab", "-o", "json", "--timeout", "5s"}, confs...), 80, 160},
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
				if c.Rule == "" && !slices.Contains(tc.args, "--no-policy") {
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

// TestExplain: explain follows a packet hop by hop and names what decides,
// with exit 0 when it passes, 1 when it does not and 2 for bad usage.
func TestExplain(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"hub", "mesh-deny", "article"} {
		src, err := os.ReadFile("../../internal/policy/testdata/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name+".yaml"), src, 0o644)
	}
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-f", "hub.yaml", "explain", "app1", "10.0.21.1", "--port", "5432"}, 0, []string{
			"app1 → 10.0.21.1, 192.168.100.11 -> 10.0.21.1 tcp/5432: passes",
			"1. app1: sends it to peer hub (AllowedIPs 10.0.21.0/24)",
			"2. hub: filter accept: policy.rules[0]: allow app -> db tcp 5432; sends it to peer db1 (AllowedIPs 10.0.21.0/24)",
			"3. db1: filter accept: policy.rules[0]: allow app -> db tcp 5432; delivers it to its subnet 10.0.21.0/24",
			"reply: db1 → hub → app1",
			"decided by db1's filter: policy.rules[0]: allow app -> db tcp 5432"}},
		{[]string{"-f", "hub.yaml", "explain", "app1", "db1", "--port", "80"}, 1, []string{
			"tcp/80: does not pass", "decided by hub's filter: policy.rules[1]: deny app -> db"}},
		{[]string{"-f", "article.yaml", "explain", "10.0.5.9", "10.0.7.1"}, 1, []string{
			"10.0.5.9 -> 10.0.7.1 icmp: does not pass", "decided by s1's filter: policy.rules[0]: deny s2 -> 10.0.7.0/24"}},
		{[]string{"-f", "article.yaml", "explain", "s4", "10.0.7.1", "--proto", "udp", "--port", "53"}, 0, []string{"passes", "decided by s3's filter: default allow"}},
		{[]string{"-f", "mesh-deny.yaml", "explain", "app1", "app2"}, 1, []string{
			"1. app1: stops here", "(the policy never lets app1 and app2 talk, so they are no peers)", "the policy as a whole: drop: default deny"}},
		{[]string{"-f", "article.yaml", "explain", "s2", "nowhere"}, 2, nil},
		{[]string{"-f", "article.yaml", "explain", "s2", "s3", "--proto", "icmp", "--port", "3"}, 2, nil},
		{[]string{"-f", "article.yaml", "explain", "s2", "s3", "--proto", "tcp"}, 2, nil},
	} {
		out, errOut, code := cli(t, dir, tc.args...)
		if code != tc.code {
			t.Errorf("wgnet %s: exit %d, want %d\n%s%s", strings.Join(tc.args, " "), code, tc.code, out, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("wgnet %s: output lacks %q:\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
	}
	out, _, code := cli(t, dir, "-f", "hub.yaml", "explain", "db2", "app1", "-o", "json")
	var e struct {
		Passes    bool   `json:"passes"`
		DecidedBy string `json:"decided_by"`
		Hops      []struct {
			Host   string `json:"host"`
			Accept bool   `json:"accept"`
		} `json:"hops"`
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil || code != 1 || e.Passes || len(e.Hops) != 2 || e.Hops[1].Accept ||
		e.DecidedBy != "hub's filter: policy.rules[2]: deny db -> app" {
		t.Errorf("explain -o json: exit %d, %+v, %v\n%s", code, e, err, out)
	}
}
