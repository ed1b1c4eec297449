// Package compile turns a spec into every host's WireGuard configuration. It is a
// pure function of its inputs: no I/O, no clock, no randomness; output is sorted
// and deterministic. It imports spec, wgconf and wgkey; nothing below the command,
// lab and data-plane layers imports it.
package compile

import (
	"errors"
	"net/netip"

	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// HostConfig is one host's compiled configuration and why it looks that way.
type HostConfig struct {
	Host   string
	Config *wgconf.Config
	// ForwardV4/ForwardV6 say the host must forward packets (hub, or routes subnets);
	// the config's PostUp already carries the sysctls that turn it on.
	ForwardV4, ForwardV6 bool
	// Routes are the subnets routed behind this host (from the spec).
	Routes []netip.Prefix
}

// Compile returns every host's config, sorted by host name. The spec must have
// passed spec validation; Compile still refuses what it cannot compile.
func Compile(s *spec.Spec, sec spec.Secrets) ([]HostConfig, error) {
	return nil, errors.New("not implemented yet")
}
