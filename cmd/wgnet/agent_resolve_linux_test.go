package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/netnstest"
)

// wgShow runs `wg show wg0 WHAT` in a's namespaces (its own /run/wireguard)
// and returns its lines split at tabs: the running interface, as WireGuard's
// own tool reads it.
func wgShow(t *testing.T, a *agentHost, what string) [][]string {
	t.Helper()
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(a.h.must(t, nil, "wg", "show", "wg0", what)), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// peerShow is the value `wg show wg0 WHAT` gives on a's interface for the
// peer with public key pub (WHAT: endpoints, allowed-ips).
func peerShow(t *testing.T, a *agentHost, what, pub string) string {
	t.Helper()
	for _, r := range wgShow(t, a, what) {
		if len(r) == 2 && r[0] == pub {
			return r[1]
		}
	}
	return ""
}

// endpointOf is the endpoint a's interface has for the peer with public key pub.
func endpointOf(t *testing.T, a *agentHost, pub string) string {
	t.Helper()
	return peerShow(t, a, "endpoints", pub)
}

// TestAgentReresolveNetns (issue 15: "it re-resolves endpoint host names
// periodically and applies a changed address") with real processes and the
// real resolver: agents in namespaces, a2 joined with the endpoint
// a2.wgnet.test:51820, which the others' agents resolve through Go's resolver
// from /etc/hosts, a file of the test bind-mounted over /etc/hosts in each
// agent's private mount namespace (the machine's own /etc/hosts is never
// touched). a2 moves to another underlay address and sends nothing (an nft rule
// in its namespace), so that only the name can tell the others where it went,
// not WireGuard's roaming. The name changes in the file: within the agents' resolve period
// (--resolve-every 2s) and Go's /etc/hosts cache (5 s) both other agents point
// at the new address, and traffic flows again. Then the name stops resolving:
// a change to the network is still applied, and a2 keeps its last address.
func TestAgentReresolveNetns(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "util-linux", "unshare", "nsenter", "mount")
	netnstest.NeedsTool(t, "iputils-ping", "ping")
	netnstest.NeedsTool(t, "wireguard-tools", "wg")
	netnstest.NeedsTool(t, "nftables", "nft")
	if testing.Short() {
		t.Skip("about a minute of real processes")
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	setName := func(addr string) {
		// Written in place: the bind mounts show this inode, and a rename would
		// leave them on the old one. "": the name is not there.
		b := []byte("127.0.0.1\tlocalhost\n")
		if addr != "" {
			b = fmt.Appendf(b, "%s\ta2.wgnet.test\n", addr)
		}
		if err := os.WriteFile(hosts, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Queries for names not in the file go to a resolver inside the agent's
	// namespace, where nothing listens: never to the machine's own resolver.
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	setName("198.18.0.12")
	if b, err := os.ReadFile("/etc/hosts"); err == nil && bytes.Contains(b, []byte("wgnet.test")) {
		t.Fatal("the machine's own /etc/hosts names wgnet.test; this test would not show what it resolves")
	}
	l := newAgentLab(t)
	l.prepare = func(a *agentHost) {
		a.h.must(t, nil, "mount", "--bind", hosts, "/etc/hosts")
		a.h.must(t, nil, "mount", "--bind", resolv, "/etc/resolv.conf")
		if out := a.h.must(t, nil, "cat", "/etc/hosts"); !strings.Contains(out, "a2.wgnet.test") {
			t.Fatalf("%s: /etc/hosts in its mount namespace is not the test's:\n%s", a.name, out)
		}
	}
	l.startController()
	token := l.demoToken(3)
	every := []string{"--resolve-every", "2s"}
	a1 := l.join("a1", 1, token, every...)
	a2 := l.join("a2", 2, token, append([]string{"--endpoint", "a2.wgnet.test:51820"}, every...)...)
	a3 := l.join("a3", 3, token, every...)
	agents := []*agentHost{a1, a2, a3}
	l.converge("three joined, a2 by name", agents)
	pub := strings.TrimSpace(a2.h.must(t, nil, "wg", "show", "wg0", "public-key"))
	a2addr, _, _ := strings.Cut(peerShow(t, a1, "allowed-ips", pub), "/")
	for _, a := range []*agentHost{a1, a3} {
		if got := endpointOf(t, a, pub); got != "198.18.0.12:51820" {
			t.Fatalf("%s's endpoint for a2: %q; want 198.18.0.12:51820, what a2.wgnet.test resolves to", a.name, got)
		}
	}
	if a2addr == "" {
		t.Fatal("a1 has no overlay address of a2")
	}

	// a2 moves on the underlay; its name still says the old address. Until
	// the others point at the new one, a2 sends no WireGuard packet (an nft
	// rule in its namespace drops them), so that they can't learn the
	// address by WireGuard's roaming: only the name can tell them.
	for _, argv := range [][]string{{"add", "table", "inet", "wgnet_test_silence"},
		{"add", "chain", "inet", "wgnet_test_silence", "out", "{", "type", "filter", "hook", "output", "priority", "0", ";", "}"},
		{"add", "rule", "inet", "wgnet_test_silence", "out", "udp", "sport", "51820", "drop"}} {
		a2.h.must(t, nil, append([]string{"nft"}, argv...)...)
	}
	// (Deleted first: deleting an interface's primary address deletes the
	// secondary ones of its subnet with it.)
	a2.h.must(t, nil, "ip", "addr", "del", "198.18.0.12/24", "dev", "eth0")
	a2.h.must(t, nil, "ip", "addr", "add", "198.18.0.52/24", "dev", "eth0")
	// a2's long poll went out from the address it lost: a2 sees that (every
	// second) and polls again from its new one, so a change reaches it at
	// once, not when that poll times out (30 s).
	appliedAt := func(a *agentHost) int { return strings.Count(a.logText(), "msg=applied ") }
	before, moved := appliedAt(a2), time.Now()
	l.admin("set", "a2", "--network", "demo", "--route", "172.31.2.0/24", "--route", "172.31.42.0/24")
	for appliedAt(a2) == before {
		if time.Since(moved) > 8*time.Second {
			t.Fatalf("a2 did not apply a change within 8 s of losing the address its long poll went out from\n%s", a2.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("a2 applied a change %.1f s after losing its poll's address (from the admin's command)", time.Since(moved).Seconds())
	if !strings.Contains(a2.logText(), "the long poll's local address is gone from this host") {
		t.Errorf("a2 does not say its long poll's address went:\n%s", a2.logText())
	}
	time.Sleep(2500 * time.Millisecond) // more than a resolve period
	for _, a := range []*agentHost{a1, a3} {
		if got := endpointOf(t, a, pub); got != "198.18.0.12:51820" {
			t.Fatalf("%s's endpoint for a2 before its name moved: %q", a.name, got)
		}
	}

	// The name moves: each agent applies the new address by itself.
	setName("198.18.0.52")
	changed := time.Now()
	for _, a := range []*agentHost{a1, a3} {
		deadline := changed.Add(30 * time.Second)
		for endpointOf(t, a, pub) != "198.18.0.52:51820" {
			if time.Now().After(deadline) {
				t.Fatalf("%s's endpoint for a2 is still %q 30 s after the name moved\n%s", a.name, endpointOf(t, a, pub), a.logText())
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%s points at a2's new address %.1f s after its name moved", a.name, time.Since(changed).Seconds())
	}
	a2.h.must(t, nil, "nft", "delete", "table", "inet", "wgnet_test_silence")
	for _, a := range []*agentHost{a1, a3} {
		if !pingWithin(a.h, a2addr, 20*time.Second) {
			t.Fatalf("%s can't reach a2 (%s) at its new address", a.name, a2addr)
		}
	}
	l.converge("a2 moved and renamed", agents)

	// The name stops resolving (gone from the file; DNS in the namespace
	// answers nothing). A change (a2 routes one more subnet) is still applied
	// by the agents that have a2 by name, and they keep the address the name
	// had.
	setName("")
	time.Sleep(7 * time.Second) // a resolve period and Go's hosts cache
	changed = time.Now()
	l.admin("set", "a2", "--network", "demo", "--route", "172.31.12.0/24")
	for _, a := range []*agentHost{a1, a3} {
		deadline := changed.Add(20 * time.Second)
		for !strings.Contains(peerShow(t, a, "allowed-ips", pub), "172.31.12.0/24") {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not apply a2's new route in 20 s while a2's name does not resolve\n%s", a.name, a.logText())
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%s applied a2's new route in %.1f s while a2's name does not resolve (from the admin's command)", a.name, time.Since(changed).Seconds())
	}
	for _, a := range []*agentHost{a1, a3} {
		if got := endpointOf(t, a, pub); got != "198.18.0.52:51820" {
			t.Errorf("%s's endpoint for a2 while its name does not resolve: %q; want its last address, 198.18.0.52:51820", a.name, got)
		}
		if !pingWithin(a.h, a2addr, 10*time.Second) {
			t.Errorf("%s can't reach a2 while its name does not resolve", a.name)
		}
		if !strings.Contains(a.logText(), "endpoint a2.wgnet.test: lookup a2.wgnet.test") || !strings.Contains(a.logText(), "keeping its last address 198.18.0.52") {
			t.Errorf("%s does not say it keeps a2's last address:\n%s", a.name, a.logText())
		}
	}

	// a3's agent restarts: in its new process a2's name has never resolved.
	// It still applies its cached state and the next change, a2's peer
	// without an endpoint, and says so; a2 reaches it by dialling in.
	stopProc(a3.cmd)
	l.runAgent(a3, "run", "--backend", "userspace", "--dir", a3.dir, "--resolve-every", "2s")
	changed = time.Now()
	l.admin("set", "a2", "--network", "demo", "--route", "172.31.22.0/24")
	deadline := changed.Add(20 * time.Second)
	for !strings.Contains(peerShow(t, a3, "allowed-ips", pub), "172.31.22.0/24") {
		if time.Now().After(deadline) {
			t.Fatalf("a3, restarted, did not apply a2's new route in 20 s while a2's name has never resolved in it\n%s", a3.logText())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("a3, restarted, applied a2's new route in %.1f s while a2's name has never resolved in it", time.Since(changed).Seconds())
	if !strings.Contains(a3.logText(), "endpoint host names that have never resolved") || !strings.Contains(a3.logText(), "a2.wgnet.test") {
		t.Errorf("a3 does not say a2's endpoint name never resolved:\n%s", a3.logText())
	}
	a3addr, _, _ := strings.Cut(peerShow(t, a2, "allowed-ips", strings.TrimSpace(a3.h.must(t, nil, "wg", "show", "wg0", "public-key"))), "/")
	if !pingWithin(a2.h, a3addr, 10*time.Second) || !pingWithin(a3.h, a2addr, 10*time.Second) {
		t.Errorf("a2 and a3 (%s, %s) do not reach each other after a3 configured a2 without an endpoint", a2addr, a3addr)
	}
	unresolvedShown(t, l, a3, changed)
}

// unresolvedShown: a3 has a2 without an endpoint, its name never resolved in
// a3's agent (since about after): `wgnet agent show` on a3 says so, and a3's
// status report brings it to the controller, whose `wgnet status` says so.
func unresolvedShown(t *testing.T, l *agentLab, a3 *agentHost, after time.Time) {
	var shown struct {
		Unresolved []struct {
			Peer, Host, Error string
			Since             time.Time
		} `json:"unresolved"`
	}
	out := mustCLI(t, t.TempDir(), "agent", "show", "--dir", a3.dir, "-o", "json")
	if err := json.Unmarshal([]byte(out), &shown); err != nil || len(shown.Unresolved) != 1 {
		t.Fatalf("agent show -o json on a3: %v\n%s", err, out)
	}
	u := shown.Unresolved[0]
	if u.Peer != "a2" || u.Host != "a2.wgnet.test" || !strings.Contains(u.Error, "a2.wgnet.test") || u.Since.Before(after.Add(-20*time.Second)) || u.Since.After(time.Now()) {
		t.Errorf("agent show on a3: unresolved %+v; want a2, a2.wgnet.test, since about %s", u, after.Format(time.RFC3339))
	}
	if text := mustCLI(t, t.TempDir(), "agent", "show", "--dir", a3.dir); !strings.Contains(text, "peer a2: endpoint host name a2.wgnet.test has not resolved since") {
		t.Errorf("agent show on a3 does not name a2 unresolved:\n%s", text)
	}
	// The controller hears it in a3's next status report (every 10 s).
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct {
			Hosts []struct {
				Name  string `json:"name"`
				Peers []struct {
					Host       string `json:"host"`
					Unresolved *struct {
						Host, Error, Since string
					} `json:"unresolved"`
				} `json:"peers"`
			} `json:"hosts"`
		}
		if err := json.Unmarshal([]byte(l.admin("status", "demo", "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		var got, others []string
		for _, h := range st.Hosts {
			for _, p := range h.Peers {
				if p.Unresolved == nil {
					continue
				}
				if h.Name == "a3" && p.Host == "a2" && p.Unresolved.Host == "a2.wgnet.test" && p.Unresolved.Since == u.Since.UTC().Format(time.RFC3339) {
					got = append(got, h.Name+">"+p.Host)
				} else {
					others = append(others, fmt.Sprintf("%s>%s %+v", h.Name, p.Host, *p.Unresolved))
				}
			}
		}
		if len(others) > 0 {
			t.Fatalf("status names other peers unresolved: %v", others)
		}
		if len(got) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wgnet status does not name a3's peer a2 unresolved 30 s after a3 configured it so")
		}
		time.Sleep(time.Second)
	}
	if text := l.admin("status", "demo"); !strings.Contains(text, "note: a3: peer a2: endpoint host name a2.wgnet.test has not resolved since "+u.Since.UTC().Format(time.RFC3339)) {
		t.Errorf("wgnet status does not name a3's peer a2 unresolved:\n%s", text)
	} else {
		t.Logf("wgnet status:\n%s", text)
	}
}
