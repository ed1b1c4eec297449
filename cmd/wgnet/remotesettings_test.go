package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/wgkey"
)

// TestCLIControllerSettings: add and set take a host's own settings with
// --controller (--mtu, --dns, --table, --fwmark, --full-tunnel, --external,
// --no-address/--assign-address, --listen-port random), list -o json shows
// them, and a bad value is refused as it is on a spec file, in the same
// words.
func TestCLIControllerSettings(t *testing.T) {
	remote := startController(t)
	dir := t.TempDir()
	on := func(args ...string) []string { return append(append(args, remote...), "--network", "demo") }
	mustCLI(t, dir, append([]string{"network", "create", "demo", "--subnet", "10.61.0.0/24", "--topology", "hub"}, remote...)...)
	var keys []string
	for range 4 {
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.Public().String())
	}
	mustCLI(t, dir, on("add", "hub", "--public-key", keys[0], "--endpoint", "198.18.61.1:51820")...)
	mustCLI(t, dir, on("add", "s1", "--public-key", keys[1], "--mtu", "1380", "--dns", "10.61.0.1", "--dns", "corp.example",
		"--table", "off", "--fwmark", "0xffffffff", "--full-tunnel", "0.0.0.0/0", "--listen-port", "random")...)
	mustCLI(t, dir, on("add", "vpn", "--public-key", keys[2], "--endpoint", "198.18.61.9:51820", "--external")...)
	mustCLI(t, dir, on("add", "s2", "--public-key", keys[3], "--no-address", "--mtu", "auto")...)
	type host struct {
		Name       string   `json:"name"`
		MTU        string   `json:"mtu"`
		DNS        []string `json:"dns"`
		Table      string   `json:"table"`
		FwMark     uint32   `json:"fwmark"`
		FullTunnel []string `json:"full_tunnel"`
		External   bool     `json:"external"`
		NoAddress  bool     `json:"no_address"`
		RandomPort bool     `json:"random_port"`
	}
	list := func() map[string]host {
		t.Helper()
		var l struct{ Hosts []host }
		if err := json.Unmarshal([]byte(mustCLI(t, dir, on("list", "-o", "json")...)), &l); err != nil {
			t.Fatal(err)
		}
		m := map[string]host{}
		for _, h := range l.Hosts {
			m[h.Name] = h
		}
		return m
	}
	hs := list()
	if s1 := hs["s1"]; s1.MTU != "1380" || strings.Join(s1.DNS, ",") != "10.61.0.1,corp.example" || s1.Table != "off" || s1.FwMark != 0xffffffff ||
		strings.Join(s1.FullTunnel, ",") != "0.0.0.0/0" || !s1.RandomPort {
		t.Errorf("s1 on the controller: %+v", s1)
	}
	if !hs["vpn"].External || !hs["s2"].NoAddress || hs["s2"].MTU != "auto" {
		t.Errorf("vpn %+v, s2 %+v", hs["vpn"], hs["s2"])
	}
	if out := mustCLI(t, dir, on("list")...); !strings.Contains(out, "spoke (external)") {
		t.Errorf("list does not say vpn is external:\n%s", out)
	}
	mustCLI(t, dir, on("set", "s1", "--mtu", "", "--dns", "", "--table", "", "--fwmark", "", "--full-tunnel", "", "--listen-port", "51820")...)
	mustCLI(t, dir, on("set", "s2", "--assign-address")...)
	hs = list()
	if s1 := hs["s1"]; !reflect.DeepEqual(s1, host{Name: "s1"}) || hs["s2"].NoAddress {
		t.Errorf("after set: s1 %+v, s2 %+v", s1, hs["s2"])
	}
	if out := mustCLI(t, dir, on("check")...); strings.Contains(out, "error") {
		t.Errorf("check: %s", out)
	}

	// The same bad values on a spec file and on the controller: the same words.
	mustCLI(t, dir, "init", "demo", "--subnet", "10.61.0.0/24", "--topology", "hub")
	mustCLI(t, dir, "add", "hub", "--endpoint", "198.18.61.1:51820")
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--mtu", "abc"}, `"abc": must be a number (576-9216) or auto`},
		{[]string{"--mtu", "100"}, "100: must be 576-9216, or auto"},
		{[]string{"--fwmark", "0x1ffffffff"}, `"0x1ffffffff": must be a number, decimal or 0x hex, below 2^32 (or off)`},
		{[]string{"--table", "bad table"}, `"bad table": must be off, auto, main, a table number or a name from rt_tables`},
		{[]string{"--dns", "a b"}, `"a b": must be an IP address (a resolver) or a domain name (a search domain)`},
		{[]string{"--full-tunnel", "10.0.0.0/8"}, `"10.0.0.0/8": must be a default route, 0.0.0.0/0 or ::/0`},
		{[]string{"--endpoint", "198.18.61.5:51820", "--listen-port", "random"}, `"random": the others dial s5 at its endpoint 198.18.61.5:51820, so it needs a fixed port`},
	} {
		k, _ := wgkey.GeneratePrivate()
		_, specErr, specCode := cli(t, dir, append([]string{"add", "s5", "--public-key", k.Public().String()}, c.flags...)...)
		_, ctlErr, ctlCode := cli(t, dir, on(append([]string{"add", "s5", "--public-key", k.Public().String()}, c.flags...)...)...)
		if specCode == 0 || ctlCode == 0 || !strings.Contains(specErr, c.want) || !strings.Contains(ctlErr, c.want) {
			t.Errorf("add %v: on the spec exit %d %q; on the controller exit %d %q; want both to say %q", c.flags, specCode, specErr, ctlCode, ctlErr, c.want)
		}
	}
	for _, bad := range [][]string{
		on("add", "s6", "--public-key", keys[0], "--listen-port", "5000"), // a port of its own is not kept
		on("set", "s2", "--no-address", "--assign-address"),
	} {
		if _, errs, code := cli(t, dir, bad...); code != 2 {
			t.Errorf("wgnet %s: exit %d, want 2 (%s)", strings.Join(bad, " "), code, errs)
		}
	}
}
