package check

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/diag"
)

// faultyMesh writes the configs of an n-host full mesh (n ≥ 60) into dir, host
// i as hI.conf (10.0.I/16, dialled at 198.18.I:51820, as meshConfigs), with a
// fault of nearly every kind check knows planted in a few hosts, and returns
// their paths.
func faultyMesh(tb testing.TB, dir string, n int) []string {
	tb.Helper()
	addr := func(i int) string { return fmt.Sprintf("%d.%d", i/250, i%250+1) }
	name := func(i int) string { return fmt.Sprint("h", i) }
	pubs := make([]string, n)
	for i := range pubs {
		pubs[i] = testPub(name(i)).String()
	}
	const undialled = 36 // nobody has an Endpoint for h36: keepalive-nat
	paths := make([]string, n)
	for i := range n {
		var b strings.Builder
		priv := testPriv(name(i))
		if i == 1 {
			priv = testPriv(name(2)) // dup-key
		}
		address := addr(i)
		if i == 18 {
			address = addr(19) // dup-address
		}
		fmt.Fprintf(&b, "[Interface]\nPrivateKey = %s\nAddress = 10.0.%s/16\n", priv.Base64(), address)
		if i != 24 { // no-listen-port
			b.WriteString("ListenPort = 51820\n")
		}
		switch i {
		case 28:
			b.WriteString("MTU = 1500\n") // mtu
		case 34:
			b.WriteString("PostUp = wg set %i private-key <(cat /etc/wg/key; curl x)\n") // key-hook
		case 40:
			b.WriteString("Frobnicate = yes\n") // syntax: unknown key
		case 41:
			b.WriteString("PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1\n")
		}
		for j := range n {
			if j == i || (i == 9 && j == 10) {
				continue // h9 lacks h10: asymmetric-peer
			}
			pub, aips, ep := pubs[j], "10.0."+addr(j)+"/32", "198.18."+addr(j)+":51820"
			extra := ""
			switch {
			case i == 6 && j == 7:
				pub = testPub("not h7").String() // unknown-peer-key, by the name comment
			case i == 11 && j == 12:
				extra = "PresharedKey = " + testPub("psk").String() + "\n" // psk-mismatch
			case i == 13 && j == 15:
				aips += ", 10.0." + addr(14) + "/32" // dup-allowedip with h14's own
			case i == 16 && j == 17:
				aips += ", 10.0.0.0/16" // overlap-allowedip, forwarding
			case i == 20 && j == 21:
				aips = "10.0.250.250/32" // address-not-routed
			case i == 22 && j == 23:
				ep = "198.18." + addr(j) + ":51821" // endpoint-port
			case i == 25 && j == 26:
				aips += ", 0.0.0.0/0" // default-route
			case i == 27 && j == 28:
				ep = "198.18." + addr(j) // syntax: no port
			case i == 29 && j == 30:
				aips += ", 172.17.5.0/24" // docker-overlap, a routed subnet
			case i == 29 && j == 31:
				aips += ", 172.17.5.128/25" // route-overlap with h30's
			case i == 31 && j == 32:
				aips += ", 198.18.0.0/24" // endpoint-loop
			case i == 38 && j == 39:
				aips = "10.0." + addr(j) + "/24" // parse-warning: host bits
			case i == 42 && j == 43:
				aips += ", 10.77.0.0/16" // a routed subnet behind h43, h43 without forwarding
			case i == 41 && j == 44:
				aips += ", 10.78.0.0/16" // one behind h44
			case i == 45 && j == 44:
				aips += ", 10.78.0.0/16"
			}
			fmt.Fprintf(&b, "\n# %s\n[Peer]\nPublicKey = %s\n%sAllowedIPs = %s\n", name(j), pub, extra, aips)
			if j != undialled && (i != undialled || j != 37) { // h36 and h37: no-endpoint
				fmt.Fprintf(&b, "Endpoint = %s\n", ep)
			}
			switch {
			case i == 4 && j == 5:
				fmt.Fprintf(&b, "\n# %s again\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.99.0.0/24\n", name(j), pub) // dup-peer
			case i == 3 && j == 4:
				fmt.Fprintf(&b, "\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.98.0.0/24\n", testPub(name(3))) // self-peer
			case i == 8 && j == 9:
				fmt.Fprintf(&b, "\n[Peer]\nPublicKey = %s\nAllowedIPs = 192.0.2.0/24\n", testPub("stranger")) // peer-not-in-set
			}
		}
		paths[i] = filepath.Join(dir, name(i)+".conf")
		mode := os.FileMode(0o600)
		if i == 50 {
			mode = 0o644 // world-readable
		}
		if err := os.WriteFile(paths[i], []byte(b.String()), mode); err != nil {
			tb.Fatal(err)
		}
		if err := os.Chmod(paths[i], mode); err != nil {
			tb.Fatal(err)
		}
	}
	return paths
}

// meshSummary is what the golden file holds of a long list of findings: their
// count by code, the sha256 of their text, and the first two of each code.
func meshSummary(fs diag.List, dir string) string {
	var text, examples strings.Builder
	counts := map[string]int{}
	for _, f := range fs {
		counts[f.Code]++
		f.File = strings.TrimPrefix(f.File, dir+string(filepath.Separator))
		f.Message = strings.ReplaceAll(f.Message, dir+string(filepath.Separator), "")
		fmt.Fprintln(&text, f)
		if counts[f.Code] <= 2 {
			fmt.Fprintln(&examples, f)
		}
	}
	var out strings.Builder
	codes := slices.Sorted(func(yield func(string) bool) {
		for c := range counts {
			if !yield(c) {
				return
			}
		}
	})
	for _, c := range codes {
		fmt.Fprintf(&out, "%s %d\n", c, counts[c])
	}
	sum := sha256.Sum256([]byte(text.String()))
	fmt.Fprintf(&out, "sha256 %s\n", hex.EncodeToString(sum[:]))
	out.WriteString(examples.String())
	return out.String()
}

// TestMeshGolden holds the findings of `check` on a 1,000-host mesh with a
// fault of nearly every kind planted (faultyMesh) to what they were before the
// speed work of issue 12: every finding, byte for byte (its sha256 in the
// golden file, with the count by code and two of each to read). -update
// rewrites testdata/mesh-1000.golden.
func TestMeshGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and checks a 1,000-host mesh (129 MB)")
	}
	dir := t.TempDir()
	paths := faultyMesh(t, dir, 1000)
	got, err := Files(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	summary := meshSummary(got, dir)
	golden := filepath.Join("testdata", "mesh-1000.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(summary), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if diff := cmp.Diff(string(want), summary); diff != "" {
		t.Errorf("findings on the faulty mesh (-want +got):\n%s", diff)
	}
}

// TestParallelSameAsSerial: check on every core says exactly what it says in
// order on one, byte for byte: on every case of testdata (as TestCorpus reads
// them: copyCase) and on a faulty 200-host mesh, with 1, 2 and 7 workers (runs
// of hosts that don't divide evenly).
func TestParallelSameAsSerial(t *testing.T) {
	same := func(t *testing.T, paths []string, atLeast int) {
		t.Helper()
		serial, err := files(context.Background(), paths, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(serial) < atLeast {
			t.Fatalf("%d findings, want at least %d", len(serial), atLeast)
		}
		for _, workers := range []int{2, 7} {
			got, err := files(context.Background(), paths, workers)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(findingsText(serial), findingsText(got)); diff != "" {
				t.Errorf("%d workers (-serial +parallel):\n%s", workers, diff)
			}
		}
	}
	t.Run("mesh-200", func(t *testing.T) {
		same(t, faultyMesh(t, t.TempDir(), 200), 100)
	})
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() {
			t.Run(d.Name(), func(t *testing.T) {
				src, err := filepath.Abs(filepath.Join("testdata", d.Name()))
				if err != nil {
					t.Fatal(err)
				}
				same(t, copyCase(t, src), 0)
			})
		}
	}
}

func findingsText(fs diag.List) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintln(&b, f)
	}
	return b.String()
}
