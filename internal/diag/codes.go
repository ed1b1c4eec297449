package diag

// Code describes one kind of diagnostic.
type Code struct {
	Code     string
	Severity Severity
	// By is the package that reports it: wgconf, check, spec, policy, importer, live or controller.
	By      string
	Summary string // one line, as in docs/checks.md
}

// Codes returns every code wgnet reports, in the order of docs/checks.md; a test
// keeps that file in step with it. Never reuse or rename a code: add a new one.
func Codes() []Code { return append([]Code(nil), codes...) }

// Lookup returns the table's entry for code.
func Lookup(code string) (Code, bool) {
	c, ok := byCode[code]
	return c, ok
}

var byCode = func() map[string]Code {
	m := make(map[string]Code, len(codes))
	for _, c := range codes {
		m[c.Code] = c
	}
	return m
}()

// codes is the table: every code wgnet reports, grouped by the package that
// reports it, in the order of docs/checks.md.
var codes = []Code{
	// wgconf: the parser.
	{"syntax", Error, "wgconf", "the file is not a valid wg-quick config (the parser's error, at its line)"},
	{"parse-warning", Warning, "wgconf", "the parser accepted a line wg would only warn about (e.g. host bits set in AllowedIPs)"},

	// check: a set of wg-quick configs as one network.
	{"dup-key", Error, "check", "two hosts hold the same private key"},
	{"self-peer", Error, "check", "a peer has the host's own public key; wg ignores it"},
	{"dup-peer", Error, "check", "two [Peer] sections of one config have the same public key; wg makes them one peer"},
	{"unknown-peer-key", Error, "check", "a peer's public key is held by no host, but the peer is evidently meant to be one of them (by name, endpoint or address)"},
	{"peer-not-in-set", Warning, "check", "a peer's public key is held by no host and nothing points to one: its config is not in the set, so it was not cross-checked"},
	{"asymmetric-peer", Error, "check", "A lists B as a peer but B does not list A: B drops A's handshakes"},
	{"psk-mismatch", Error, "check", "A and B use different preshared keys for each other (or only one side has one)"},
	{"missing-peer", Error, "check", "with an explicit topology: two hosts that must peer (mesh: every pair; hub: hub and spoke) do not"},
	{"dup-allowedip", Error, "check", "the same prefix on two peers of one config: the last one set wins silently"},
	{"overlap-allowedip", Warning, "check", "overlapping, different prefixes on two peers of one config: the longest prefix wins"},
	{"dup-address", Error, "check", "the same overlay address on two hosts"},
	{"address-not-routed", Error, "check", "a host's address does not route to that host's peer in a config that peers with it"},
	{"no-route", Warning, "check", "a host has no route at all to another host's address (neither a peer for it nor a relay)"},
	{"route-overlap", Error, "check", "subnets routed to different hosts overlap each other or the overlay subnet"},
	{"docker-overlap", Warning, "check", "an overlay or routed subnet overlaps Docker's default bridge 172.17.0.0/16"},
	{"endpoint-loop", Error, "check", "a peer's AllowedIPs cover an Endpoint of the same config: the tunnel's own packets route into it"},
	{"no-endpoint", Error, "check", "two hosts peer with each other but neither has an Endpoint for the other"},
	{"endpoint-port", Error, "check", "a peer's Endpoint port is not the ListenPort of the host with that public key"},
	{"no-listen-port", Warning, "check", "a host others dial has no ListenPort: wg picks a random one each start"},
	{"hub-no-forwarding", Warning, "check", "a host that relays or routes subnets does not enable IP forwarding in its PreUp/PostUp (it may be on outside the file: confirm on the host)"},
	{"default-route", Warning, "check", "0.0.0.0/0 or ::/0 in a peer's AllowedIPs on a host others dial: SSH to it may be cut off"},
	{"full-tunnel", Warning, "check", "a client sends all its traffic through one peer (0.0.0.0/0 or ::/0, Table auto): that peer must forward and masquerade it"},
	{"keepalive-nat", Warning, "check", "a host nobody can dial (behind NAT) has no PersistentKeepalive towards the peers it dials"},
	{"mtu", Warning, "check", "MTU above 1420 (needs a 1500+ underlay on every path), or different MTUs on different hosts"},
	{"world-readable", Warning, "check", "the config file is readable by group or others; it holds a private key"},
	{"key-hook", Warning, "check", "a hook loads a private key other than as the plain PostUp `wg set %i private-key PATH` with a plain-data PATH"},

	// spec: the spec file, then the spec against its secrets.
	{"spec-yaml", Error, "spec", "not readable YAML, or not one document"},
	{"spec-empty", Error, "spec", "the file is empty"},
	{"spec-unknown-key", Error, "spec", "a key wgnet does not know (typo?)"},
	{"spec-duplicate-key", Error, "spec", "a key given twice in one mapping"},
	{"spec-type", Error, "spec", "wrong YAML type (list for a string...)"},
	{"spec-alias", Error, "spec", "YAML anchors/aliases/tags are not supported"},
	{"spec-version", Error, "spec", "missing, or a version this wgnet does not read"},
	{"spec-network", Error, "spec", "missing or invalid network name"},
	{"spec-subnet", Error, "spec", "missing, invalid, host bits set, too small"},
	{"spec-subnet-family", Error, "spec", "more than one subnet of a family"},
	{"spec-interface", Error, "spec", "not a valid interface name"},
	{"spec-port", Error, "spec", "listen_port not 1-65535"},
	{"spec-mtu", Error, "spec", "mtu out of range (or < 1280 with IPv6)"},
	{"spec-topology", Error, "spec", "not hub or mesh"},
	{"spec-hub", Error, "spec", "hub missing, unknown or given for mesh"},
	{"spec-host-name", Error, "spec", "missing or invalid host name"},
	{"spec-host-duplicate", Error, "spec", "two hosts with the same name"},
	{"spec-endpoint", Error, "spec", "endpoint syntax"},
	{"spec-address", Error, "spec", "invalid, outside the subnets, reserved"},
	{"spec-address-family", Error, "spec", "two addresses of one family"},
	{"spec-address-missing", Error, "spec", "a host without an overlay address"},
	{"spec-address-duplicate", Error, "spec", "two hosts with the same overlay address"},
	{"spec-route", Error, "spec", "invalid or host bits set"},
	{"spec-route-overlap", Error, "spec", "overlaps another route or an overlay subnet"},
	{"spec-keepalive", Error, "spec", "not 0-65535"},
	{"spec-public-key", Error, "spec", "invalid or all-zero"},
	{"spec-public-key-duplicate", Error, "spec", "two hosts with the same public key"},
	{"spec-public-key-missing", Error, "spec", "private_key_file without public_key"},
	{"spec-private-key-file", Error, "spec", "not an absolute path"},
	{"spec-underlay-mtu", Error, "spec", "underlay_mtu out of range"},
	{"spec-hook", Error, "spec", "empty or multi-line hook command"},
	{"spec-host-firewall", Error, "spec", "host_firewall not auto, docker, iptables or off"},
	{"spec-dns", Error, "spec", "a dns entry that is no IP address or domain name"},
	{"spec-table", Error, "spec", "a table that is not off, auto, main, a number or an rt_tables name"},
	{"spec-fwmark", Error, "spec", "a fwmark that is no 32-bit number"},
	{"spec-full-tunnel", Error, "spec", "full_tunnel that is not 0.0.0.0/0 or ::/0, or not on a spoke of a hub"},
	{"spec-psk-pair", Error, "spec", "a preshared pair that names an unknown host, or one host twice"},
	{"spec-policy-default", Error, "spec", "policy default is not allow or deny"},
	{"spec-policy-group", Error, "spec", "a policy group with a bad name, or a member that is no host, tag:TAG, name pattern or prefix"},
	{"spec-policy-rule", Error, "spec", "a policy rule that does not parse, or names no group or host"},
	{"spec-policy-tag", Error, "spec", "a host tag that is not a valid name"},
	{"spec-docker-overlap", Warning, "spec", "overlaps Docker's 172.17.0.0/16"},
	{"spec-endpoint-listen-port", Warning, "spec", "endpoint port is not the listen port"},
	{"spec-keepalive-missing", Warning, "spec", "no endpoint and no keepalive"},
	{"spec-unreachable", Warning, "spec", "two hosts that must peer have no endpoint"},
	{"spec-mtu-underlay", Warning, "spec", "mtu above smallest underlay_mtu - 80"},
	{"spec-address-family-absent", Warning, "spec", "no address in one overlay family"},
	{"spec-route-endpoint", Warning, "spec", "a route covers a host's endpoint"},
	{"spec-psk-not-peers", Warning, "spec", "preshared key for hosts that don't peer"},
	{"spec-key-mismatch", Error, "spec", "private key does not match public_key"},
	{"spec-key-missing", Error, "spec", "no public_key and no private key"},
	{"spec-psk-missing", Error, "spec", "a preshared pair without a key"},
	{"spec-secret-unused", Warning, "spec", "a key for no host or pair of the spec"},
	{"secrets-mode", Warning, "spec", "a key file or the secrets directory is readable by group or others"},

	// policy: the spec's segmentation policy against its hosts.
	{"policy-empty", Warning, "policy", "a rule side or group member (tag, name pattern) that names no host or address: the rule matches nothing"},
	{"policy-shadowed", Warning, "policy", "a rule no packet reaches: earlier rules decide every packet it matches"},
	{"policy-conflict", Warning, "policy", "a host in two groups (or tags, patterns) whose rules give different verdicts for the same protocol and port: the earlier rule decides"},
	{"policy-unreachable", Warning, "policy", "a host to which no rule lets any other host send anything"},

	// importer: what import could not carry over.
	{"import-note", Warning, "importer", "a line import could not carry over, or a guess it had to make"},

	// live: `check --live`, a running host against wgnet's record of it.
	{"live-forwarding", Error, "live", "IPv4 forwarding off on the tunnel or on the interface in front of a routed subnet (the input interface decides), or IPv6 forwarding off"},
	{"live-rp-filter", Error, "live", "strict rp_filter on the tunnel while an AllowedIPs prefix does not route back into it: replies from there are dropped"},
	{"live-forward-drop", Error, "live", "a forward chain with policy drop (Docker, ufw, firewalld) accepts nothing from the tunnel"},
	{"live-docker-raw-drop", Error, "live", "a raw-table PREROUTING drop (Docker 28+) of packets to a routed subnet arriving from the tunnel"},
	{"live-docker-masquerade", Warning, "live", "traffic from a routed subnet into the tunnel is masqueraded: peers see the host's address"},
	{"live-route", Error, "live", "a route wgnet added for AllowedIPs is gone, or another route wins for its prefix"},
	{"live-endpoint-loop", Error, "live", "the route to a peer's endpoint goes into the tunnel itself"},
	{"live-endpoint-route", Error, "live", "no route to a peer's endpoint"},
	{"live-mtu", Error, "live", "a DF-set packet of the tunnel's MTU does not reach a peer that answers small ones, or the route to its endpoint is too small"},
	{"live-handshake", Error, "live", "a peer with keepalives or traffic has no handshake in 3 minutes, or never had one"},
	{"live-handshake-key", Error, "live", "a peer's last handshake is older than the host's last key change"},
	{"live-endpoint-dns", Warning, "live", "an endpoint given as a host name now resolves elsewhere than where the device sends, or not at all"},
	{"live-unreadable", Warning, "live", "something check --live needed could not be read, or was probed only in part"},

	// controller: check --controller, what its agents will refuse.
	{"agent-public-route", Warning, "controller", "a network subnet or routed subnet in public address space: agents that did not join with --allow public-routes (or full-tunnel) refuse the network's states (a subnet) or do not route it (a routed subnet)"},
}
