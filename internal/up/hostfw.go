package up

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wgnet/wgnet/internal/dockerfw"
	"github.com/wgnet/wgnet/internal/intent"
)

// The host's own forward firewall (Docker's DOCKER-USER, iptables' FORWARD):
// opened for the overlay only when the config opts in (intent.Host.HostFirewall,
// `host_firewall:` in the spec, `--host-firewall` on up and sync), with every
// rule in the plan; see package dockerfw and docs/docker.md. Without the opt-in
// the plan says what would drop tunnel traffic and what to set.

// hostFWTimeout bounds one iptables run.
const hostFWTimeout = 20 * time.Second

// HostFirewallChange is what the plan does to the host's forward firewall:
// iptables commands in order (deletes of wgnet's rules that are out of place,
// inserts at the top of the chain).
type HostFirewallChange struct {
	Steps []string `json:"steps"`

	steps []dockerfw.Step
	// want is every rule of wgnet's once the change is made, for the record.
	want []dockerfw.Rule
}

// hostFWTarget is what the target wants of the host's forward firewall.
type hostFWTarget struct {
	// want are wgnet's rules, in order, per chain at its top.
	want []dockerfw.Rule
}

// hostFirewallMode reads the config's opt-in (the field, else the comment a
// rendered file carries).
func (pl *planner) hostFirewallMode() {
	ic := pl.h
	s := ic.HostFirewall
	if s == "" {
		s = intent.CommentedHostFirewall(ic.Comments)
	}
	m, err := dockerfw.ParseMode(s)
	if err != nil {
		pl.bad("%shost firewall %v", where(ic.Pos.File, ic.Pos.KeyLine("")), err)
	}
	pl.p.hostFirewall, pl.p.hostFirewallSet = m, s != ""
}

// readHostFirewall reads both families' iptables in the backend that matters.
func readHostFirewall(r dockerfw.Runner) ([]*dockerfw.View, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hostFWTimeout)
	defer cancel()
	var views []*dockerfw.View
	for _, fam := range []int{4, 6} {
		v, err := dockerfw.Read(ctx, r, fam)
		if err != nil {
			return nil, fmt.Errorf("read the host firewall: %w", err)
		}
		views = append(views, v)
	}
	return views, nil
}

// hostFirewallTarget works out wgnet's rules in the host's forward firewall and
// the notes about what else drops tunnel traffic. It returns nil (leave the
// firewall alone, read nothing) when the config does not opt in, nothing was
// recorded earlier, and the host does not forward.
func hostFirewallTarget(p *plan, prev *State, opts *SyncOptions, t *target) (*hostFWTarget, error) {
	if !p.hostFirewallSet && prev != nil {
		// An opt-in given as a flag to up stays for the syncs after it.
		p.hostFirewall = dockerfw.Mode(prev.HostFirewallMode)
	}
	forwards := p.forwardV4 || p.forwardV6 || len(p.subnets) > 0
	recorded := prev != nil && len(prev.HostFirewall) > 0
	if p.hostFirewall == dockerfw.Off && !recorded && !forwards {
		return nil, nil
	}
	views, err := readHostFirewall(opts.Iptables)
	if err != nil {
		if p.hostFirewall == dockerfw.Off && !recorded {
			t.notes = append(t.notes, fmt.Sprintf("the host's iptables could not be read, so whether it drops forwarded tunnel traffic is not known: %v", err))
			return nil, nil
		}
		return nil, err
	}
	ft := &hostFWTarget{}
	relay := (p.forwardV4 || p.forwardV6) && len(p.want.Peers) >= 2
	docker := false
	for _, v := range views {
		ft.want = append(ft.want, v.Want(p.hostFirewall, p.name, p.subnets, relay)...)
		docker = docker || v.Docker()
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostFWTimeout)
	defer cancel()
	nftDocker := dockerfw.NftablesDocker(ctx, opts.Iptables)
	switch {
	case p.hostFirewall == dockerfw.Docker && nftDocker && !docker:
		return nil, fmt.Errorf("host firewall docker: Docker runs its nftables firewall backend (table ip docker-bridges), which has no DOCKER-USER chain and where an accept elsewhere is not final; wgnet cannot open it: start dockerd with --bridge-accept-fwmark and mark the overlay's packets, or use gateway_mode_ipv4=nat-unprotected on the network (see docs/docker.md)")
	case p.hostFirewall == dockerfw.Docker && !docker:
		return nil, fmt.Errorf("host firewall docker: no DOCKER-USER chain in iptables-nft or iptables-legacy (is Docker running, with its iptables backend?); use auto or iptables instead")
	}
	t.notes = append(t.notes, hostFirewallNotes(p, views, nftDocker)...)
	return ft, nil
}

// hostFirewallNotes says what in the host's firewall drops forwarded tunnel
// traffic that wgnet does not (or, without the opt-in, may not) open, with the
// fix.
func hostFirewallNotes(p *plan, views []*dockerfw.View, nftDocker bool) []string {
	var notes []string
	forwards := p.forwardV4 || p.forwardV6 || len(p.subnets) > 0
	for _, v := range views {
		if p.hostFirewall != dockerfw.Off || !forwards || !(v.Docker() || v.ForwardDrop()) {
			continue
		}
		what := fmt.Sprintf("iptables (%s, IPv%d) has FORWARD policy DROP", v.Backend, v.Family)
		mode := "iptables"
		if v.Docker() {
			what = fmt.Sprintf("Docker's iptables chains are here (%s, IPv%d; FORWARD policy %s)", v.Backend, v.Family, strings.ToLower(v.Tables["filter"].Policies["FORWARD"]))
			mode = "docker"
		}
		notes = append(notes, fmt.Sprintf("%s: forwarded packets from and to %s are dropped unless a rule of yours accepts them, and Docker masquerades container traffic into the tunnel; to have wgnet add its accepts (and skip the masquerade), set `host_firewall: %s` on the host in the spec, or pass `--host-firewall=%s` to up and sync (`wgnet check --live %s` tells whether packets are dropped)",
			what, p.name, mode, mode, p.name))
	}
	for _, v := range views {
		for _, s := range p.subnets {
			for _, d := range v.RawDrops(s, p.name) {
				notes = append(notes, fmt.Sprintf("packets from the tunnel to %s are dropped before routing by `%s -t raw %s` (Docker 28+ protects containers of a nat-mode network from direct routing; no accept in DOCKER-USER passes them): recreate the Docker network with `-o com.docker.network.bridge.gateway_mode_ipv4=routed` (containers keep their addresses; published ports only) or `-o com.docker.network.bridge.trusted_host_interfaces=%s`, or set `\"allow-direct-routing\": true` in daemon.json",
					s, dockerfw.Binary(v.Backend, v.Family, ""), d, p.name))
			}
		}
	}
	if nftDocker && forwards {
		notes = append(notes, "Docker runs its nftables firewall backend (table ip docker-bridges): its drops are not overridden by an accept in DOCKER-USER or any other table; only a firewall mark dockerd accepts (--bridge-accept-fwmark) is, which wgnet does not set (see docs/docker.md)")
	}
	return notes
}

// diffHostFirewall adds to plan the iptables steps from r to t.
func diffHostFirewall(plan *Plan, r *running, t *target) {
	if t.hostfw == nil || r.hostfw == nil {
		return
	}
	steps := dockerfw.Diff(r.hostfw, t.hostfw.want, plan.Interface)
	if len(steps) == 0 {
		return
	}
	c := &HostFirewallChange{steps: steps, want: t.hostfw.want}
	for _, s := range steps {
		c.Steps = append(c.Steps, s.String())
	}
	plan.HostFirewall = c
}

// hostFirewall makes the plan's iptables steps, the rules to add recorded
// ahead (down removes those it finds) and the record set to exactly wgnet's
// rules afterwards.
func (a *applier) hostFirewall() bool {
	c := a.plan.HostFirewall
	if c == nil {
		return true
	}
	var ahead []dockerfw.Rule
	for _, s := range c.steps {
		if !s.Delete {
			ahead = append(ahead, s.Rule)
		}
	}
	if !a.step(a.rec(applied{hostfw: &ahead, hostfwAdd: true})) {
		return false
	}
	for _, s := range c.steps {
		a.o.logf("%s", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostFWTimeout)
	defer cancel()
	_, err := dockerfw.Apply(ctx, a.o.Iptables, c.steps)
	if !a.step(err) {
		return false
	}
	want := slices.Clone(c.want)
	return a.step(a.rec(applied{hostfw: &want}))
}

// recordHostFirewall updates the record of wgnet's rules: those about to be
// added join it (add), or it becomes rules.
func recordHostFirewall(st *State, rules []dockerfw.Rule, add bool) {
	if !add {
		st.HostFirewall = rules
		return
	}
	for _, r := range rules {
		if !slices.ContainsFunc(st.HostFirewall, func(x dockerfw.Rule) bool { return sameRule(x, r) }) {
			st.HostFirewall = append(st.HostFirewall, r)
		}
	}
}

func sameRule(a, b dockerfw.Rule) bool {
	return a.Family == b.Family && a.Backend == b.Backend && a.Table == b.Table && a.Chain == b.Chain && a.Spec() == b.Spec()
}

// removeHostFirewall takes away the rules st records, for down.
func removeHostFirewall(st *State, o *Options) error {
	if len(st.HostFirewall) == 0 {
		return nil
	}
	for _, r := range st.HostFirewall {
		o.logf("%s -t %s -D %s %s", dockerfw.Binary(r.Backend, r.Family, ""), r.Table, r.Chain, r.Spec())
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostFWTimeout)
	defer cancel()
	if err := dockerfw.Remove(ctx, o.Iptables, st.HostFirewall); err != nil {
		return err
	}
	st.HostFirewall = nil
	return nil
}

// hostFirewallText is the plan's lines for c.
func hostFirewallText(c *HostFirewallChange, line func(op, format string, a ...any)) {
	if c == nil {
		return
	}
	for _, s := range c.steps {
		op := PeerAdd
		if s.Delete {
			op = PeerRemove
		}
		line(op, "%s", s)
	}
}

// noIptables is the Runner of a host without iptables (a fake host).
type noIptables struct{}

func (noIptables) Run(_ context.Context, argv []string) ([]byte, error) {
	return nil, fmt.Errorf("%s: %w", argv[0], dockerfw.ErrNoTool)
}
