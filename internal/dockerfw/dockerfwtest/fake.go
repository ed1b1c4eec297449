// Package dockerfwtest is a fake iptables for dockerfw.Runner: the *-save
// dumpers, -I and -D of each backend and family, and `nft list tables`, on
// tables held in memory. Unit tests of dockerfw and up use it; the real
// binaries are tested in network namespaces. It imports dockerfw only.
package dockerfwtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/wgnet/wgnet/internal/dockerfw"
)

// Fake is an iptables host. Binaries not loaded are not installed.
type Fake struct {
	mu     sync.Mutex
	tables map[string]map[string]*dockerfw.Table // binary ("iptables-nft") → table
	// NftTables are the lines `nft list tables` prints ("table ip docker-bridges").
	NftTables []string
	// Calls are every argv run, in order.
	Calls [][]string
	// Fail makes a run fail when it returns true for its argv.
	Fail func(argv []string) bool
}

// New returns a fake with no iptables installed.
func New() *Fake { return &Fake{tables: map[string]map[string]*dockerfw.Table{}} }

// Load installs binary (e.g. "iptables-nft") with the tables of save, as
// iptables-save prints them.
func (f *Fake) Load(binary, save string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tables[binary] = dockerfw.ParseSave(save)
}

// Save returns what binary's dumper prints now.
func (f *Fake) Save(binary string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return render(f.tables[binary])
}

// Run implements dockerfw.Runner.
func (f *Fake) Run(_ context.Context, argv []string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, slices.Clone(argv))
	if f.Fail != nil && f.Fail(argv) {
		return nil, fmt.Errorf("%s: planted failure", strings.Join(argv, " "))
	}
	if argv[0] == "nft" {
		return []byte(strings.Join(f.NftTables, "\n") + "\n"), nil
	}
	if bin, ok := strings.CutSuffix(argv[0], "-save"); ok {
		t, installed := f.tables[bin]
		if !installed {
			return nil, fmt.Errorf("%s: %w", argv[0], dockerfw.ErrNoTool)
		}
		return []byte(render(t)), nil
	}
	tables, installed := f.tables[argv[0]]
	if !installed {
		return nil, fmt.Errorf("%s: %w", argv[0], dockerfw.ErrNoTool)
	}
	return nil, edit(tables, argv[1:])
}

// edit applies `-w -t TABLE -I CHAIN POS SPEC...` or `-w -t TABLE -D CHAIN SPEC...`.
func edit(tables map[string]*dockerfw.Table, args []string) error {
	if len(args) < 5 || args[0] != "-w" || args[1] != "-t" {
		return fmt.Errorf("fake iptables: unsupported %q", args)
	}
	t := tables[args[2]]
	if t == nil {
		return fmt.Errorf("fake iptables: no table %s", args[2])
	}
	chain := args[4]
	rules, ok := t.Chains[chain]
	if !ok {
		return fmt.Errorf("iptables: No chain/target/match by that name (%s)", chain)
	}
	switch args[3] {
	case "-I":
		pos, err := strconv.Atoi(args[5])
		if err != nil || pos < 1 || pos > len(rules)+1 {
			return fmt.Errorf("iptables: Index of insertion too big (%s)", args[5])
		}
		t.Chains[chain] = slices.Insert(rules, pos-1, strings.Join(args[6:], " "))
	case "-D":
		i := slices.Index(rules, strings.Join(args[5:], " "))
		if i < 0 {
			return fmt.Errorf("iptables: Bad rule (does a matching rule exist in that chain?)")
		}
		t.Chains[chain] = slices.Delete(rules, i, i+1)
	default:
		return fmt.Errorf("fake iptables: unsupported %q", args)
	}
	return nil
}

func render(tables map[string]*dockerfw.Table) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(tables)) {
		t := tables[name]
		fmt.Fprintf(&b, "*%s\n", name)
		for _, c := range slices.Sorted(maps.Keys(t.Chains)) {
			p := t.Policies[c]
			if p == "" {
				p = "-"
			}
			fmt.Fprintf(&b, ":%s %s [0:0]\n", c, p)
		}
		for _, c := range slices.Sorted(maps.Keys(t.Chains)) {
			for _, r := range t.Chains[c] {
				fmt.Fprintf(&b, "-A %s %s\n", c, quoteComment(r))
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// quoteComment quotes a comment as iptables-save does (`--comment "wgnet:wg0"`).
func quoteComment(spec string) string {
	f := strings.Fields(spec)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "--comment" {
			f[i+1] = `"` + f[i+1] + `"`
		}
	}
	return strings.Join(f, " ")
}
