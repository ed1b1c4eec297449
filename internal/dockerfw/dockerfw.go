// Package dockerfw opens a host's own forward firewall for the overlay, when the
// user opted in (a host's `host_firewall:` in the spec, `--host-firewall` on up
// and sync): accept rules for overlay ↔ routed-subnet traffic in Docker's
// DOCKER-USER chain (or, on a host whose iptables FORWARD policy is DROP without
// Docker, in FORWARD itself), and a RETURN before Docker's MASQUERADE in nat
// POSTROUTING so that container source addresses reach the far side unchanged.
//
// They go into iptables, with the binary of the backend that holds Docker's
// chains (iptables-nft or iptables-legacy, told apart by which *-save shows
// them), because an accept in another table or chain is not final: a packet
// accepted by wgnet's own nftables table still meets iptables' FORWARD policy
// DROP in its own base chain. Every rule carries the comment "wgnet:IFACE", so
// that wgnet finds its own rules again, re-asserts them (Docker inserts its jumps
// at the top of FORWARD and POSTROUTING when it recreates its chains) and removes
// exactly them.
//
// It also reads what would still drop overlay traffic and that wgnet does not
// touch: Docker 28's raw-table drop of packets routed directly to container
// addresses, and Docker 29's nftables backend (where DOCKER-USER does not exist).
//
// Programs are run through Runner with an argument vector, never a shell
// (Exec: iptables.Run); iptables-save output is read by iptables.ParseSave. It
// imports iptables of wgnet.
package dockerfw

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/wgnet/wgnet/internal/iptables"
)

// Mode is what the user opted in to.
type Mode string

// Modes of Mode.
const (
	// Off leaves the host's firewall alone (the default).
	Off Mode = ""
	// Auto uses Docker's DOCKER-USER chain where Docker has made it, else
	// FORWARD where its policy is DROP, else adds nothing.
	Auto Mode = "auto"
	// Docker is Auto that insists on Docker: up refuses when no DOCKER-USER
	// chain is found.
	Docker Mode = "docker"
	// Forward always puts the accepts into iptables' FORWARD chain (ufw, a
	// hand-made FORWARD DROP).
	Forward Mode = "iptables"
)

// Modes lists the values a spec or flag may give, for messages.
const Modes = "auto, docker or iptables"

// ParseMode reads a mode as the spec and the flag give it ("" and "off" are Off).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.TrimSpace(s)); m {
	case Off, "off":
		return Off, nil
	case Auto, Docker, Forward:
		return m, nil
	}
	return Off, fmt.Errorf("%q: must be %s (or off)", s, Modes)
}

// Runner runs a program with an argument vector (argv[0] is looked up on PATH)
// and returns its standard output.
type Runner interface {
	Run(ctx context.Context, argv []string) ([]byte, error)
}

// ErrNoTool is returned (wrapped) by Exec when the program is not installed:
// iptables.ErrNoProgram.
var ErrNoTool = iptables.ErrNoProgram

// Exec runs programs on the host, never through a shell (iptables.Run).
type Exec struct{}

// Run implements Runner.
func (Exec) Run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("no program")
	}
	return iptables.Run(ctx, argv[0], argv[1:], "")
}

// Backend is the iptables implementation whose rules a View shows.
type Backend string

// The two iptables backends.
const (
	Nft    Backend = "nft"
	Legacy Backend = "legacy"
)

// Binary is the program of backend b for family (4 or 6): "iptables-nft",
// "ip6tables-legacy"; suffix "-save" gives the dumper.
func Binary(b Backend, family int, suffix string) string {
	p := "iptables"
	if family == 6 {
		p = "ip6tables"
	}
	return p + "-" + string(b) + suffix
}

// Tag is the comment on every rule wgnet adds for interface wg.
func Tag(wg string) string { return "wgnet:" + wg }

// Rule is one iptables rule: where it goes and its specification, as
// iptables-save prints it after "-A CHAIN" (so that a rule read back compares
// equal to the one added).
type Rule struct {
	Family  int      `json:"family"`
	Backend Backend  `json:"backend"`
	Table   string   `json:"table"`
	Chain   string   `json:"chain"`
	Args    []string `json:"args"`
}

// Spec is the rule's specification as one string.
func (r Rule) Spec() string { return strings.Join(r.Args, " ") }

// String is the command that appends the rule, for plans and logs.
func (r Rule) String() string {
	return fmt.Sprintf("%s -t %s -A %s %s", Binary(r.Backend, r.Family, ""), r.Table, r.Chain, r.Spec())
}

func (r Rule) key() chainKey { return chainKey{r.Family, r.Backend, r.Table, r.Chain} }

// insertArgv inserts the rule at position pos (1 is the top) of its chain.
func (r Rule) insertArgv(pos int) []string {
	return append([]string{Binary(r.Backend, r.Family, ""), "-w", "-t", r.Table, "-I", r.Chain, strconv.Itoa(pos)}, r.Args...)
}

// deleteArgv deletes the first rule of its chain that equals it.
func (r Rule) deleteArgv() []string {
	return append([]string{Binary(r.Backend, r.Family, ""), "-w", "-t", r.Table, "-D", r.Chain}, r.Args...)
}

type chainKey struct {
	family  int
	backend Backend
	table   string
	chain   string
}

// Table is one iptables table as *-save prints it.
type Table struct {
	// Policies are the base chains' policies (ACCEPT, DROP).
	Policies map[string]string
	// Chains are every chain's rules in order, each as its specification (the
	// text after "-A CHAIN "); a chain with no rules is there, empty.
	Chains map[string][]string
}

// ParseSave reads iptables-save output into its tables.
func ParseSave(s string) map[string]*Table {
	out := map[string]*Table{}
	for _, st := range iptables.ParseSave(s) {
		t := &Table{Policies: map[string]string{}, Chains: map[string][]string{}}
		out[st.Name] = t
		for _, c := range st.Chains {
			t.Chains[c.Name] = t.Chains[c.Name][:0:0]
			if c.Policy != "" {
				t.Policies[c.Name] = c.Policy
			}
		}
		for _, r := range st.Rules {
			t.Chains[r.Chain] = append(t.Chains[r.Chain], unquote(r.Spec))
		}
	}
	return out
}

// unquote drops the double quotes iptables-save puts around a comment
// ("wgnet:wg0"), which are shell syntax, not part of the argument wgnet passes.
func unquote(spec string) string {
	f := strings.Fields(spec)
	for i := range f {
		f[i] = strings.Trim(f[i], `"`)
	}
	return strings.Join(f, " ")
}

// View is one family's iptables, in the backend that matters on this host.
type View struct {
	Family int
	// Backend is the backend read: the one holding Docker's chains, else the
	// one whose FORWARD policy is DROP, else nft where installed; "" when
	// neither iptables-nft-save nor iptables-legacy-save runs.
	Backend Backend
	Tables  map[string]*Table
}

// Read reads family's iptables (4 or 6) in both backends and keeps the one that
// matters (see View.Backend).
func Read(ctx context.Context, r Runner, family int) (*View, error) {
	var views []*View
	var errs []error
	for _, b := range []Backend{Nft, Legacy} {
		out, err := r.Run(ctx, []string{Binary(b, family, "-save")})
		if errors.Is(err, ErrNoTool) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		views = append(views, &View{Family: family, Backend: b, Tables: ParseSave(string(out))})
	}
	if len(views) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return &View{Family: family, Tables: map[string]*Table{}}, nil
	}
	for _, v := range views {
		if v.Docker() {
			return v, nil
		}
	}
	for _, v := range views {
		if v.ForwardDrop() {
			return v, nil
		}
	}
	return views[0], nil
}

func (v *View) chain(table, chain string) ([]string, bool) {
	t := v.Tables[table]
	if t == nil {
		return nil, false
	}
	rs, ok := t.Chains[chain]
	return rs, ok
}

// Docker reports whether Docker's DOCKER-USER chain is there.
func (v *View) Docker() bool {
	_, ok := v.chain("filter", "DOCKER-USER")
	return ok
}

// ForwardDrop reports whether the filter table's FORWARD policy is DROP.
func (v *View) ForwardDrop() bool {
	t := v.Tables["filter"]
	return t != nil && t.Policies["FORWARD"] == "DROP"
}

// Where is the chain the filter accepts go into under mode: "DOCKER-USER",
// "FORWARD", or "" for none.
func (v *View) Where(mode Mode) string {
	switch {
	case mode == Off || v.Backend == "":
		return ""
	case mode == Forward:
		return "FORWARD"
	case v.Docker():
		return "DOCKER-USER"
	case v.ForwardDrop():
		return "FORWARD"
	}
	return ""
}

// Want is the rules wgnet adds for interface wg in this family under mode:
// in the chain Where names, an accept of wg → wg when the host relays between
// peers, and for each routed subnet of the family an accept of wg → subnet and
// subnet → wg; with Docker, a RETURN in nat POSTROUTING for subnet → wg before
// Docker's MASQUERADE.
func (v *View) Want(mode Mode, wg string, subnets []netip.Prefix, relay bool) []Rule {
	chain := v.Where(mode)
	if chain == "" {
		return nil
	}
	tag := []string{"-m", "comment", "--comment", Tag(wg)}
	rule := func(table, chain string, args ...string) Rule {
		return Rule{Family: v.Family, Backend: v.Backend, Table: table, Chain: chain, Args: args}
	}
	var out []Rule
	if relay {
		out = append(out, rule("filter", chain, slices.Concat([]string{"-i", wg, "-o", wg}, tag, []string{"-j", "ACCEPT"})...))
	}
	var nat []Rule
	for _, s := range subnets {
		if s.Addr().Is4() != (v.Family == 4) {
			continue
		}
		p := s.Masked().String()
		out = append(out,
			rule("filter", chain, slices.Concat([]string{"-d", p, "-i", wg}, tag, []string{"-j", "ACCEPT"})...),
			rule("filter", chain, slices.Concat([]string{"-s", p, "-o", wg}, tag, []string{"-j", "ACCEPT"})...))
		if chain == "DOCKER-USER" {
			nat = append(nat, rule("nat", "POSTROUTING", slices.Concat([]string{"-s", p, "-o", wg}, tag, []string{"-j", "RETURN"})...))
		}
	}
	return append(out, nat...)
}

// Ours returns the rules in the view that carry interface wg's tag, in chain
// order.
func (v *View) Ours(wg string) []Rule {
	var out []Rule
	for _, table := range slices.Sorted(maps.Keys(v.Tables)) {
		t := v.Tables[table]
		for _, chain := range slices.Sorted(maps.Keys(t.Chains)) {
			for _, spec := range t.Chains[chain] {
				if tagged(spec, wg) {
					out = append(out, Rule{Family: v.Family, Backend: v.Backend, Table: table, Chain: chain, Args: strings.Fields(spec)})
				}
			}
		}
	}
	return out
}

func tagged(spec, wg string) bool {
	f := strings.Fields(spec)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "--comment" && f[i+1] == Tag(wg) {
			return true
		}
	}
	return false
}

// Step is one change: a rule inserted at Pos of its chain, or deleted.
type Step struct {
	Delete bool `json:"delete,omitempty"`
	Pos    int  `json:"pos,omitempty"`
	Rule   Rule `json:"rule"`
}

func (s Step) String() string {
	if s.Delete {
		return fmt.Sprintf("%s -t %s -D %s %s", Binary(s.Rule.Backend, s.Rule.Family, ""), s.Rule.Table, s.Rule.Chain, s.Rule.Spec())
	}
	return fmt.Sprintf("%s -t %s -I %s %d %s", Binary(s.Rule.Backend, s.Rule.Family, ""), s.Rule.Table, s.Rule.Chain, s.Pos, s.Rule.Spec())
}

func (s Step) argv() []string {
	if s.Delete {
		return s.Rule.deleteArgv()
	}
	return s.Rule.insertArgv(s.Pos)
}

// Diff works out the steps that make wg's rules in the views exactly want, each
// chain's at its top in want's order: a chain where they are already so is left
// alone; otherwise every rule of wg's there is deleted and the wanted ones are
// inserted from position 1 (re-asserted after Docker put its own rules first).
func Diff(views []*View, want []Rule, wg string) []Step {
	wantBy := map[chainKey][]string{}
	var order []chainKey
	for _, r := range want {
		k := r.key()
		if _, ok := wantBy[k]; !ok {
			order = append(order, k)
		}
		wantBy[k] = append(wantBy[k], r.Spec())
	}
	cur := map[chainKey][]string{}
	for _, v := range views {
		for _, r := range v.Ours(wg) {
			k := r.key()
			if _, ok := wantBy[k]; !ok {
				if _, seen := cur[k]; !seen {
					order = append(order, k)
				}
			}
			cur[k] = append(cur[k], r.Spec())
		}
	}
	var steps []Step
	for _, k := range order {
		var rules []string
		for _, v := range views {
			if v.Family == k.family && v.Backend == k.backend {
				rules, _ = v.chain(k.table, k.chain)
			}
		}
		w := wantBy[k]
		if len(cur[k]) == len(w) && len(rules) >= len(w) && slices.Equal(rules[:len(w)], w) {
			continue
		}
		mk := func(spec string) Rule {
			return Rule{Family: k.family, Backend: k.backend, Table: k.table, Chain: k.chain, Args: strings.Fields(spec)}
		}
		for _, spec := range cur[k] {
			steps = append(steps, Step{Delete: true, Rule: mk(spec)})
		}
		for i, spec := range w {
			steps = append(steps, Step{Pos: i + 1, Rule: mk(spec)})
		}
	}
	return steps
}

// Apply runs the steps in order and stops at the first that fails, returning
// how many it made.
func Apply(ctx context.Context, r Runner, steps []Step) (int, error) {
	for i, s := range steps {
		if _, err := r.Run(ctx, s.argv()); err != nil {
			return i, err
		}
	}
	return len(steps), nil
}

// Remove deletes every one of rules that is still there (each as often as it
// was recorded), reading each family and backend once; rules already gone are
// skipped. It goes on after an error and returns them all.
func Remove(ctx context.Context, r Runner, rules []Rule) error {
	type fb struct {
		family  int
		backend Backend
	}
	saved := map[fb]map[string]*Table{}
	var errs []error
	for _, rule := range rules {
		k := fb{rule.Family, rule.Backend}
		tables, ok := saved[k]
		if !ok {
			out, err := r.Run(ctx, []string{Binary(rule.Backend, rule.Family, "-save")})
			if err != nil {
				errs = append(errs, err)
				saved[k] = nil
				continue
			}
			tables = ParseSave(string(out))
			saved[k] = tables
		}
		t := tables[rule.Table]
		if t == nil {
			continue
		}
		i := slices.Index(t.Chains[rule.Chain], rule.Spec())
		if i < 0 {
			continue
		}
		if _, err := r.Run(ctx, rule.deleteArgv()); err != nil {
			errs = append(errs, err)
			continue
		}
		t.Chains[rule.Chain] = slices.Delete(t.Chains[rule.Chain], i, i+1)
	}
	return errors.Join(errs...)
}
