package lab

import (
	"fmt"
	"maps"
	"net/netip"
	"sort"

	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// FromSpec compiles s for the lab. Hosts whose private key the secrets lack (they
// keep their own key on the server) get a throw-away key, used consistently in
// every config; so do missing preshared keys. s and sec are not changed. The notes
// say which keys were made up.
func FromSpec(s *spec.Spec, sec spec.Secrets) ([]intent.Host, []string, error) {
	cp := *s
	cp.Hosts = append([]spec.Host(nil), s.Hosts...)
	sec2 := spec.Secrets{
		PrivateKeys:   maps.Clone(sec.PrivateKeys),
		PresharedKeys: maps.Clone(sec.PresharedKeys),
	}
	if sec2.PrivateKeys == nil {
		sec2.PrivateKeys = make(map[string]wgkey.Private)
	}
	if sec2.PresharedKeys == nil {
		sec2.PresharedKeys = make(map[spec.Pair]wgkey.Key)
	}
	var notes []string
	for i := range cp.Hosts {
		h := &cp.Hosts[i]
		if _, ok := sec2.PrivateKeys[h.Name]; ok {
			continue
		}
		k, err := wgkey.GeneratePrivate()
		if err != nil {
			return nil, nil, err
		}
		sec2.PrivateKeys[h.Name] = k
		h.PublicKey = wgkey.Key{} // derived from the throw-away key instead
		h.PrivateKeyFile = ""
		notes = append(notes, fmt.Sprintf("%s: no private key in the secrets; the lab uses a throw-away key for it", h.Name))
	}
	for _, p := range cp.PresharedKeys {
		if _, ok := sec2.PresharedKeys[p.Key()]; ok {
			continue
		}
		k, err := wgkey.GeneratePSK()
		if err != nil {
			return nil, nil, err
		}
		sec2.PresharedKeys[p.Key()] = k
		notes = append(notes, fmt.Sprintf("%s+%s: no preshared key in the secrets; the lab uses a throw-away one", p.Key()[0], p.Key()[1]))
	}
	hosts, err := compile.Compile(&cp, sec2)
	if err != nil {
		return nil, notes, fmt.Errorf("compile: %w", err)
	}
	return hosts, notes, nil
}

// Demo returns the built-in example network: three servers in three clouds, s1
// the hub of 192.168.100.0/24, each with a container subnet. Its keys are
// generated in memory and thrown away with the process.
func Demo() (*spec.Spec, spec.Secrets, error) {
	s := &spec.Spec{
		Version:  spec.Version,
		Network:  "demo",
		Subnets:  []netip.Prefix{netip.MustParsePrefix("192.168.100.0/24")},
		Topology: spec.TopologyHub,
		Hub:      "s1",
		Hosts: []spec.Host{
			demoHost("s1", "107.100.10.10:51820", "192.168.100.10", "10.0.4.0/24"),
			demoHost("s2", "34.90.20.20:51820", "192.168.100.11", "10.0.5.0/24"),
			demoHost("s3", "52.28.30.30:51820", "192.168.100.12", "10.0.7.0/24"),
		},
	}
	sec := spec.Secrets{PrivateKeys: make(map[string]wgkey.Private), PresharedKeys: make(map[spec.Pair]wgkey.Key)}
	for _, h := range s.Hosts {
		if err := addDemoKey(sec, h.Name); err != nil {
			return nil, sec, err
		}
	}
	return s, sec, nil
}

// DemoAddHost adds the demo's fourth server, s4 (192.168.100.13, 10.0.9.0/24), to
// s and its key to sec.
func DemoAddHost(s *spec.Spec, sec spec.Secrets) error {
	s.Hosts = append(s.Hosts, demoHost("s4", "20.50.40.40:51820", "192.168.100.13", "10.0.9.0/24"))
	sort.Slice(s.Hosts, func(i, j int) bool { return s.Hosts[i].Name < s.Hosts[j].Name })
	return addDemoKey(sec, "s4")
}

func demoHost(name, endpoint, addr, route string) spec.Host {
	return spec.Host{
		Name:      name,
		Endpoint:  endpoint,
		Addresses: []netip.Addr{netip.MustParseAddr(addr)},
		Routes:    []netip.Prefix{netip.MustParsePrefix(route)},
	}
}

func addDemoKey(sec spec.Secrets, host string) error {
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		return err
	}
	sec.PrivateKeys[host] = k
	return nil
}
