package policy_test

import (
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/policy"
)

func TestCheck(t *testing.T) {
	src := strings.Replace(segSpec, "    - allow db -> app\n", `    - allow db -> app
    - allow tag:nobody -> db
    - deny app1 -> db1 tcp 5432
    - allow tag:web -> db udp 53
    - deny 10.0.0.0/8 -> fd00::/8
`, 1)
	src = strings.Replace(src, "ops: [hub, \"app*\"]", "ops: [hub, \"app*\", \"zz*\"]", 1)
	got := policy.Check(load(t, src))
	want := []string{
		`seg.yaml:17: warning: policy-empty: policy.groups.ops[2]: zz*: no host matches`,
		`seg.yaml:21: warning: policy-conflict: policy.rules[2]: "allow ops -> any icmp" and policy.rules[1] "deny app -> db" differ for app1, which is on both from sides (app, ops): the earlier decides for it`,
		`seg.yaml:22: warning: policy-shadowed: policy.rules[3]: "allow tag:web -> 10.3.0.128/25 udp 53,1000-2000" never decides: every packet it matches is decided before it by policy.rules[1]`,
		`seg.yaml:26: warning: policy-empty: policy.rules[7]: "allow tag:nobody -> db": tag:nobody names no host or address, so the rule matches nothing`,
		`seg.yaml:27: warning: policy-shadowed: policy.rules[8]: "deny app1 -> db1 tcp 5432" never decides: every packet it matches is decided before it by policy.rules[0]`,
		`seg.yaml:28: warning: policy-shadowed: policy.rules[9]: "allow tag:web -> db udp 53" never decides: every packet it matches is decided before it by policy.rules[1]`,
		`seg.yaml:29: warning: policy-empty: policy.rules[10]: "deny 10.0.0.0/8 -> fd00::/8": its sources and destinations share no IP family, so the rule matches nothing`,
	}
	var lines []string
	for _, d := range got {
		lines = append(lines, d.String())
		if c, ok := diag.Lookup(d.Code); !ok || c.Severity != d.Severity || c.By != "policy" {
			t.Errorf("%s: not in diag's table as a policy warning", d.Code)
		}
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("Check:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestCheckConflictPrefix: a prefix listed in two groups whose rules differ.
func TestCheckConflictPrefix(t *testing.T) {
	src := strings.Replace(segSpec, "ops: [hub, \"app*\"]", "ops: [hub, \"app*\"]\n    lab: [10.9.1.0/24, 10.8.0.0/16]", 1)
	src = strings.Replace(src, "    - allow db -> app\n", "    - allow db -> app\n    - deny lab -> app\n", 1)
	var got []string
	for _, d := range policy.Check(load(t, src)) {
		if d.Code == policy.CodeConflict && strings.Contains(d.Message, "10.9.1.0/24") {
			got = append(got, d.Message)
		}
	}
	want := `policy.rules[7]: "deny lab -> app" and policy.rules[6] "allow db -> app" differ for 10.9.1.0/24, which is on both from sides (db, lab): the earlier decides for it`
	if len(got) != 1 || got[0] != want {
		t.Errorf("conflicts about 10.9.1.0/24: %q, want %q", got, want)
	}
}

func TestCheckUnreachable(t *testing.T) {
	head, _, _ := strings.Cut(segSpec, "  rules:\n")
	src := head + "  rules:\n    - allow app -> db tcp 5432\n"
	var codes []string
	for _, d := range policy.Check(load(t, src)) {
		if d.Code == policy.CodeUnreachable {
			codes = append(codes, d.Message)
		}
	}
	want := "hosts[0]: no rule lets any other host reach hub (default deny)|hosts[1]: no rule lets any other host reach app1 (default deny)|hosts[2]: no rule lets any other host reach app2 (default deny)"
	if got := strings.Join(codes, "|"); got != want {
		t.Errorf("unreachable:\n%s\nwant\n%s", got, want)
	}
}

// TestCanTalk: the questions over sets of packets, against the reference.
func TestCanTalk(t *testing.T) {
	s := load(t, strings.Replace(segSpec, "    - allow db -> app\n", "", 1))
	n := policy.Resolve(s)
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"app1", "db1", true}, // tcp 5432
		{"app1", "app2", true},
		{"db1", "db2", false}, // deny any -> db2's subnet; default deny
		{"hub", "db1", true},  // ops -> any icmp
		{"db2", "db1", false}, // nothing matches them but the default
		{"hub", "app1", true}, // ops -> any icmp
	} {
		if got := n.CanTalk(n.Hosts[tc.a], n.Hosts[tc.b]); got != tc.want {
			t.Errorf("CanTalk(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
