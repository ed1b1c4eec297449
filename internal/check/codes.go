package check

// Check codes. They are stable: scripts and CI filter on them. Never reuse or
// rename one; add a new code instead.
const (
	CodeSyntax           = "syntax"
	CodeParseWarning     = "parse-warning"
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
	CodeKeepaliveNAT     = "keepalive-nat"
	CodeMTU              = "mtu"
	CodeWorldReadable    = "world-readable"
	CodeKeyHook          = "key-hook"
)

// Check describes one check.
type Check struct {
	Code     string
	Severity Severity
	Summary  string
}

// checks is the table behind All, in the order of the package documentation.
var checks = []Check{
	{CodeSyntax, Error, "the file is not a valid wg-quick config (the parser's error, at its line)"},
	{CodeParseWarning, Warning, "the parser accepted a line wg would only warn about (e.g. host bits set in AllowedIPs)"},
	{CodeDupKey, Error, "two hosts hold the same private key"},
	{CodeSelfPeer, Error, "a peer has the host's own public key; wg ignores it"},
	{CodeDupPeer, Error, "two [Peer] sections of one config have the same public key; wg makes them one peer"},
	{CodeUnknownPeerKey, Error, "a peer's public key is held by no host, but the peer is evidently meant to be one of them (by name, endpoint or address)"},
	{CodePeerNotInSet, Warning, "a peer's public key is held by no host and nothing points to one: its config is not in the set, so it was not cross-checked"},
	{CodeAsymmetricPeer, Error, "A lists B as a peer but B does not list A: B drops A's handshakes"},
	{CodePSKMismatch, Error, "A and B use different preshared keys for each other (or only one side has one)"},
	{CodeMissingPeer, Error, "with an explicit topology: two hosts that must peer (mesh: every pair; hub: hub and spoke) do not"},
	{CodeDupAllowedIP, Error, "the same prefix on two peers of one config: the last one set wins silently"},
	{CodeOverlapAllowedIP, Warning, "overlapping, different prefixes on two peers of one config: the longest prefix wins"},
	{CodeDupAddress, Error, "the same overlay address on two hosts"},
	{CodeAddressNotRouted, Error, "a host's address does not route to that host's peer in a config that peers with it"},
	{CodeNoRoute, Warning, "a host has no route at all to another host's address (neither a peer for it nor a relay)"},
	{CodeRouteOverlap, Error, "subnets routed to different hosts overlap each other or the overlay subnet"},
	{CodeDockerOverlap, Warning, "an overlay or routed subnet overlaps Docker's default bridge 172.17.0.0/16"},
	{CodeEndpointLoop, Error, "a peer's AllowedIPs cover an Endpoint of the same config: the tunnel's own packets route into it"},
	{CodeNoEndpoint, Error, "two hosts peer with each other but neither has an Endpoint for the other"},
	{CodeEndpointPort, Error, "a peer's Endpoint port is not the ListenPort of the host with that public key"},
	{CodeNoListenPort, Warning, "a host others dial has no ListenPort: wg picks a random one each start"},
	{CodeHubNoForwarding, Error, "a host that relays or routes subnets does not enable IP forwarding in its PreUp/PostUp"},
	{CodeDefaultRoute, Warning, "0.0.0.0/0 or ::/0 in a peer's AllowedIPs on a host others dial: SSH to it may be cut off"},
	{CodeKeepaliveNAT, Warning, "a host nobody can dial (behind NAT) has no PersistentKeepalive towards the peers it dials"},
	{CodeMTU, Warning, "MTU above 1420 (needs a 1500+ underlay on every path), or different MTUs on different hosts"},
	{CodeWorldReadable, Warning, "the config file is readable by group or others; it holds a private key"},
	{CodeKeyHook, Warning, "a hook loads a private key other than as the plain PostUp `wg set %i private-key PATH` with a plain-data PATH"},
}

var severityOf = func() map[string]Severity {
	m := make(map[string]Severity, len(checks))
	for _, c := range checks {
		m[c.Code] = c.Severity
	}
	return m
}()

// All returns every check, in documentation order.
func All() []Check {
	return append([]Check(nil), checks...)
}
