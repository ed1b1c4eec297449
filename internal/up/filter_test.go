package up

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/intent"
)

func TestHostFilter(t *testing.T) {
	f := intent.Filter{Enabled: true, Rules: []intent.FilterRule{
		{Accept: true, Src: pfxs("10.10.2.0/24", "fd00:10:2::/64", "10.10.2.7/32"), Dst: pfxs("10.10.3.1/24"), Proto: "tcp",
			Ports: []intent.PortRange{{From: 5433, To: 5440}, {From: 5432, To: 5432}}, Origin: "policy.rules[0]"},
		{Src: pfxs("10.10.2.0/24"), Proto: "icmp", Origin: "policy.rules[1]"},
		{Accept: true, Origin: "policy.rules[2]"},
	}}
	got, err := hostFilter(f, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	want := &hostnet.Filter{Iface: "wg0", Rules: []hostnet.FilterRule{
		// The v6 source has no v6 destination: no v6 rule.
		{Src: pfxs("10.10.2.0/24"), Dst: pfxs("10.10.3.0/24"), Proto: "tcp", Ports: []hostnet.PortRange{{From: 5432, To: 5440}}, Accept: true, Comment: "policy.rules[0]"},
		{Src: pfxs("10.10.2.0/24"), Proto: "icmp", Comment: "policy.rules[1]"},
		{Accept: true, Comment: "policy.rules[2]"},
		{V6: true, Accept: true, Comment: "policy.rules[2]"},
	}}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("hostFilter (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("the converted filter is not valid: %v", err)
	}
	if f, err := hostFilter(intent.Filter{}, "wg0"); f != nil || err != nil {
		t.Errorf("a disabled filter: %v, %v; want none", f, err)
	}
	for _, bad := range []intent.FilterRule{
		{Ports: []intent.PortRange{{From: 22, To: 22}}},
		{Proto: "icmp", Ports: []intent.PortRange{{From: 22, To: 22}}},
		{Proto: "gre"},
		{Proto: "tcp", Ports: []intent.PortRange{{From: 30, To: 20}}},
	} {
		bad.Origin = "policy.rules[9]"
		_, err := hostFilter(intent.Filter{Enabled: true, Rules: []intent.FilterRule{bad}}, "wg0")
		if err == nil || !strings.Contains(err.Error(), "policy.rules[9]") {
			t.Errorf("hostFilter(%+v) = %v, want an error naming the rule", bad, err)
		}
	}
}

func TestDeniesMore(t *testing.T) {
	rule := func(accept bool, src, dst string, proto string, ports ...uint16) hostnet.FilterRule {
		r := hostnet.FilterRule{Accept: accept, Proto: proto}
		if src != "" {
			r.Src = pfxs(src)
		}
		if dst != "" {
			r.Dst = pfxs(dst)
		}
		r.V6 = strings.Contains(src+dst, ":")
		for _, p := range ports {
			r.Ports = append(r.Ports, hostnet.PortRange{From: p, To: p})
		}
		return r
	}
	filter := func(def bool, rs ...hostnet.FilterRule) *hostnet.Filter {
		return &hostnet.Filter{Iface: "wg0", DefaultAccept: def, Rules: rs}
	}
	app2db := rule(true, "10.10.1.0/24", "10.10.2.0/24", "tcp", 5432)
	denyDB := rule(false, "", "10.10.2.0/24", "")
	for _, tc := range []struct {
		name     string
		old, new *hostnet.Filter
		want     bool
	}{
		{"none to accept-all", nil, filter(true), false},
		{"none to a deny rule", nil, filter(true, denyDB), true},
		{"none to default deny, all allowed", nil, filter(false, rule(true, "", "", ""), rule(true, "::/0", "", "")), false},
		{"none to default deny, v4 allowed", nil, filter(false, rule(true, "", "", "")), true},
		{"same", filter(true, app2db, denyDB), filter(true, app2db, denyDB), false},
		{"an allow before the deny", filter(true, denyDB), filter(true, app2db, denyDB), false},
		{"the allow removed", filter(true, app2db, denyDB), filter(true, denyDB), true},
		{"the allow after the deny", filter(true, app2db, denyDB), filter(true, denyDB, app2db), true},
		{"a port narrowed", filter(true, rule(true, "", "10.10.2.0/24", "tcp", 5432, 5433), denyDB), filter(true, app2db, denyDB), true},
		{"a v6 deny", filter(true), filter(true, rule(false, "fd00:10:1::/64", "", "icmp")), true},
		{"deny widened to the deny it was", filter(false, app2db), filter(false, app2db, rule(false, "10.10.9.0/24", "", "udp")), false},
		{"accept to deny default", filter(true, app2db), filter(false, app2db), true},
	} {
		got, example := deniesMore(tc.old, tc.new)
		if got != tc.want {
			t.Errorf("%s: deniesMore = %v (%s), want %v", tc.name, got, example, tc.want)
		}
		if got && example == "" {
			t.Errorf("%s: no example", tc.name)
		}
	}
}

// policyHost is hubConfig's hub with a filter: s1 (10.99.0.2, 10.10.2.0/24)
// reaches s2's subnet on tcp/5432 only, nothing reaches s3's.
func policyHost(rules ...intent.FilterRule) Request {
	r := req("wg0", hubConfig(), true, true)
	r.Host.Firewall.Filter = intent.Filter{Enabled: true, DefaultAccept: true, Rules: rules}
	return r
}

var (
	s1ToS2DB = intent.FilterRule{Accept: true, Src: pfxs("10.99.0.2/32", "10.10.2.0/24"), Dst: pfxs("10.10.3.0/24"), Proto: "tcp",
		Ports: []intent.PortRange{{From: 5432, To: 5432}}, Origin: "policy.rules[0]: allow s1 -> s2-db tcp 5432"}
	s1ToS2 = intent.FilterRule{Src: pfxs("10.99.0.2/32", "10.10.2.0/24"), Dst: pfxs("10.10.3.0/24"), Origin: "policy.rules[1]: deny s1 -> s2"}
	toS3   = intent.FilterRule{Dst: pfxs("10.99.0.4/32"), Origin: "policy.rules[2]: deny * -> s3"}
)

// TestSyncPolicy changes a running hub's policy with Sync on the fakes: the plan
// shows the rules added and removed; a change that denies more is refused
// without a deadline (nothing touched) and goes through with AllowPolicyDeny,
// deleting exactly the conntrack entries of the tunnel's connections it now
// denies; a rollback puts the old table back; a change that only allows more
// needs nothing; down removes the table.
func TestSyncPolicy(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	if _, err := Up(ctx, policyHost(s1ToS2DB, s1ToS2), fx.opts); err != nil {
		t.Fatalf("Up: %v\n%s", err, fx.log.String())
	}
	fw, err := fx.host.Firewall(FirewallTable("wg0"))
	if err != nil || fw.Filter == nil || len(fw.Filter.Rules) != 2 || len(fw.ClampMSS) != 1 {
		t.Fatalf("after up: %+v, %v; want the clamp and 2 filter rules", fw, err)
	}
	flows := []hostnet.Flow{
		{Proto: 6, Src: netip.MustParseAddr("10.99.0.3"), Dst: netip.MustParseAddr("10.99.0.4"), SrcPort: 40000, DstPort: 22}, // s2 -> s3: denied next
		{Proto: 6, Src: netip.MustParseAddr("10.10.2.9"), Dst: netip.MustParseAddr("10.10.3.5"), SrcPort: 40001, DstPort: 5432},
		{Proto: 6, Src: netip.MustParseAddr("192.168.1.5"), Dst: netip.MustParseAddr("10.99.0.4"), SrcPort: 40002, DstPort: 22}, // not from the tunnel
	}
	for _, f := range flows {
		fx.host.AddFlow(f)
	}

	opts := fx.syncOpts()
	before := fx.world(t, "wg0")
	narrower := policyHost(s1ToS2DB, s1ToS2, toS3)
	_, err = Sync(ctx, narrower, opts)
	if !errors.Is(err, ErrNeedsConfirm) || !strings.Contains(err.Error(), "policy.rules[2]") {
		t.Fatalf("a narrowing sync without a deadline: %v, want ErrNeedsConfirm naming the rule", err)
	}
	if diff := cmp.Diff(before, fx.world(t, "wg0"), worldOpts...); diff != "" {
		t.Errorf("the refused sync changed something (-before +after):\n%s", diff)
	}
	plan, err := PlanSync(ctx, narrower, opts)
	if err != nil {
		t.Fatal(err)
	}
	text := planText(plan)
	for _, want := range []string{"wg0: firewall (policy: 1 rule(s) added, 0 removed)", "+ rule ip daddr 10.99.0.4 drop", "from policy.rules[2]: deny * -> s3", "needs --confirm", "e.g. tcp 0.0.0.0 -> 10.99.0.4 (policy.rules[2]: deny * -> s3)"} {
		if !strings.Contains(text, want) {
			t.Errorf("the plan has no %q:\n%s", want, text)
		}
	}
	b, _ := json.Marshal(plan)
	if !strings.Contains(string(b), `"rules":[{"op":"+","rule":"ip daddr 10.99.0.4 drop","origin":"policy.rules[2]: deny * -\u003e s3"}]`) ||
		!strings.Contains(string(b), `"denies_more":true`) {
		t.Errorf("plan -o json:\n%s", b)
	}

	opts.AllowPolicyDeny = true
	if _, err := Sync(ctx, narrower, opts); err != nil {
		t.Fatal(err)
	}
	fw, _ = fx.host.Firewall(FirewallTable("wg0"))
	if fw.Filter == nil || len(fw.Filter.Rules) != 3 {
		t.Fatalf("after the sync: %+v", fw.Filter)
	}
	if got := fx.host.Flows(); !slices.Equal(got, flows[1:]) {
		t.Errorf("conntrack after the sync: %v, want all but s2 -> s3", got)
	}
	if d := fx.world(t, "wg0"); !cmp.Equal(before.Dev, d.Dev, worldOpts...) || !slices.Equal(before.Host.Routes, d.Host.Routes) {
		t.Errorf("a policy change touched the device or the routes")
	}

	// Provisional, then rolled back: the old table is back.
	opts.AllowPolicyDeny = false
	opts.Confirm.Within = time.Minute
	withS3 := fx.world(t, "wg0")
	if _, err := Sync(ctx, policyHost(toS3), opts); err != nil {
		t.Fatalf("a narrowing sync with a deadline: %v", err)
	}
	if fw, _ := fx.host.Firewall(FirewallTable("wg0")); len(fw.Filter.Rules) != 1 {
		t.Errorf("during the confirmation: %+v", fw.Filter)
	}
	if _, err := Rollback(ctx, "wg0", opts); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(withS3.Host.Firewalls, fx.world(t, "wg0").Host.Firewalls, worldOpts...); diff != "" {
		t.Errorf("the rollback did not restore the table (-want +got):\n%s", diff)
	}

	// Allowing more needs no deadline, and no policy leaves the clamp.
	opts.Confirm.Within = 0
	if plan, err := Sync(ctx, policyHost(s1ToS2DB), opts); err != nil || plan.Firewall == nil || plan.Firewall.DeniesMore {
		t.Errorf("a widening sync: %+v, %v", plan.Firewall, err)
	}
	if _, err := Sync(ctx, req("wg0", hubConfig(), true, true), opts); err != nil {
		t.Fatal(err)
	}
	if fw, _ := fx.host.Firewall(FirewallTable("wg0")); fw.Filter != nil || len(fw.ClampMSS) != 1 {
		t.Errorf("without a policy: %+v", fw)
	}
	if err := Down(ctx, "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if fws := fx.host.Snapshot().Firewalls; len(fws) != 0 {
		t.Errorf("after down: %v", fws)
	}
}

// TestPolicyDefaultDenyNeedsConfirm: switching to default deny needs a deadline
// even when the rules let everything through.
func TestPolicyDefaultDenyNeedsConfirm(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	fx.up(t, hubConfig(), true)
	r := policyHost(intent.FilterRule{Accept: true, Origin: "allow all"})
	r.Host.Firewall.Filter.DefaultAccept = false
	if _, err := Sync(ctx, r, fx.syncOpts()); !errors.Is(err, ErrNeedsConfirm) {
		t.Errorf("a switch to default deny without a deadline: %v", err)
	}
	opts := fx.syncOpts()
	opts.AllowPolicyDeny = true
	plan, err := Sync(ctx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := plan.Firewall.Default; d == nil || d.Old != "none" || d.New != "deny" {
		t.Errorf("default change: %+v", d)
	}
	if !strings.Contains(planText(plan), "~ policy default: none -> deny") {
		t.Errorf("plan:\n%s", planText(plan))
	}
}
