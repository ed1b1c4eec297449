// Package lab runs a whole WireGuard network inside one process, without root,
// and proves who can reach whom: the engine of `wgnet lab` and `wgnet demo`.
//
// Each host is a Node: a device.Embedded (upstream wireguard-go, the same wrapper
// `wgnet up` runs on a kernel TUN) whose TUN is an in-process gVisor network stack
// and whose UDP socket is on 127.0.0.1; it passes the Device conformance test like
// the other backends. A config reaches it as `wgnet sync` reaches a real host:
// devconf diffs it against the device's State and only the difference is applied,
// so sessions of unchanged peers keep going. Endpoints in the configs are mapped
// onto the hosts' loopback ports; a peer without an Endpoint gets none, and the
// socket sends to nothing but loopback. The stack behaves like the host's kernel
// under wg-quick(8): it holds the config's addresses, routes the peers' AllowedIPs
// into the tunnel, and forwards only where the host's intent says it forwards.
// A routed subnet is stood in for by one address in it, on its own stack behind
// its host, like a container behind a bridge. Node is shaped as the lab's
// data-plane backend: Up, Configure (which applies only the difference), State,
// Close.
//
// A Lab starts every host of a compiled network, probes every host → every
// address of every other host (ICMP echo and TCP connect), explains each pair
// that is not as intended by following the packet through the configs, applies
// changes live, and measures throughput against a baseline without WireGuard.
//
// It imports compile, intent, netmodel, spec, wgconf, wgkey, device and devconf; it must not
// import up or hostnet (nothing that touches the host), and only commands import
// it (internal/layering enforces it).
package lab
