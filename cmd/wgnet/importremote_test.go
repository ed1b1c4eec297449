package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/spec"
)

// TestImportToController adopts a rendered hub network (with a routed subnet,
// a NATed host and a preshared key) into a controller: the controller lists
// every host with the public key, addresses, endpoint, routes and keepalive it
// had, the hub is the hub, what a controller can't carry is noted, and no
// private or preshared key is anywhere in the controller's data directory. A
// second import into the same name is refused and leaves the first alone.
func TestImportToController(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	url, hash, token := startControllerAt(t, data)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	remote := []string{"--controller", url, "--ca-hash", hash, "--token-file", tokenFile}

	mustCLI(t, dir, "init", "fleet", "--subnet", "10.70.0.0/24")
	mustCLI(t, dir, "add", "hub", "--endpoint", "198.18.7.1:51820")
	mustCLI(t, dir, "add", "s1", "--endpoint", "198.18.7.2:51820", "--route", "172.30.1.0/24")
	mustCLI(t, dir, "add", "s2", "--keepalive", "25", "--mtu", "1380", "--dns", "10.70.0.1", "--table", "off", "--fwmark", "0x20")
	mustCLI(t, dir, "set", "s2", "--preshared-with", "hub")
	mustCLI(t, dir, "add", "s3", "--keepalive", "25", "--full-tunnel", "0.0.0.0/0", "--listen-port", "51999")
	mustCLI(t, dir, "render", "--out", "out")
	sp, err := spec.Load(filepath.Join(dir, "wgnet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	secrets, _, err := spec.LoadSecrets(spec.SecretsDir(filepath.Join(dir, "wgnet.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"out/hub/wg0.conf", "out/s1/wg0.conf", "out/s2/wg0.conf", "out/s3/wg0.conf"}

	stdout, stderr, code := cli(t, dir, append(append([]string{"import", "--network", "fleet"}, remote...), files...)...)
	if code != 0 {
		t.Fatalf("import --controller: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("import --controller:\n%s%s", stdout, stderr)
	if !strings.Contains(stdout, "adopted 4 hosts (hub) into network fleet") || !strings.Contains(stderr, "preshared keys not carried") {
		t.Errorf("import said:\n%s%s", stdout, stderr)
	}
	// What the controller can't keep is listed, and only that: the host's
	// own settings (MTU, DNS, Table, FwMark, full tunnel) are kept.
	var notCarried []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.Contains(l, "not carried") {
			notCarried = append(notCarried, l)
		}
	}
	if len(notCarried) != 2 || !strings.Contains(stderr, "host s3: not carried: listen port 51999") {
		t.Errorf("not carried: %q, want the preshared keys and s3's listen port", notCarried)
	}

	var listed struct {
		Hosts []struct {
			Name      string   `json:"name"`
			PublicKey string   `json:"public_key"`
			Addresses []string `json:"addresses"`
			Endpoint  string   `json:"endpoint"`
			Routes    []string `json:"routes"`
			Keepalive int      `json:"keepalive"`
			Hub       bool     `json:"hub"`
			MTU       string   `json:"mtu"`
			DNS       []string `json:"dns"`
			Table     string   `json:"table"`
			FwMark    uint32   `json:"fwmark"`
			Full      []string `json:"full_tunnel"`
		} `json:"hosts"`
	}
	out := mustCLI(t, dir, append([]string{"list", "-o", "json", "--network", "fleet"}, remote...)...)
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(listed.Hosts) != len(sp.Hosts) {
		t.Fatalf("controller lists %d hosts, spec has %d", len(listed.Hosts), len(sp.Hosts))
	}
	for _, got := range listed.Hosts {
		want, ok := sp.HostByName(got.Name)
		if !ok {
			t.Errorf("controller has %s, spec doesn't", got.Name)
			continue
		}
		key := secrets.PrivateKeys[want.Name].Public().String()
		wantAddrs := strs(want.Addresses)
		wantRoutes := strs(want.Routes)
		if got.PublicKey != key || !slices.Equal(got.Addresses, wantAddrs) || got.Endpoint != want.Endpoint ||
			!slices.Equal(got.Routes, wantRoutes) && len(got.Routes)+len(wantRoutes) > 0 || got.Keepalive != want.Keepalive ||
			got.Hub != (want.Name == sp.Hub) {
			t.Errorf("%s on the controller: %+v; in the spec: key %s addresses %v endpoint %q routes %v keepalive %d hub %v",
				got.Name, got, key, wantAddrs, want.Endpoint, wantRoutes, want.Keepalive, want.Name == sp.Hub)
		}
	}

	for _, got := range listed.Hosts {
		want, _ := sp.HostByName(got.Name)
		mtu := ""
		if want.MTU > 0 {
			mtu = fmt.Sprint(want.MTU)
		}
		if got.MTU != mtu || strings.Join(got.DNS, ",") != strings.Join(want.DNS, ",") || got.Table != want.Table || got.FwMark != want.FwMark ||
			strings.Join(got.Full, ",") != strings.Join(strs(want.FullTunnel), ",") {
			t.Errorf("%s's settings on the controller: %+v; in the spec: mtu %d dns %v table %q fwmark %#x full tunnel %v",
				got.Name, got, want.MTU, want.DNS, want.Table, want.FwMark, want.FullTunnel)
		}
	}
	if len(listed.Hosts) == 4 && (listed.Hosts[2].FwMark != 0x20 || len(listed.Hosts[3].Full) != 1) {
		t.Errorf("s2 and s3 on the controller: %+v %+v", listed.Hosts[2], listed.Hosts[3])
	}

	// No secret in anything the controller stored.
	var secretsText []string
	for _, k := range secrets.PrivateKeys {
		secretsText = append(secretsText, k.String())
	}
	for _, k := range secrets.PresharedKeys {
		secretsText = append(secretsText, k.String())
	}
	filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			return nil
		}
		for _, s := range secretsText {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds a private or preshared key", p)
			}
		}
		return nil
	})

	if _, errs, code := cli(t, dir, append(append([]string{"import", "--network", "fleet"}, remote...), files...)...); code == 0 || !strings.Contains(errs, "fleet") {
		t.Errorf("second import into fleet: exit %d, %s", code, errs)
	}
	if out := mustCLI(t, dir, append([]string{"list", "--network", "fleet"}, remote...)...); strings.Count(out, "10.70.0.") != 4 {
		t.Errorf("after the refused import:\n%s", out)
	}
}
