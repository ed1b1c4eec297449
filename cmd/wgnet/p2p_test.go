package main

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCLIPointToPointSubnet: a /31 (RFC 3021) and a /127 (RFC 6164) overlay hold
// their two hosts, network address first; render gives each its address with
// the subnet's prefix and the other as its peer, and wgnet's check passes.
func TestCLIPointToPointSubnet(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init", "link", "--subnet", "10.9.0.0/31", "--subnet", "fd09::/127")
	mustCLI(t, dir, "add", "a", "--endpoint", "198.18.0.1:51820", "--route", "192.168.1.0/24")
	mustCLI(t, dir, "add", "b", "--endpoint", "198.18.0.2:51820", "--route", "192.168.2.0/24")
	mustCLI(t, dir, "render")
	cfgs := readConfigs(t, dir)
	got := map[string][]string{}
	for name, c := range cfgs {
		for _, a := range c.Interface.Addresses {
			got[name] = append(got[name], a.String())
		}
		if len(c.Peers) != 1 {
			t.Errorf("%s: %d peers, want 1", name, len(c.Peers))
		}
	}
	want := map[string][]string{
		"a": {"10.9.0.0/31", "fd09::/127"},
		"b": {"10.9.0.1/31", "fd09::1/127"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	// Each reaches the other's address and the LAN behind it.
	for name, other := range map[string]string{"a": "10.9.0.1", "b": "10.9.0.0"} {
		lan := map[string]string{"a": "192.168.2.1", "b": "192.168.1.1"}[name]
		for _, dst := range []string{other, lan} {
			found := false
			for _, p := range cfgs[name].Peers[0].AllowedIPs {
				found = found || p.Contains(netip.MustParseAddr(dst))
			}
			if !found {
				t.Errorf("%s: peer's AllowedIPs %v do not reach %s", name, cfgs[name].Peers[0].AllowedIPs, dst)
			}
		}
	}
	if _, errs, code := cli(t, dir, "check"); code != 0 {
		t.Errorf("check: exit %d: %s", code, errs)
	}
	// The `wg setconf` form (no Address) passes check too: b's route of the
	// whole /31 to a holds b's own address, which a routes back to b; that is
	// the overlay, not two subnets that overlap.
	mustCLI(t, dir, "render", "-o", "wg", "--out", "wgout")
	files, _ := filepath.Glob(filepath.Join(dir, "wgout", "*", "*.conf"))
	if len(files) != 2 {
		t.Fatalf("render -o wg wrote %v", files)
	}
	if out, errs, code := cli(t, dir, append([]string{"check"}, files...)...); code != 0 {
		t.Errorf("check of the render -o wg files: exit %d: %s%s", code, out, errs)
	}
}
