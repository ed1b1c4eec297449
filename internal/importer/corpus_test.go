package importer

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// The corpus (testdata/corpus/FLEET/HOST.conf) holds fleets of wg-quick files
// as the tools people use write them: wg-easy and PiVPN servers and clients,
// tutorial setups, dsnet, Netmaker and innernet (those two and dsnet's server
// as `wg showconf` prints them: no Address), commercial full-tunnel clients, a
// 200-peer server with its clients, meshes, hand-edited files. Keys were made
// once with `wg genkey`. FLEET.notes holds what import says about each fleet
// (go test -update rewrites it).

var update = flag.Bool("update", false, "rewrite testdata/corpus/FLEET.notes")

// expected is one difference between a host's file and its rendered config:
// where the note about it must be, and a word it must contain.
type expected struct {
	line  int
	about string
	what  string
}

// TestCorpusRoundTrip imports each fleet, writes and reads back its spec,
// compiles it and compares every host's rendered config with its file: the
// peers and the [Interface] as the real `wg-quick strip` prints them (what wg
// reads: peers by public key, AllowedIPs as sets, endpoint, keepalive,
// preshared key; private key, port, fwmark), and the wg-quick keys (Address
// with its prefix, MTU, DNS, Table, the hooks' text). Every difference must
// have an import note at its file:line that names it; none may pass silently.
func TestCorpusRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		netnstest.Needs(t, "wg-quick strip runs only as root")
	}
	netnstest.NeedsTool(t, "wireguard-tools", "wg-quick")
	fleets, err := filepath.Glob("testdata/corpus/*")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, f := range fleets {
		if fi, err := os.Stat(f); err == nil && fi.IsDir() {
			dirs = append(dirs, f)
		}
	}
	if len(dirs) < 20 {
		t.Fatalf("%d fleets in testdata/corpus, want 20 or more", len(dirs))
	}
	var total corpusFigures
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			f := roundTrip(t, dir)
			total.add(f)
			t.Logf("%s: %d hosts, %d peers compared, %d the same, %d differences, %d notes", filepath.Base(dir), f.hosts, f.peers, f.samePeers, f.diffs, f.notes)
		})
	}
	t.Logf("corpus: %d fleets, %d hosts, %d peers compared (%d the same in every field), %d differences, each with its note; %d notes in all",
		len(dirs), total.hosts, total.peers, total.samePeers, total.diffs, total.notes)
}

type corpusFigures struct{ hosts, peers, samePeers, diffs, notes int }

func (f *corpusFigures) add(g corpusFigures) {
	f.hosts += g.hosts
	f.peers += g.peers
	f.samePeers += g.samePeers
	f.diffs += g.diffs
	f.notes += g.notes
}

// roundTrip checks one fleet (see TestCorpusRoundTrip).
func roundTrip(t *testing.T, dir string) corpusFigures {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	sort.Strings(paths)
	var cfgs []*wgconf.Config
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := wgconf.Parse(p, src)
		if err != nil {
			t.Fatalf("the corpus file does not parse: %v", err)
		}
		cfgs = append(cfgs, c)
	}
	names := wgconf.HostNames(paths)
	r, err := Import(filepath.Base(dir), names, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	// The spec as import writes it, read back.
	out, err := spec.Marshal(r.Spec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse("imported.yaml", out)
	if err != nil {
		t.Fatalf("the imported spec does not validate: %v\n%s", err, out)
	}
	hcs, err := compile.Compile(s, r.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	checkNotesGolden(t, dir, r.Notes)
	rendered := map[string]*intent.Host{}
	for i := range hcs {
		rendered[hcs[i].Name] = &hcs[i]
	}
	fig := corpusFigures{notes: len(r.Notes)}
	tmp := t.TempDir()
	for i, path := range paths {
		hc, ok := rendered[names[i]]
		if !ok {
			t.Errorf("%s: no rendered config for host %s", path, names[i])
			continue
		}
		fig.hosts++
		want := compareHost(t, tmp, path, cfgs[i], hc, &fig)
		for _, e := range want {
			fig.diffs++
			t.Logf("%s:%d: %s", path, e.line, e.what)
			if !hasNote(r.Notes, path, e.line, e.about) {
				t.Errorf("%s:%d: %s, and no note there names %q", path, e.line, e.what, e.about)
			}
		}
	}
	return fig
}

// compareHost returns every difference between a host's file and its
// rendered config.
func compareHost(t *testing.T, tmp, path string, in *wgconf.Config, hc *intent.Host, fig *corpusFigures) []expected {
	got, err := wgconf.Parse("rendered", hc.WgQuick())
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sin, sgot := strip(t, tmp, src), strip(t, tmp, hc.WgQuick())
	// What `render -o wg` writes is what wg-quick strips of the wg-quick form.
	if wgForm, err := wgconf.Parse("render -o wg", hc.Stripped()); err != nil {
		t.Fatal(err)
	} else if diff := cmp.Diff(sgot.WgQuick(), wgForm.WgQuick()); diff != "" {
		t.Errorf("%s: render -o wg differs from wg-quick strip of the rendered file (-strip +render):\n%s", path, diff)
	}
	var diffs []expected
	add := func(line int, about, format string, a ...any) {
		diffs = append(diffs, expected{line, about, fmt.Sprintf(format, a...)})
	}
	ic, gc := &in.Interface, &got.Interface
	pos := &ic.Pos
	// What wg reads, from wg-quick strip.
	if a, b := portOf(sin), portOf(sgot); a != b {
		add(pos.KeyLine(wgconf.KeyListenPort), "ListenPort", "ListenPort %s became %s", a, b)
	}
	if sin.Interface.FwMark != sgot.Interface.FwMark {
		add(pos.KeyLine(wgconf.KeyFwMark), "FwMark", "FwMark %#x became %#x", sin.Interface.FwMark, sgot.Interface.FwMark)
	}
	if !sin.Interface.PrivateKey.IsZero() && sin.Interface.PrivateKey.Public() != sgot.Interface.PrivateKey.Public() {
		add(pos.KeyLine(wgconf.KeyPrivateKey), "PrivateKey", "PrivateKey changed")
	}
	diffs = append(diffs, comparePeers(in, sin, sgot, fig)...)
	// The wg-quick keys, which strip leaves out.
	if a, b := sortedText(ic.Addresses), sortedText(gc.Addresses); a != b {
		add(pos.KeyLine(wgconf.KeyAddress), "Address", "Address %q became %q", a, b)
	}
	if ic.MTU != gc.MTU {
		add(pos.KeyLine(wgconf.KeyMTU), "MTU", "MTU %d became %d", ic.MTU, gc.MTU)
	}
	if !slices.Equal(ic.DNS, gc.DNS) {
		add(pos.KeyLine(wgconf.KeyDNS), "DNS", "DNS %q became %q", ic.DNS, gc.DNS)
	}
	if ic.Table != gc.Table {
		add(pos.KeyLine(wgconf.KeyTable), "Table", "Table %q became %q", ic.Table, gc.Table)
	}
	if ic.SaveConfig != gc.SaveConfig {
		add(pos.KeyLine(wgconf.KeySaveConfig), "SaveConfig", "SaveConfig %t became %t", ic.SaveConfig, gc.SaveConfig)
	}
	for _, k := range []struct {
		key     string
		in, got []string
	}{
		{wgconf.KeyPreUp, ic.PreUp, gc.PreUp}, {wgconf.KeyPostUp, ic.PostUp, gc.PostUp},
		{wgconf.KeyPreDown, ic.PreDown, gc.PreDown}, {wgconf.KeyPostDown, ic.PostDown, gc.PostDown},
	} {
		// wgnet's own forwarding lines that the file lacks are one
		// difference, said at the [Interface] line; the rest is text,
		// compared as such.
		own := slices.DeleteFunc(setDiffStrings(k.got, k.in), func(l string) bool { return !intent.OwnForwardingHook(l) })
		if len(own) > 0 {
			add(pos.Line, "forwarding", "%s adds wgnet's forwarding %q", k.key, own)
		}
		rest := slices.DeleteFunc(slices.Clone(k.got), func(l string) bool { return slices.Contains(own, l) })
		if !slices.Equal(k.in, rest) {
			add(pos.KeyLine(k.key), k.key, "%s %q became %q", k.key, k.in, rest)
		}
	}
	return diffs
}

// comparePeers compares the peers of the stripped file and the stripped
// rendered config by public key; lines are the file's own (in).
func comparePeers(in, sin, sgot *wgconf.Config, fig *corpusFigures) []expected {
	var diffs []expected
	add := func(line int, about, format string, a ...any) {
		diffs = append(diffs, expected{line, about, fmt.Sprintf(format, a...)})
	}
	got := map[string]*wgconf.Peer{}
	for i := range sgot.Peers {
		got[sgot.Peers[i].PublicKey.String()] = &sgot.Peers[i]
	}
	self := ""
	if !in.Interface.PrivateKey.IsZero() {
		self = in.Interface.PrivateKey.Public().String()
	}
	seen := map[string]bool{}
	for i := range sin.Peers {
		p := &sin.Peers[i]
		k := p.PublicKey.String()
		if k == self || seen[k] {
			continue
		}
		seen[k] = true
		fig.peers++
		pos := filePeer(in, k)
		g, ok := got[k]
		if !ok {
			add(pos.KeyLine(wgconf.KeyPublicKey), "peer", "peer %s is gone", k)
			continue
		}
		n := len(diffs)
		if a, b := sortedText(p.AllowedIPs), sortedText(g.AllowedIPs); a != b {
			add(pos.KeyLine(wgconf.KeyAllowedIPs), "AllowedIPs", "peer %s: AllowedIPs %q became %q", k, a, b)
		}
		if a, b := endpointText(p.Endpoint), endpointText(g.Endpoint); a != b {
			add(pos.KeyLine(wgconf.KeyEndpoint), "Endpoint", "peer %s: Endpoint %s became %s", k, a, b)
		}
		if p.PersistentKeepalive != g.PersistentKeepalive {
			add(pos.KeyLine(wgconf.KeyPersistentKeepalive), "PersistentKeepalive", "peer %s: PersistentKeepalive %d became %d", k, p.PersistentKeepalive, g.PersistentKeepalive)
		}
		if p.PresharedKey != g.PresharedKey {
			add(pos.KeyLine(wgconf.KeyPresharedKey), "PresharedKey", "peer %s: PresharedKey changed", k)
		}
		if len(diffs) == n {
			fig.samePeers++
		}
	}
	for _, g := range sgot.Peers {
		if k := g.PublicKey.String(); !seen[k] {
			add(in.Interface.Pos.Line, "adds peer", "peer %s added", k)
		}
	}
	return diffs
}

// filePeer returns the position of the file's first peer with key k, or the
// [Interface]'s line.
func filePeer(c *wgconf.Config, k string) wgconf.PeerPos {
	for i := range c.Peers {
		if c.Peers[i].PublicKey.String() == k {
			return c.Peers[i].Pos
		}
	}
	return wgconf.PeerPos{Line: c.Interface.Pos.Line}
}

// strip runs the real `wg-quick strip` on a config and parses what it prints.
func strip(t *testing.T, tmp string, conf []byte) *wgconf.Config {
	t.Helper()
	path := filepath.Join(tmp, "wgstrip.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("wg-quick", "strip", path).Output()
	if err != nil {
		t.Fatalf("wg-quick strip: %v", err)
	}
	c, err := wgconf.Parse("stripped", out)
	if err != nil {
		t.Fatalf("wg-quick strip printed what does not parse: %v\n%s", err, out)
	}
	return c
}

func hasNote(notes diag.List, file string, line int, about string) bool {
	for _, n := range notes {
		if n.File == file && n.Line == line && strings.Contains(n.Message, about) {
			return true
		}
	}
	return false
}

func portOf(c *wgconf.Config) string {
	if c.Interface.ListenPort == nil {
		return "none"
	}
	return fmt.Sprint(*c.Interface.ListenPort)
}

func sortedText(ps []netip.Prefix) string { return prefixSet(ps) }

func setDiffStrings(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// checkNotesGolden compares import's notes on a fleet with FLEET.notes.
func checkNotesGolden(t *testing.T, dir string, notes diag.List) {
	t.Helper()
	var b strings.Builder
	for _, n := range notes {
		b.WriteString(n.Located() + "\n")
	}
	golden := dir + ".notes"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("%s (-want +got):\n%s", golden, diff)
	}
}
