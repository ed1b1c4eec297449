package spec_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/wgnet/wgnet/internal/spec"
)

// A new network, two hosts, and the spec as saved. Addresses come from the
// overlay subnets, lowest free first; the first host of a hub network is its hub.
func ExampleInit() {
	dir, _ := os.MkdirTemp("", "wgnet-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "wgnet.yaml")

	d, err := spec.Init(path, spec.InitOptions{
		Network:  "prod",
		Subnets:  []netip.Prefix{netip.MustParsePrefix("192.168.100.0/24"), netip.MustParsePrefix("fd00:100::/64")},
		Topology: spec.TopologyHub,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := d.AddHost(spec.Host{Name: "s1", Endpoint: "107.100.10.10:51820", Routes: []netip.Prefix{netip.MustParsePrefix("10.0.4.0/24")}}); err != nil {
		fmt.Println(err)
	}
	if _, err := d.AddHost(spec.Host{Name: "s3", Keepalive: 25}); err != nil {
		fmt.Println(err)
	}
	if err := d.Save(); err != nil {
		fmt.Println(err)
	}
	b, _ := os.ReadFile(path)
	fmt.Print(string(b))
	// Output:
	// # WireGuard network "prod", managed by wgnet: edit it by hand or with
	// # `wgnet add/set/remove`, check it with `wgnet check`. Private keys are not
	// # kept here but in wgnet.secrets/ beside this file.
	// version: 1
	// network: prod
	// subnets: [192.168.100.0/24, fd00:100::/64]
	// topology: hub
	// hub: s1
	// hosts:
	//   - name: s1
	//     endpoint: 107.100.10.10:51820
	//     address: [192.168.100.1, fd00:100::1]
	//     routes: [10.0.4.0/24]
	//   - name: s3
	//     address: [192.168.100.2, fd00:100::2]
	//     keepalive: 25
}

// Check reports every error and warning with where it is, as `wgnet check` prints them.
func ExampleCheck() {
	src := []byte(`version: 1
network: prod
subnets: [192.168.100.0/24]
topology: mesh
hosts:
  - name: s1
    endpoint: 107.100.10.10
    address: 192.168.100.1
  - name: s2
    address: 192.168.100.2
`)
	_, errs, warns := spec.Check("wgnet.yaml", src)
	for _, p := range append(errs, warns...) {
		fmt.Printf("%s:%d: %s: %s: %s\n", p.File, p.Line, p.Severity, p.Code, p.Message)
	}
	// Output:
	// wgnet.yaml:7: error: spec-endpoint: hosts[0].endpoint "107.100.10.10": missing port
	// wgnet.yaml:9: warning: spec-keepalive-missing: hosts[1].endpoint: host s2 has no endpoint, so only it can start a handshake; if it is behind NAT, set keepalive: 25 to keep the NAT mapping open
}
