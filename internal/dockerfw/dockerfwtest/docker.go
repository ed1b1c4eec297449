package dockerfwtest

import (
	"fmt"
	"net/netip"
	"strings"
)

// Generation is a Docker release whose iptables rules DockerRules reproduces.
type Generation string

// The generations reproduced.
const (
	// Docker20 is Docker 20.10 to 27 (iptables backend, nat mode): FORWARD
	// policy DROP, DOCKER-USER, DOCKER and the isolation chains in FORWARD, the
	// bridge subnet masqueraded.
	Docker20 Generation = "docker-20.10"
	// Docker28 is Docker 28 in nat mode: FORWARD → DOCKER-USER, DOCKER-FORWARD
	// (DOCKER-CT, isolation, DOCKER-BRIDGE → DOCKER, which drops what is not a
	// published port), the masquerade, and raw PREROUTING dropping packets
	// for each container that did not come from the bridge.
	Docker28 Generation = "docker-28"
	// Docker28Routed is Docker 28 with the network option
	// com.docker.network.bridge.gateway_mode_ipv4=routed: no masquerade, no raw
	// drop; the DOCKER chain still drops unpublished ports.
	Docker28Routed Generation = "docker-28-routed"
)

// DockerRules is the iptables-save text (filter, nat and, from 28, raw) that
// Docker of generation g makes for one bridge network: bridge is its
// interface, subnet its IPv4 subnet, containers the addresses of its running
// containers. It is a reproduction from Docker's documentation and published
// iptables-save dumps, for iptables-restore in a test namespace; not Docker's
// own code.
func DockerRules(g Generation, bridge string, subnet netip.Prefix, containers []netip.Addr) string {
	br, s := bridge, subnet.Masked().String()
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	if g != Docker20 {
		// Routed mode's raw table is empty: restored, it also takes away the
		// drops of a nat-mode network that was there before.
		w("*raw")
		w(":PREROUTING ACCEPT [0:0]")
		w(":OUTPUT ACCEPT [0:0]")
		for _, c := range containers {
			if g == Docker28 {
				w("-A PREROUTING -d %s/32 ! -i %s -j DROP", c, br)
			}
		}
		w("COMMIT")
	}
	w("*nat")
	w(":PREROUTING ACCEPT [0:0]")
	w(":INPUT ACCEPT [0:0]")
	w(":OUTPUT ACCEPT [0:0]")
	w(":POSTROUTING ACCEPT [0:0]")
	w(":DOCKER - [0:0]")
	w("-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER")
	w("-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER")
	if g != Docker28Routed {
		w("-A POSTROUTING -s %s ! -o %s -j MASQUERADE", s, br)
	}
	w("-A DOCKER -i %s -j RETURN", br)
	w("COMMIT")
	w("*filter")
	w(":INPUT ACCEPT [0:0]")
	w(":FORWARD DROP [0:0]")
	w(":OUTPUT ACCEPT [0:0]")
	if g == Docker20 {
		for _, c := range []string{"DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER"} {
			w(":%s - [0:0]", c)
		}
		w("-A FORWARD -j DOCKER-USER")
		w("-A FORWARD -j DOCKER-ISOLATION-STAGE-1")
		w("-A FORWARD -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", br)
		w("-A FORWARD -o %s -j DOCKER", br)
		w("-A FORWARD -i %s ! -o %s -j ACCEPT", br, br)
		w("-A FORWARD -i %s -o %s -j ACCEPT", br, br)
		w("-A DOCKER-ISOLATION-STAGE-1 -i %s ! -o %s -j DOCKER-ISOLATION-STAGE-2", br, br)
		w("-A DOCKER-ISOLATION-STAGE-1 -j RETURN")
		w("-A DOCKER-ISOLATION-STAGE-2 -o %s -j DROP", br)
		w("-A DOCKER-ISOLATION-STAGE-2 -j RETURN")
		w("-A DOCKER-USER -j RETURN")
		w("COMMIT")
		return b.String()
	}
	for _, c := range []string{"DOCKER", "DOCKER-BRIDGE", "DOCKER-CT", "DOCKER-FORWARD", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER"} {
		w(":%s - [0:0]", c)
	}
	w("-A FORWARD -j DOCKER-USER")
	w("-A FORWARD -j DOCKER-FORWARD")
	w("-A DOCKER ! -i %s -o %s -j DROP", br, br)
	w("-A DOCKER-BRIDGE -o %s -j DOCKER", br)
	w("-A DOCKER-CT -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", br)
	w("-A DOCKER-FORWARD -j DOCKER-CT")
	w("-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1")
	w("-A DOCKER-FORWARD -j DOCKER-BRIDGE")
	w("-A DOCKER-FORWARD -i %s -j ACCEPT", br)
	w("-A DOCKER-ISOLATION-STAGE-1 -i %s ! -o %s -j DOCKER-ISOLATION-STAGE-2", br, br)
	w("-A DOCKER-ISOLATION-STAGE-2 -o %s -j DROP", br)
	w("COMMIT")
	return b.String()
}
