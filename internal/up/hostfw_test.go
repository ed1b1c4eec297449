package up

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/dockerfw/dockerfwtest"
	"github.com/wgnet/wgnet/internal/hostnet"
)

// hostFWFixture is the hub of hubConf with a container bridge (cbr0, 10.10.1.0/24)
// behind it and Docker 20.10's rules in a fake iptables-nft.
func hostFWFixture(t *testing.T) (*fixture, *dockerfwtest.Fake, Request) {
	fx := newFixture(t)
	fx.host.AddLink("cbr0", "bridge", 1500)
	if err := fx.host.AddRoute(hostnet.Route{Dst: netip.MustParsePrefix("10.10.1.0/24"), Dev: "cbr0"}); err != nil {
		t.Fatal(err)
	}
	ipt := dockerfwtest.New()
	ipt.Load("iptables-nft", dockerfwtest.DockerRules(dockerfwtest.Docker20, "cbr0", netip.MustParsePrefix("10.10.1.0/24"), []netip.Addr{netip.MustParseAddr("10.10.1.2")}))
	fx.opts.Iptables = ipt
	cfg, _ := hubConf(t)
	r := req("wg0", cfg, false, false)
	r.Host.Routes = []netip.Prefix{netip.MustParsePrefix("10.10.1.0/24")}
	return fx, ipt, r
}

func inserts(ipt *dockerfwtest.Fake) int {
	n := 0
	for _, c := range ipt.Calls {
		if slices.Contains(c, "-I") {
			n++
		}
	}
	return n
}

func TestHostFirewallOptIn(t *testing.T) {
	ctx := context.Background()
	fx, ipt, r := hostFWFixture(t)
	docker := ipt.Save("iptables-nft")
	r.Host.HostFirewall = "docker"
	st, err := Up(ctx, r, fx.opts)
	if err != nil {
		t.Fatalf("Up: %v\n%s", err, fx.log.String())
	}
	if len(st.HostFirewall) != 4 || st.HostFirewallMode != "docker" {
		t.Errorf("recorded: %v (mode %q)", st.HostFirewall, st.HostFirewallMode)
	}
	save := ipt.Save("iptables-nft")
	for _, want := range []string{
		"-A DOCKER-USER -i wg0 -o wg0 -m comment --comment \"wgnet:wg0\" -j ACCEPT\n-A DOCKER-USER -d 10.10.1.0/24 -i wg0",
		"-A POSTROUTING -s 10.10.1.0/24 -o wg0 -m comment --comment \"wgnet:wg0\" -j RETURN\n-A POSTROUTING -s 10.10.1.0/24 ! -o cbr0 -j MASQUERADE",
	} {
		if !strings.Contains(save, want) {
			t.Errorf("after up, iptables lacks %q:\n%s", want, save)
		}
	}
	for _, line := range []string{"iptables-nft -t filter -I DOCKER-USER 1 -i wg0 -o wg0", "iptables-nft -t nat -I POSTROUTING 1 -s 10.10.1.0/24 -o wg0"} {
		if !strings.Contains(fx.log.String(), line) {
			t.Errorf("up's log does not show %q:\n%s", line, fx.log.String())
		}
	}

	// In place: a sync (without saying the mode: it is recorded) changes nothing.
	r.Host.HostFirewall = ""
	if p, err := Sync(ctx, r, fx.syncOpts()); err != nil {
		t.Fatalf("sync in place: %v", err)
	} else if !p.Empty() {
		t.Fatalf("sync in place changes:\n%s", planText(p))
	}

	// Docker puts its MASQUERADE first again: the plan shows the re-assertion,
	// sync makes it.
	ipt.Run(ctx, []string{"iptables-nft", "-w", "-t", "nat", "-I", "POSTROUTING", "1", "-s", "10.10.1.0/24", "!", "-o", "cbr0", "-j", "MASQUERADE"})
	p, err := PlanSync(ctx, r, fx.syncOpts())
	if err != nil {
		t.Fatal(err)
	}
	if p.HostFirewall == nil || len(p.HostFirewall.Steps) != 2 {
		t.Fatalf("plan after Docker's insert:\n%s", planText(p))
	}
	if txt := planText(p); !strings.Contains(txt, "- iptables-nft -t nat -D POSTROUTING -s 10.10.1.0/24 -o wg0") || !strings.Contains(txt, "+ iptables-nft -t nat -I POSTROUTING 1 -s 10.10.1.0/24 -o wg0") {
		t.Errorf("plan text:\n%s", txt)
	}
	if _, err := Sync(ctx, r, fx.syncOpts()); err != nil {
		t.Fatal(err)
	}
	if p, _ := PlanSync(ctx, r, fx.syncOpts()); !p.Empty() {
		t.Errorf("not re-asserted:\n%s", planText(p))
	}

	// Docker's chains made anew (wgnet's rules gone), and the re-insert fails
	// half-way: the sync is undone, iptables as it was before the sync.
	ipt.Load("iptables-nft", docker)
	ipt.Fail = func(argv []string) bool { return slices.Contains(argv, "-I") && slices.Contains(argv, "2") }
	if _, err := Sync(ctx, r, fx.syncOpts()); err == nil {
		t.Fatal("sync with a failing iptables succeeded")
	}
	if got := ipt.Save("iptables-nft"); got != docker {
		t.Errorf("a failed sync left iptables changed:\n%s", got)
	}
	ipt.Fail = nil

	// Down takes away exactly wgnet's rules.
	if _, err := Sync(ctx, r, fx.syncOpts()); err != nil {
		t.Fatal(err)
	}
	if err := Down(ctx, "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if got := ipt.Save("iptables-nft"); got != docker {
		t.Errorf("down left iptables changed:\n%s", got)
	}
}

// Without the opt-in, up changes no iptables rule and says what to set; with
// "docker" on a host without Docker, up refuses before touching anything.
func TestHostFirewallWithoutOptIn(t *testing.T) {
	ctx := context.Background()
	fx, ipt, r := hostFWFixture(t)
	if _, err := Up(ctx, r, fx.opts); err != nil {
		t.Fatal(err)
	}
	if n := inserts(ipt); n != 0 {
		t.Errorf("%d iptables inserts without the opt-in", n)
	}
	if log := fx.log.String(); !strings.Contains(log, "Docker's iptables chains are here (nft, IPv4; FORWARD policy drop)") || !strings.Contains(log, "`host_firewall: docker`") {
		t.Errorf("up does not say what drops traffic and what to set:\n%s", log)
	}
	if err := Down(ctx, "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}

	fx2, ipt2, r2 := hostFWFixture(t)
	ipt2.Load("iptables-nft", "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
	before := fx2.host.Snapshot()
	r2.Host.HostFirewall = string(dockerfw.Docker)
	if _, err := Up(ctx, r2, fx2.opts); err == nil || !strings.Contains(err.Error(), "no DOCKER-USER chain") {
		t.Errorf("docker mode without Docker: %v", err)
	}
	if n := inserts(ipt2); n != 0 {
		t.Errorf("refused up made %d iptables inserts", n)
	}
	if diff := cmp.Diff(before, fx2.host.Snapshot(), cmpOpts...); diff != "" {
		t.Errorf("refused up touched the host (-before +after):\n%s", diff)
	}
}
