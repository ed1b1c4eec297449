package spec

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const policySpec = `version: 1
network: seg
subnets: [192.168.100.0/24]
topology: hub
hub: s1
hosts:
  - name: s1
    address: [192.168.100.1]
    routes: [10.0.1.0/24]
    tags: [core]
  - name: s2
    address: [192.168.100.2]
    tags: [app]
  - name: s3
    address: [192.168.100.3]
    routes: [10.0.3.0/24]
    tags: [db]
policy:
  default: deny   # closed by default
  groups:
    app: [tag:app, web-*]
    db: [tag:db, 10.0.9.0/24]
  rules:
    # the database port only
    - allow app -> db tcp 5432
    - allow tag:core -> any
    - deny 10.0.0.0/8 -> s3 proto udp ports 53,1000-2000
    - allow any -> any icmp
`

func TestPolicyParse(t *testing.T) {
	s, err := Parse("p.yaml", []byte(policySpec))
	if err != nil {
		t.Fatal(err)
	}
	p := s.Policy
	if !p.Present || p.DefaultAllows() || len(p.Groups) != 2 || len(p.Rules) != 4 {
		t.Fatalf("policy = %+v", p)
	}
	want := []string{"allow app -> db tcp 5432", "allow tag:core -> any", "deny 10.0.0.0/8 -> s3 udp 53,1000-2000", "allow any -> any icmp"}
	for i, r := range p.Rules {
		if r.String() != want[i] {
			t.Errorf("rule %d = %q, want %q", i, r, want[i])
		}
		again, err := ParseRule(r.String())
		if err != nil || !cmp.Equal(again, r, cmp.Comparer(func(a, b Term) bool { return a == b })) {
			t.Errorf("rule %d does not round-trip: %v %+v", i, err, again)
		}
	}
	if got := s.Hosts[1].Tags; len(got) != 1 || got[0] != "app" {
		t.Errorf("tags = %v", got)
	}
	if l := s.Source.Lines["policy.rules[2]"]; l != 27 {
		t.Errorf("line of rules[2] = %d, want 27", l)
	}
}

func TestPolicyErrors(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"allow app -> db tcp 5432", "allow app -> nobody", `p.yaml:25: policy.rules[0] "nobody": no group or host has that name`},
		{"allow app -> db tcp 5432", "allow app db", `p.yaml:25: policy.rules[0]`},
		{"allow app -> db tcp 5432", "allow app -> db 5432", `ports are for tcp or udp`},
		{"allow app -> db tcp 5432", "allow app -> db tcp 0", `want a port 1-65535`},
		{"allow app -> db tcp 5432", "permit app -> db", `starts with allow or deny`},
		{"default: deny", "default: maybe", `p.yaml:19: policy.default "maybe": must be allow or deny`},
		{"db: [tag:db, 10.0.9.0/24]", "db: [s9]", `p.yaml:22: policy.groups.db[0] "s9": no host has that name`},
		{"db: [tag:db, 10.0.9.0/24]", "db: [10.0.9.1/24]", `host bits are set`},
		{"db: [tag:db, 10.0.9.0/24]", "s2: [tag:db]", `also a host's name`},
		{"tags: [db]", "tags: [DB]", `p.yaml:17: hosts[2].tags[0] "DB": a tag is`},
		{"default: deny", "defualt: deny", `did you mean "default"`},
	} {
		src := strings.Replace(policySpec, tc.from, tc.to, 1)
		_, err := Parse("p.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.to, err, tc.want)
		}
	}
}

func TestPolicyEditKeepsComments(t *testing.T) {
	d, err := ParseDocument("p.yaml", []byte(policySpec))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddPolicyRule("deny app -> db", 1); err != nil {
		t.Fatal(err)
	}
	if text, err := d.RemovePolicyRule(4); err != nil || text != "allow any -> any icmp" {
		t.Fatalf("remove = %q, %v", text, err)
	}
	if err := d.SetPolicyGroup("web", []string{"s2", "tag:app"}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetHost("s2", HostChanges{Tags: []string{"web"}, RemoveTags: []string{"app"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := d.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# closed by default", "# the database port only\n    - allow app -> db tcp 5432\n    - deny app -> db\n",
		"web: [s2, tag:app]", "tags: [web]"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("edited spec lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "icmp") {
		t.Errorf("removed rule still there:\n%s", out)
	}
	if _, err := d.RemovePolicyRule(9); err == nil {
		t.Error("removing rule 10 of 4 worked")
	}
	if err := d.AddPolicyRule("allow a ->", -1); err == nil {
		t.Error("a bad rule was added")
	}
}

func TestPolicyMarshal(t *testing.T) {
	s, err := Parse("p.yaml", []byte(policySpec))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Parse("again.yaml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !cmp.Equal(s.Policy, s2.Policy, cmp.Comparer(func(a, b Term) bool { return a == b })) {
		t.Errorf("policy changed by Marshal:\n%s", out)
	}
}

// FuzzParseRule: a rule that parses renders (String) as a rule that parses
// to the same, and no input panics.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"allow app -> db tcp 5432", "deny any -> 10.0.0.0/8", "allow tag:web -> s[12] proto udp ports 53,1000-2000",
		"allow fd00::/8 -> web-* icmp", "deny a -> b tcp 0", "allow -> ->"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		again, err := ParseRule(r.String())
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", s, r.String(), err)
		}
		if again.String() != r.String() {
			t.Fatalf("%q → %q → %q", s, r.String(), again.String())
		}
	})
}
