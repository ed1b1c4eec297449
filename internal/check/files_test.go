package check

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgconf"
)

var update = flag.Bool("update", false, "rewrite testdata/*/findings.golden")

// TestCorpus lints each testdata/CASE: a set of hand-broken configs with real keys.
// CASE/expect, written by hand, says the exit status and every finding's file,
// line, severity and code; CASE/findings.golden holds the full text (-update
// rewrites it); CASE/modes gives files a mode other than 0600.
func TestCorpus(t *testing.T) {
	cases, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			src, err := filepath.Abs(filepath.Join("testdata", c.Name()))
			if err != nil {
				t.Fatal(err)
			}
			wantExit, want := readExpect(t, filepath.Join(src, "expect"))
			paths := copyCase(t, src) // and chdir there
			got, err := Files(context.Background(), paths)
			if err != nil {
				t.Fatalf("Files: %v", err)
			}
			if diff := cmp.Diff(want, short(got)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			exit := 0
			if errs, _ := got.Count(); errs > 0 {
				exit = 1
			}
			if exit != wantExit {
				t.Errorf("exit %d, want %d", exit, wantExit)
			}
			var text strings.Builder
			for _, f := range got {
				fmt.Fprintln(&text, f)
			}
			golden := filepath.Join(src, "findings.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(text.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if diff := cmp.Diff(string(b), text.String()); diff != "" {
				t.Errorf("findings.golden (-want +got):\n%s", diff)
			}
		})
	}
}

func readExpect(t *testing.T, file string) (exit int, want []string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want = []string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if e, ok := strings.CutPrefix(line, "exit "); ok {
			if exit, err = strconv.Atoi(e); err != nil {
				t.Fatalf("%s: %q", file, line)
			}
		} else if line != "" {
			want = append(want, line)
		}
	}
	return exit, want
}

// copyCase copies the case's configs to a temporary directory, with mode 0600 or
// the one in its modes file (git keeps no modes), changes into it and returns the
// configs' relative paths.
func copyCase(t *testing.T, src string) []string {
	t.Helper()
	modes := map[string]os.FileMode{}
	if b, err := os.ReadFile(filepath.Join(src, "modes")); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			file, mode, _ := strings.Cut(line, " ")
			m, err := strconv.ParseUint(mode, 8, 32)
			if err != nil {
				t.Fatalf("modes: %q", line)
			}
			modes[file] = os.FileMode(m)
		}
	}
	dst := t.TempDir()
	var paths []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".conf") {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o700); err != nil {
			return err
		}
		mode, ok := modes[rel]
		if !ok {
			mode = 0o600
		}
		out := filepath.Join(dst, rel)
		if err := os.WriteFile(out, b, mode); err != nil {
			return err
		}
		paths = append(paths, rel)
		return os.Chmod(out, mode) // whatever the umask
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dst)
	slices.Sort(paths)
	return paths
}

func TestFilesErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "s1.conf")
	if err := os.WriteFile(good, []byte("[Interface]\nListenPort = 51820\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		paths []string
	}{
		{"missing file", []string{good, filepath.Join(dir, "nope.conf")}},
		{"directory", []string{dir}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := Files(context.Background(), tt.paths)
			if err == nil {
				t.Fatalf("Files(%v) = %v, nil; want an error", tt.paths, fs)
			}
		})
	}
}

func TestHostNames(t *testing.T) {
	tests := []struct {
		files, want []string
	}{
		{[]string{"s1.conf", "dir/s2.conf"}, []string{"s1", "s2"}},
		{[]string{"out/s1/wg0.conf", "out/s2/wg0.conf"}, []string{"s1", "s2"}},
		{[]string{"/etc/wireguard/wg0.conf"}, []string{"wg0"}},
		{[]string{"a/x/wg0.conf", "b/x/wg0.conf", "c.conf"}, []string{"a/x/wg0", "b/x/wg0", "c"}},
		{[]string{"a/wg0.conf", "b/wg0.conf", "a.conf"}, []string{"a/wg0", "b", "a"}},
		{[]string{"wg0.conf", "x/wg0.conf"}, []string{"wg0", "x"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.files, ","), func(t *testing.T) {
			if diff := cmp.Diff(tt.want, HostNames(tt.files)); diff != "" {
				t.Errorf("HostNames (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFindingString(t *testing.T) {
	tests := []struct {
		f    diag.Diagnostic
		want string
	}{
		{diag.Diagnostic{File: "s2.conf", Line: 7, Severity: diag.Error, Code: "endpoint-port", Message: "bad"}, "s2.conf:7: error: endpoint-port: bad"},
		{diag.Diagnostic{File: "s1.conf", Severity: diag.Warning, Code: "world-readable", Message: "chmod"}, "s1.conf: warning: world-readable: chmod"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	b, err := json.Marshal(tests[0].f)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"file":"s2.conf","line":7,"severity":"error","code":"endpoint-port","message":"bad"}`
	if string(b) != wantJSON {
		t.Errorf("JSON = %s, want %s", b, wantJSON)
	}
}

// TestDocs keeps the code table in doc.go and docs/checks.md in step with All.
func TestDocs(t *testing.T) {
	docGo, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile("../../docs/checks.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range All() {
		if !strings.Contains(string(docGo), fmt.Sprintf("//\t%-18s %-9s ", c.Code, c.Severity)) {
			t.Errorf("doc.go: no table row for %s (%s)", c.Code, c.Severity)
		}
		if !strings.Contains(string(md), fmt.Sprintf("| `%s` | %s |", c.Code, c.Severity)) {
			t.Errorf("docs/checks.md: no table row for %s (%s)", c.Code, c.Severity)
		}
		if !strings.Contains(string(md), "### `"+c.Code+"`") {
			t.Errorf("docs/checks.md: no section for %s", c.Code)
		}
	}
}

// TestConstructed lints configs built in Go, as the compiler makes them: no file,
// no lines. Findings name the host instead.
func TestConstructed(t *testing.T) {
	port := uint16(51820)
	hub := &wgconf.Config{Name: "hub", Interface: wgconf.Interface{
		PrivateKey: testPriv("hub"), ListenPort: &port,
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")},
	}}
	spoke := &wgconf.Config{Name: "spoke", Interface: wgconf.Interface{
		PrivateKey: testPriv("spoke"),
		Addresses:  []netip.Prefix{netip.MustParsePrefix("10.1.0.2/24")},
	}}
	hub.Peers = []wgconf.Peer{{PublicKey: testPub("spoke"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/32")}}}
	spoke.Peers = []wgconf.Peer{{
		PublicKey: testPub("hub"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")},
		Endpoint: &wgconf.Endpoint{Host: "198.18.1.1", Port: 51821}, PersistentKeepalive: 25,
	}}
	got := Configs(Input{Configs: []*wgconf.Config{spoke, hub}})
	want := []string{"spoke:0 error endpoint-port"}
	if diff := cmp.Diff(want, short(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if len(got) == 1 && !strings.Contains(got[0].Message, `peer "hub": Endpoint port 51821 is not hub's ListenPort 51820 (hub)`) {
		t.Errorf("message: %s", got[0].Message)
	}
}

// FuzzFiles checks that no set of configs, however broken, panics the checks.
func FuzzFiles(f *testing.F) {
	for _, set := range []map[string]string{hubSet, meshSet} {
		var parts []string
		for _, name := range slices.Sorted(maps.Keys(set)) {
			parts = append(parts, expand(f, set[name]))
		}
		f.Add(strings.Join(parts, "\x00"))
	}
	f.Fuzz(func(t *testing.T, in string) {
		var cfgs []*wgconf.Config
		for i, src := range strings.SplitN(in, "\x00", 4) {
			c, _ := wgconf.Parse(fmt.Sprintf("s%d.conf", i), []byte(src))
			cfgs = append(cfgs, c)
		}
		for _, topo := range []string{"", TopologyHub, TopologyMesh} {
			for _, f := range Configs(Input{Configs: cfgs, Topology: topo}) {
				if f.Code == "" || f.Severity == "" || f.Message == "" {
					t.Fatalf("incomplete finding %#v", f)
				}
			}
		}
	})
}
