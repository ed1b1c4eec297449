package agent

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
)

// cacheAgent is an agent with only what cacheLocked uses.
func cacheAgent(t *testing.T, dir string, log *slog.Logger) *Agent {
	st, followed, files, err := loadCache(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{opts: Options{Dir: dir, Log: log}, cache: files}
	if st != nil {
		a.applied, a.followed = st, followed
	}
	return a
}

// cached is the marshalled cache loaded from dir.
func cached(t *testing.T, dir string, log *slog.Logger) []byte {
	t.Helper()
	st, followed, _, err := loadCache(dir, log)
	if err != nil || st == nil {
		t.Fatalf("load: %v %v", st, err)
	}
	b, err := marshalCache(Cache{State: *st.Flat(), Followed: followed})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func want(t *testing.T, a *Agent) []byte {
	t.Helper()
	b, err := marshalCache(Cache{State: *a.applied.Flat(), Followed: a.followed})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nextState is st after a random change: peers added, changed or removed
// (mostly), sometimes the head or URLs, now and then peers out of order or
// with nil allowed IPs.
func nextState(rng *rand.Rand, st *api.AgentState) *api.AgentState {
	out := *st
	out.Revision++
	out.Peers = slices.Clone(st.Peers)
	switch r := rng.IntN(20); {
	case r == 0:
		out.Subnets = []string{fmt.Sprintf("10.%d.0.0/16", rng.IntN(3))}
	case r == 1:
		out.URLs = []string{fmt.Sprintf("https://c%d:8443", rng.IntN(3))}
	case r == 2 && len(out.Peers) > 1:
		out.Peers[0], out.Peers[1] = out.Peers[1], out.Peers[0]
		return &out
	}
	for range 1 + rng.IntN(3) {
		n := rng.IntN(80)
		name := fmt.Sprintf("h%03d", n)
		p := api.Peer{Name: name, PublicKey: fmt.Sprintf("key%d-%d", n, rng.IntN(5)), Endpoint: fmt.Sprintf("198.18.0.%d:51820", n),
			AllowedIPs: []string{fmt.Sprintf("10.0.0.%d/32", n)}, Keepalive: rng.IntN(2) * 25}
		if rng.IntN(10) == 0 {
			p.AllowedIPs = nil
		}
		k, found := slices.BinarySearchFunc(out.Peers, name, func(p api.Peer, n string) int { return strings.Compare(p.Name, n) })
		if !slices.IsSortedFunc(out.Peers, func(a, b api.Peer) int { return strings.Compare(a.Name, b.Name) }) {
			slices.SortFunc(out.Peers, func(a, b api.Peer) int { return strings.Compare(a.Name, b.Name) })
			k, found = slices.BinarySearchFunc(out.Peers, name, func(p api.Peer, n string) int { return strings.Compare(p.Name, n) })
		}
		switch {
		case found && rng.IntN(3) == 0:
			out.Peers = slices.Delete(out.Peers, k, k+1)
		case found:
			out.Peers[k] = p
		default:
			out.Peers = slices.Insert(out.Peers, k, p)
		}
	}
	return &out
}

// TestCacheJournal: after each of many changes, mostly of peers, the
// cache loaded from disk (base and journal replayed) is the state applied,
// byte for byte; most changes were journal records, not a whole state;
// the files are 0600.
func TestCacheJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	a := cacheAgent(t, dir, slog.New(slog.DiscardHandler))
	rng := rand.New(rand.NewPCG(7, 8))
	st := &api.AgentState{Network: "n", Host: "h000", Revision: 1, Subnets: []string{"10.0.0.0/16"}, Addresses: []string{"10.0.0.1/16"}, Peers: []api.Peer{}}
	appended, bases := 0, 0
	for i := range 400 {
		st = nextState(rng, st)
		a.applied, a.followed = hold(st), st.Revision+uint64(rng.IntN(2))
		before := a.cache.jrSize
		if err := a.cacheLocked(); err != nil {
			t.Fatal(err)
		}
		if a.cache.jrSize > before && before > 0 {
			appended++
		} else {
			bases++
		}
		if got, w := cached(t, dir, slog.New(slog.DiscardHandler)), want(t, a); !bytes.Equal(got, w) {
			t.Fatalf("change %d: the cache loaded is not the state applied:\n got %s\nwant %s", i, got, w)
		}
		if i%50 == 0 { // a restart: the agent goes on from what it loaded
			a = cacheAgent(t, dir, slog.New(slog.DiscardHandler))
			if a.cache.st == nil {
				t.Fatalf("change %d: a clean journal is not appended to after a restart", i)
			}
		}
	}
	if appended < 250 {
		t.Errorf("%d of 400 changes appended to the journal (%d bases): want most", appended, bases)
	}
	for _, f := range []string{StateFile, JournalFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600", f, fi.Mode(), err)
		}
	}
	t.Logf("%d changes appended to the journal, %d wrote a base", appended, bases)
}

// TestCacheJournalTorn: a journal whose last record is torn or corrupt
// loads as the state of the record before it, says so, and the next change
// writes a new base that loads whole; a journal of another base is ignored.
func TestCacheJournalTorn(t *testing.T) {
	for _, damage := range []string{"torn", "corrupt", "other base"} {
		t.Run(damage, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "agent")
			a := cacheAgent(t, dir, slog.New(slog.DiscardHandler))
			st := &api.AgentState{Host: "h", Revision: 1, Subnets: []string{"10.0.0.0/16"}, Peers: []api.Peer{}}
			rng := rand.New(rand.NewPCG(1, 2))
			var states [][]byte
			for len(states) < 20 {
				next := nextState(rng, st)
				if deltaOf(hold(st), hold(next)) == nil {
					continue // peers only: each change one record
				}
				st = next
				a.applied, a.followed = hold(st), st.Revision
				if err := a.cacheLocked(); err != nil {
					t.Fatal(err)
				}
				states = append(states, want(t, a))
			}
			if a.cache.st == nil || a.cache.jrSize <= 100 {
				t.Fatal("the journal was not used")
			}
			jpath := filepath.Join(dir, JournalFile)
			jb, err := os.ReadFile(jpath)
			if err != nil {
				t.Fatal(err)
			}
			_, end := records(jb)
			if end != len(jb) {
				t.Fatalf("journal of %d bytes, %d whole", len(jb), end)
			}
			expect := states[len(states)-2]
			switch damage {
			case "torn":
				jb = jb[:len(jb)-3]
			case "corrupt":
				jb[len(jb)-5] ^= 0x20
			case "other base":
				base := filepath.Join(dir, StateFile)
				b, _ := os.ReadFile(base)
				if err := os.WriteFile(base, append(b, ' '), 0o600); err != nil {
					t.Fatal(err)
				}
				expect = nil // the base's own state
			}
			if err := os.WriteFile(jpath, jb, 0o600); err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logged, nil))
			got := cached(t, dir, log)
			if expect != nil && !bytes.Equal(got, expect) {
				t.Fatalf("loaded:\n %s\nwant the state before the damaged record:\n %s", got, expect)
			}
			if expect == nil && bytes.Equal(got, states[len(states)-1]) {
				t.Fatal("a journal of another base was replayed")
			}
			if !strings.Contains(logged.String(), "state journal") {
				t.Errorf("nothing logged: %q", logged.String())
			}
			// The agent restarted on it goes on with a new base.
			a = cacheAgent(t, dir, slog.New(slog.DiscardHandler))
			if a.cache.st != nil {
				t.Fatal("a damaged journal would be appended to")
			}
			a.applied = hold(nextState(rng, a.applied.Flat()))
			a.followed = a.applied.Revision
			if err := a.cacheLocked(); err != nil {
				t.Fatal(err)
			}
			if got, w := cached(t, dir, slog.New(slog.DiscardHandler)), want(t, a); !bytes.Equal(got, w) {
				t.Fatalf("after the damage: got %s\nwant %s", got, w)
			}
		})
	}
}
