// Package check owns `wgnet check`: it lints a whole WireGuard network, the
// wg-quick configs of every host read together, and reports each problem once, at
// the line where its fix belongs. It imports intent (hook forms), netmodel (the
// network model it builds on), wgconf, wgkey, prefixset and inputfile (the
// capped, cancellable reader) only; it must not import spec, compile or any data
// plane (the command wires the spec in).
//
// Hosts are matched to the [Peer] sections that stand for them by public key (each
// host's key is derived from its PrivateKey). A peer whose key no host holds is
// matched by the evidence a wrong key leaves: its "# name" comment, an Endpoint
// other configs use for a host, or the host address its AllowedIPs cover best; that
// match reports unknown-peer-key once and lets the other checks go on as if the key
// were right. A host without a PrivateKey can't be checked by key: peers that point
// to it by that evidence are taken as its own.
//
// Every check has a stable code and a fixed severity:
//
//	code               severity  finds
//	syntax             error     the file is not a valid wg-quick config (the parser's error, at its line)
//	parse-warning      warning   a line wg accepts but only warns about (e.g. host bits in AllowedIPs)
//	dup-key            error     two hosts hold the same private key
//	self-peer          error     a peer has the host's own public key; wg ignores it
//	dup-peer           error     two [Peer] sections of one config have the same public key
//	unknown-peer-key   error     a peer's key is held by no host, but the peer is evidently one of them
//	peer-not-in-set    warning   a peer's key is held by no host and nothing points to one: not cross-checked
//	asymmetric-peer    error     A lists B but B does not list A: B drops A's handshakes
//	psk-mismatch       error     A and B use different preshared keys for each other
//	missing-peer       error     explicit topology only: a pair that must peer (mesh: all; hub: hub-spoke) doesn't
//	dup-allowedip      error     the same prefix on two peers of one config: the last one set wins silently
//	overlap-allowedip  warning   overlapping, different prefixes on two peers of one config (longest prefix wins)
//	dup-address        error     the same overlay address on two hosts
//	address-not-routed error     a host's address does not route to its peer in a config that peers with it
//	no-route           warning   a host has no route at all to another host (no peer, no relay covers it)
//	route-overlap      error     subnets routed to different hosts overlap each other or the overlay subnet
//	docker-overlap     warning   an overlay or routed subnet overlaps Docker's default bridge 172.17.0.0/16
//	endpoint-loop      error     AllowedIPs cover an Endpoint of the same config (except a /0 under wg-quick)
//	no-endpoint        error     two hosts peer but neither has an Endpoint for the other
//	endpoint-port      error     an Endpoint port is not the ListenPort of the host with that key
//	no-listen-port     warning   a host others dial has no ListenPort: random port at every start
//	hub-no-forwarding  warning   a host that relays or routes subnets does not turn on forwarding in PreUp/PostUp
//	default-route      warning   0.0.0.0/0 or ::/0 on a host others dial: SSH to it may be cut off
//	full-tunnel        warning   a client sends all its traffic through one peer, which must forward and masquerade it
//	keepalive-nat      warning   a host nobody dials has no PersistentKeepalive towards the peers it dials
//	mtu                warning   MTU above 1420, or different MTUs on different hosts
//	world-readable     warning   the config file is readable by group or others
//	key-hook           warning   a hook loads a private key other than as `PostUp = wg set %i private-key PATH`
//
// docs/checks.md explains each one with an example and its fix; a test keeps the
// table, that file and All in step.
package check
