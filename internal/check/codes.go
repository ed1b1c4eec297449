package check

import (
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// Check codes. They are stable: scripts and CI filter on them. Never reuse or
// rename one; add a new code instead.
const (
	CodeSyntax           = wgconf.CodeSyntax
	CodeParseWarning     = wgconf.CodeParseWarning
	CodeDupKey           = "dup-key"
	CodeSelfPeer         = "self-peer"
	CodeDupPeer          = "dup-peer"
	CodeUnknownPeerKey   = "unknown-peer-key"
	CodePeerNotInSet     = "peer-not-in-set"
	CodeAsymmetricPeer   = "asymmetric-peer"
	CodePSKMismatch      = "psk-mismatch"
	CodeMissingPeer      = "missing-peer"
	CodeDupAllowedIP     = "dup-allowedip"
	CodeOverlapAllowedIP = "overlap-allowedip"
	CodeDupAddress       = "dup-address"
	CodeAddressNotRouted = "address-not-routed"
	CodeNoRoute          = "no-route"
	CodeRouteOverlap     = "route-overlap"
	CodeDockerOverlap    = "docker-overlap"
	CodeEndpointLoop     = "endpoint-loop"
	CodeNoEndpoint       = "no-endpoint"
	CodeEndpointPort     = "endpoint-port"
	CodeNoListenPort     = "no-listen-port"
	CodeHubNoForwarding  = "hub-no-forwarding"
	CodeDefaultRoute     = "default-route"
	CodeFullTunnel       = "full-tunnel"
	CodeKeepaliveNAT     = "keepalive-nat"
	CodeMTU              = "mtu"
	CodeWorldReadable    = "world-readable"
	CodeKeyHook          = "key-hook"
)

// Check describes one check.
type Check = diag.Code

// All returns every check (the parser's codes, then the network's), in
// documentation order: the entries of diag's table that wgconf and check report.
func All() []Check {
	var out []Check
	for _, c := range diag.Codes() {
		if c.By == "wgconf" || c.By == "check" {
			out = append(out, c)
		}
	}
	return out
}
