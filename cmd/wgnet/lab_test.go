package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// labJSON is the part of `lab -o json` the tests read.
type labJSON struct {
	Matrix struct {
		Probes []struct {
			From string `json:"from"`
			To   struct {
				Host string `json:"host"`
				Addr string `json:"addr"`
			} `json:"to"`
			OK        bool   `json:"ok"`
			Problem   bool   `json:"problem"`
			Why       string `json:"why"`
			NotProbed string `json:"not_probed"`
		} `json:"probes"`
	} `json:"matrix"`
	Problems int `json:"problems"`
}

func problemPairs(t *testing.T, out string) []string {
	t.Helper()
	var r labJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("lab -o json: %v\n%s", err, out)
	}
	var got []string
	for _, p := range r.Matrix.Probes {
		if p.Problem {
			got = append(got, p.From+" -> "+p.To.Addr)
		}
	}
	if len(got) != r.Problems {
		t.Errorf("problems = %d, but %d probes say problem", r.Problems, len(got))
	}
	slices.Sort(got)
	return got
}

func TestCLILabSpecAndConfigs(t *testing.T) {
	dir := threeHostSpec(t)
	out := mustCLI(t, dir, "lab")
	for _, want := range []string{"FROM \\ TO", "What this run does not prove"} {
		if !strings.Contains(out, want) {
			t.Errorf("lab output lacks %q:\n%s", want, out)
		}
	}
	mustCLI(t, dir, "render")
	confs := []string{"out/s1/wg0.conf", "out/s2/wg0.conf", "out/s3/wg0.conf"}
	out = mustCLI(t, dir, append([]string{"lab", "-o", "json"}, confs...)...)
	if diff := cmp.Diff([]string(nil), problemPairs(t, out)); diff != "" {
		t.Errorf("problems of the rendered configs (-want +got):\n%s", diff)
	}

	// The hub lists a wrong key for s3: exactly the pairs with s3 fail.
	hub := filepath.Join(dir, "out/s1/wg0.conf")
	src, err := os.ReadFile(hub)
	if err != nil {
		t.Fatal(err)
	}
	s3 := readConfigs(t, dir)["s1"].Peers[1]
	if s3.Name != "s3" {
		t.Fatalf("hub's second peer is %q, want s3", s3.Name)
	}
	k, _ := wgkey.GeneratePrivate()
	broken := strings.Replace(string(src), s3.PublicKey.String(), k.Public().String(), 1)
	if err := os.WriteFile(hub, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := cli(t, dir, append([]string{"lab", "-o", "json", "--timeout", "500ms"}, confs...)...)
	if code != 1 {
		t.Fatalf("lab with a wrong key: exit %d, want 1\n%s", code, errs)
	}
	want := []string{
		"s1 -> 10.0.7.1", "s1 -> 192.168.100.3",
		"s2 -> 10.0.7.1", "s2 -> 192.168.100.3",
		"s3 -> 10.0.4.1", "s3 -> 10.0.5.1", "s3 -> 192.168.100.1", "s3 -> 192.168.100.2",
	}
	if diff := cmp.Diff(want, problemPairs(t, out)); diff != "" {
		t.Errorf("failing pairs (-want +got):\n%s", diff)
	}
	// In text, the same pairs, each with a reason.
	out, _, code = cli(t, dir, append([]string{"lab", "--timeout", "500ms"}, confs...)...)
	if code != 1 || !strings.Contains(out, "8 of 12 pairs are not as intended") ||
		!strings.Contains(out, "s1 can't reach s3 192.168.100.3: s1 sends 192.168.100.3 to peer s3, whose public key") {
		t.Errorf("lab text output, exit %d:\n%s", code, out)
	}
}

func TestCLIDemo(t *testing.T) {
	out := mustCLI(t, t.TempDir(), "demo")
	for _, want := range []string{
		"s1: peer s4: add peer",
		"s2: peer s1: +allowed ip 10.0.9.0/24",
		"4 of 4 kept",
		"PrivateKey = (generated in memory, not shown)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("demo has failures:\n%s", out)
	}
	var r struct {
		Problems int `json:"problems"`
		Sessions []struct {
			Kept bool `json:"kept"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, t.TempDir(), "demo", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Problems != 0 || len(r.Sessions) != 4 {
		t.Errorf("demo -o json: %+v", r)
	}
}

// cleanLab runs `lab -o json` in dir, which must exit 0, and returns what it
// printed.
func cleanLab(t *testing.T, dir string) labJSON {
	t.Helper()
	out, errs, code := cli(t, dir, "lab", "-o", "json")
	if code != 0 {
		t.Fatalf("lab -o json: exit %d, want 0\n%s\n%s", code, errs, out)
	}
	var r labJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCLILabAddresslessHost: the imported dsnet fleet's server has no address
// in its file (assign_address: false: dsnet assigns it outside the files).
// lab sends nothing from it by overlay address and says so ("not probed: no
// overlay address", in text and json) instead of failing those probes; every
// probe it does send passes (the spokes reach the server's LAN and each other
// through it), and the exit code is 0.
func TestCLILabAddresslessHost(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, append([]string{"import"}, corpusCopy(t, "dsnet", nil)...)...)
	if b, _ := os.ReadFile(filepath.Join(dir, "wgnet.yaml")); !strings.Contains(string(b), "assign_address: false") {
		t.Fatalf("the import has no address-less host:\n%s", b)
	}
	r := cleanLab(t, dir)
	skipped, sent := 0, 0
	for _, p := range r.Matrix.Probes {
		switch {
		case p.NotProbed != "":
			skipped++
			if p.From != "dsnet" || p.NotProbed != "no overlay address" || p.Problem {
				t.Errorf("not probed: %+v; want only from dsnet, no overlay address, no problem", p)
			}
		default:
			sent++
			if !p.OK || p.Problem {
				t.Errorf("probe %s -> %s %s: ok %v problem %v (%s)", p.From, p.To.Host, p.To.Addr, p.OK, p.Problem, p.Why)
			}
			if p.From == "dsnet" {
				t.Errorf("probe sent from dsnet, which has no overlay address: %+v", p)
			}
		}
	}
	// dsnet to each of 3 clients' 2 addresses; 3 clients to dsnet's LAN and
	// to the 2 other clients' 2 addresses each.
	if skipped != 6 || sent != 15 || r.Problems != 0 {
		t.Errorf("%d not probed, %d sent, %d problems; want 6, 15, 0", skipped, sent, r.Problems)
	}
	out, _, code := cli(t, dir, "lab")
	if code != 0 || strings.Count(out, "not probed: no overlay address") != 6 || strings.Contains(out, "FAIL") ||
		strings.Contains(out, "not as intended") {
		t.Errorf("lab text, exit %d:\n%s", code, out)
	}
}

// TestCLILabOneFamilyHost: a dual-stack mesh where s2 has an IPv4 overlay
// address only (its spec edited). lab sends nothing from s2 to IPv6
// addresses and says so ("not probed: no IPv6 overlay address", in text and
// json), every probe it sends passes, exit 0. The same network from its
// rendered files, with s3's IPv4 address taken out of s1's AllowedIPs for
// it, still fails that pair, exit 1, with s2's probes still not probed.
func TestCLILabOneFamilyHost(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init", "dual", "--subnet", "192.168.100.0/24", "--subnet", "fd00:100::/64", "--topology", "mesh")
	for i, h := range []string{"s1", "s2", "s3"} {
		mustCLI(t, dir, "add", h, "--endpoint", fmt.Sprintf("198.18.0.%d:51820", i+1))
	}
	path := filepath.Join(dir, "wgnet.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const dual, v4 = "address: [192.168.100.2, fd00:100::2]", "address: [192.168.100.2]"
	if !strings.Contains(string(b), dual) {
		t.Fatalf("s2 is not at %q:\n%s", dual, b)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), dual, v4, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cleanLab(t, dir)
	var skipped []string
	for _, p := range r.Matrix.Probes {
		if p.NotProbed != "" {
			skipped = append(skipped, p.From+" -> "+p.To.Addr+": "+p.NotProbed)
		} else if !p.OK || p.Problem {
			t.Errorf("probe %s -> %s %s: ok %v problem %v (%s)", p.From, p.To.Host, p.To.Addr, p.OK, p.Problem, p.Why)
		}
	}
	want := []string{"s2 -> fd00:100::1: no IPv6 overlay address", "s2 -> fd00:100::3: no IPv6 overlay address"}
	if diff := cmp.Diff(want, skipped); diff != "" || r.Problems != 0 {
		t.Errorf("%d problems; not probed (-want +got):\n%s", r.Problems, diff)
	}
	out, _, code := cli(t, dir, "lab")
	if code != 0 || strings.Count(out, "not probed: no IPv6 overlay address") != 2 || strings.Contains(out, "FAIL") {
		t.Errorf("lab text, exit %d, want 0 and 2 not probed:\n%s", code, out)
	}

	mustCLI(t, dir, "render")
	s1 := filepath.Join(dir, "out", "s1", "wg0.conf")
	b, err = os.ReadFile(s1)
	if err != nil {
		t.Fatal(err)
	}
	const peer = "AllowedIPs = 192.168.100.3/32, fd00:100::3/128"
	if !strings.Contains(string(b), peer) {
		t.Fatalf("s1's file has no %q:\n%s", peer, b)
	}
	if err := os.WriteFile(s1, []byte(strings.Replace(string(b), peer, "AllowedIPs = fd00:100::3/128", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []string{s1, filepath.Join(dir, "out", "s2", "wg0.conf"), filepath.Join(dir, "out", "s3", "wg0.conf")}
	out, _, code = cli(t, dir, append([]string{"lab", "-o", "json"}, files...)...)
	if code != 1 {
		t.Errorf("lab of the broken files: exit %d, want 1\n%s", code, out)
	}
	if got, want := problemPairs(t, out), []string{"s1 -> 192.168.100.3", "s3 -> 192.168.100.1"}; !slices.Equal(got, want) {
		t.Errorf("problems %v, want %v", got, want)
	}
	out, _, _ = cli(t, dir, append([]string{"lab"}, files...)...)
	if strings.Count(out, "not probed: no IPv6 overlay address") != 2 || !strings.Contains(out, "FAIL") {
		t.Errorf("lab text of the broken files: want 2 not probed and a FAIL:\n%s", out)
	}
}
