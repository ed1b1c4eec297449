package hostnet_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/hostnet"
	"github.com/wgnet/wgnet/internal/hostnet/hostnettest"
	"github.com/wgnet/wgnet/internal/netnstest"
)

// TestFilterTraffic puts a filter on one veth of this namespace (F) and probes
// it with real connections: from P, behind that veth, with two source addresses
// in each family, and from O, behind another veth that the filter must not see.
// Every probed port has a listener, and a control run without the filter
// reaches everything, so each failure is the filter's doing. Then an
// established connection outlives a filter that denies it until ForgetFlows
// deletes its conntrack entry. The table is compared with `nft -j list table`.
func TestFilterTraffic(t *testing.T) {
	netnstest.NeedsTool(t, "iputils-ping", "ping")
	netnstest.NeedsTool(t, "nftables", "nft")
	if !netnstest.InNetns(t) {
		return
	}
	filterTraffic(t, hostnet.TunnelNftables)
}

// TestFilterTrafficIptables is TestFilterTraffic with the filter written in
// iptables (TableBackend iptables; Debian's iptables-nft): the same probes
// give the same answers, and DeleteFirewall leaves iptables as it was.
func TestFilterTrafficIptables(t *testing.T) {
	netnstest.NeedsTool(t, "iputils-ping", "ping")
	netnstest.NeedsTool(t, "iptables", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	if !netnstest.InNetns(t) {
		return
	}
	filterTraffic(t, hostnet.TunnelIptables)
}

// iptablesRules is both families' iptables-save rules, for comparisons.
func iptablesRules(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, prog := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", prog, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "-") || strings.HasPrefix(l, ":") && !strings.Contains(l, "ACCEPT [") {
				b.WriteString(prog + ": " + l + "\n")
			}
		}
	}
	return b.String()
}

func filterTraffic(t *testing.T, backend string) {
	p, o := netnstest.New(t, "p"), netnstest.New(t, "o")
	sh := func(argv ...string) {
		t.Helper()
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	sh("ip", "link", "add", "wgt0", "type", "veth", "peer", "name", "eth0", "netns", p.Name)
	sh("ip", "link", "add", "other0", "type", "veth", "peer", "name", "eth0", "netns", o.Name)
	sh("ip", "addr", "add", "10.50.0.1/24", "dev", "wgt0")
	sh("ip", "addr", "add", "fd50::1/64", "dev", "wgt0", "nodad")
	sh("ip", "addr", "add", "10.60.0.1/24", "dev", "other0")
	sh("ip", "link", "set", "wgt0", "up")
	sh("ip", "link", "set", "other0", "up")
	p.Run(t, "ip", "addr", "add", "10.50.0.2/24", "dev", "eth0")
	p.Run(t, "ip", "addr", "add", "10.50.0.3/24", "dev", "eth0")
	p.Run(t, "ip", "addr", "add", "fd50::2/64", "dev", "eth0", "nodad")
	p.Run(t, "ip", "addr", "add", "fd50::3/64", "dev", "eth0", "nodad")
	p.Run(t, "ip", "link", "set", "eth0", "up")
	o.Run(t, "ip", "addr", "add", "10.60.0.2/24", "dev", "eth0")
	o.Run(t, "ip", "link", "set", "eth0", "up")
	o.Run(t, "ip", "route", "add", "default", "via", "10.60.0.1")

	srv := newServer(t, 22, 5432, 8080)
	type probe struct {
		from     *netnstest.NS
		src, dst string
		port     int
		want     bool // with the filter
	}
	probes := []probe{
		{p, "10.50.0.2", "10.50.0.1", 5432, true}, // rule 0
		{p, "10.50.0.2", "10.50.0.1", 22, true},   // rule 5
		{p, "10.50.0.2", "10.50.0.1", 8080, false},
		{p, "10.50.0.3", "10.50.0.1", 5432, false}, // rule 4
		{p, "10.50.0.3", "10.50.0.1", 22, false},   // rule 4 before rule 5
		{p, "fd50::2", "fd50::1", 5432, true},      // rule 1
		{p, "fd50::3", "fd50::1", 5432, false},
		{p, "fd50::2", "fd50::1", 22, false},
		{o, "10.60.0.2", "10.60.0.1", 8080, true}, // not through wgt0
		{o, "10.60.0.2", "10.50.0.1", 8080, true},
	}
	run := func(filtered bool) {
		t.Helper()
		for _, pr := range probes {
			want := pr.want || !filtered
			c, err := dialFrom(pr.from, pr.src, pr.dst, pr.port)
			if err == nil {
				c.Close()
			}
			if (err == nil) != want {
				t.Errorf("filter %v: %s -> [%s]:%d: connected %v, want %v (%v)", filtered, pr.src, pr.dst, pr.port, err == nil, want, err)
			}
		}
		for _, src := range []string{"10.50.0.2", "10.50.0.3"} {
			_, err := p.Try("ping", "-c", "1", "-W", "1", "-I", src, "10.50.0.1")
			if want := src == "10.50.0.2" || !filtered; (err == nil) != want {
				t.Errorf("filter %v: ping from %s: answered %v, want %v", filtered, src, err == nil, want)
			}
		}
		// The filter only sees what comes in: replies to F's own pings pass.
		if out, err := exec.Command("ping", "-c", "1", "-W", "1", "10.50.0.3").CombinedOutput(); err != nil {
			t.Errorf("filter %v: ping from F to P: %v: %s", filtered, err, out)
		}
	}
	// Neighbour discovery first, so that no probe waits for it.
	for _, a := range []string{"fd50::2", "fd50::3"} {
		if out, err := exec.Command("ping", "-c", "1", "-W", "2", a).CombinedOutput(); err != nil {
			t.Fatalf("ping %s: %v: %s", a, err, out)
		}
	}
	run(false)

	h := &hostnet.Linux{TableBackend: backend}
	iptBefore := ""
	if backend == hostnet.TunnelIptables {
		// A host whose filter table accepts everything first: the policy's
		// drops, in mangle, still come before.
		for _, prog := range []string{"iptables", "ip6tables"} {
			for _, chain := range []string{"INPUT", "FORWARD"} {
				if out, err := exec.Command(prog, "-I", chain, "-j", "ACCEPT").CombinedOutput(); err != nil {
					t.Fatalf("%s: %v: %s", prog, err, out)
				}
			}
		}
		iptBefore = iptablesRules(t)
	}
	pfx := netip.MustParsePrefix
	fw := hostnet.Firewall{Table: "wgnet-t", Filter: &hostnet.Filter{Iface: "wgt0", Rules: []hostnet.FilterRule{
		{Src: []netip.Prefix{pfx("10.50.0.2/32")}, Dst: []netip.Prefix{pfx("10.50.0.1/32")}, Proto: "tcp", Ports: []hostnet.PortRange{{From: 5432, To: 5432}}, Accept: true, Comment: "db"},
		{V6: true, Src: []netip.Prefix{pfx("fd50::2/128")}, Proto: "tcp", Ports: []hostnet.PortRange{{From: 5432, To: 5432}}, Accept: true},
		{Src: []netip.Prefix{pfx("10.50.0.2/32")}, Proto: "icmp", Accept: true},
		{V6: true, Proto: "icmp", Accept: true}, // neighbour discovery on a veth
		{Src: []netip.Prefix{pfx("10.50.0.3/32")}},
		{Proto: "tcp", Ports: []hostnet.PortRange{{From: 22, To: 22}}, Accept: true},
	}}}
	if err := h.ApplyFirewall(fw); err != nil {
		t.Fatal(err)
	}
	got, err := h.Firewall(fw.Table)
	if err != nil || !got.Filter.Equal(fw.Filter) {
		t.Fatalf("read back %+v, %v; want %+v", got.Filter, err, fw.Filter)
	}
	if backend == hostnet.TunnelNftables {
		compareNftJSON(t, fw)
		if out, err := exec.Command("nft", "list", "table", "inet", fw.Table).CombinedOutput(); err == nil {
			t.Logf("nft list table inet %s:\n%s", fw.Table, out)
		}
	} else {
		t.Logf("iptables:\n%s", iptablesRules(t))
		if out, _ := exec.Command("nft", "list", "table", "inet", fw.Table).CombinedOutput(); !strings.Contains(string(out), "No such file") {
			t.Errorf("the iptables backend made an nftables table:\n%s", out)
		}
	}
	run(true)

	// An allowed connection, established; then a filter that denies it.
	srv.drain()
	c, err := dialFrom(p, "10.50.0.2", "10.50.0.1", 5432)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn := srv.next(t)
	echo := func() error {
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		conn.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		_, err := io.ReadFull(conn, make([]byte, 1))
		return err
	}
	if err := echo(); err != nil {
		t.Fatalf("the established connection: %v", err)
	}
	deny := fw.Clone()
	deny.Filter.Rules = deny.Filter.Rules[1:]
	if err := h.ApplyFirewall(deny); err != nil {
		t.Fatal(err)
	}
	if err := echo(); err != nil {
		t.Errorf("without ForgetFlows the established connection should go on (ct state established): %v", err)
	}
	n, err := h.ForgetFlows(func(f hostnet.Flow) bool {
		return f.Proto == 6 && f.Src == netip.MustParseAddr("10.50.0.2") && f.DstPort == 5432 && int(f.SrcPort) == c.LocalAddr().(*net.TCPAddr).Port
	})
	if err != nil || n != 1 {
		t.Fatalf("ForgetFlows = %d, %v; want 1 entry", n, err)
	}
	// F's side speaks first: conntrack would pick the connection up the other
	// way round, making P's packets replies, were it not held back.
	if _, err := conn.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := echo(); err == nil {
		t.Errorf("after ForgetFlows the denied connection still carries data")
	}
	if err := h.DeleteFirewall(fw.Table); err != nil {
		t.Fatal(err)
	}
	if backend == hostnet.TunnelIptables {
		if after := iptablesRules(t); after != iptBefore {
			t.Errorf("after DeleteFirewall iptables is not as before:\n%s\nbefore:\n%s", after, iptBefore)
		}
		return
	}
	if out, _ := exec.Command("nft", "list", "ruleset").CombinedOutput(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("after DeleteFirewall the ruleset is not empty:\n%s", out)
	}
}

// server accepts on some ports (both families) and hands out the connections.
type server struct{ conns chan net.Conn }

func newServer(t *testing.T, ports ...int) *server {
	s := &server{conns: make(chan net.Conn, 64)}
	for _, port := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			t.Fatal(err)
		}
		netnstest.Serve(t, ln, func(c net.Conn) {
			select {
			case s.conns <- c:
			default:
				c.Close()
			}
		})
	}
	return s
}

// drain closes the connections accepted so far.
func (s *server) drain() {
	for {
		select {
		case c := <-s.conns:
			c.Close()
		default:
			return
		}
	}
}

// next returns the next accepted connection.
func (s *server) next(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(2 * time.Second):
		t.Fatal("no connection accepted")
	}
	return nil
}

// dialFrom connects from namespace ns, from address src, within a second.
func dialFrom(ns *netnstest.NS, src, dst string, port int) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		var err error
		c, err = d.Dial("tcp", net.JoinHostPort(dst, fmt.Sprint(port)))
		return err
	})
	return c, err
}

// compareNftJSON checks `nft -j list table` against fw: the filter's chains
// with their hooks, the policy chain's rules (comments, verdicts, sets used),
// and each set's elements as prefixes and ports.
func compareNftJSON(t *testing.T, fw hostnet.Firewall) {
	t.Helper()
	out, err := exec.Command("nft", "-j", "list", "table", "inet", fw.Table).Output()
	if err != nil {
		t.Fatalf("nft -j list table: %v", err)
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	sets := map[string][]string{}
	var policy []string // per rule: comment | verdict | sets referenced
	hooks := map[string]string{}
	for _, obj := range doc.Nftables {
		switch {
		case obj["set"] != nil:
			var s struct {
				Name string            `json:"name"`
				Elem []json.RawMessage `json:"elem"`
			}
			json.Unmarshal(obj["set"], &s)
			for _, e := range s.Elem {
				sets[s.Name] = append(sets[s.Name], nftElem(e))
			}
		case obj["chain"] != nil:
			var c struct{ Name, Hook string }
			json.Unmarshal(obj["chain"], &c)
			hooks[c.Name] = c.Hook
		case obj["rule"] != nil:
			var r struct {
				Chain   string            `json:"chain"`
				Comment string            `json:"comment"`
				Expr    []json.RawMessage `json:"expr"`
			}
			json.Unmarshal(obj["rule"], &r)
			if r.Chain != "policy" {
				continue
			}
			var used []string
			verdict := ""
			for _, e := range r.Expr {
				s := string(e)
				for _, v := range []string{"accept", "drop"} {
					if strings.HasPrefix(s, `{"`+v+`"`) {
						verdict = v
					}
				}
				if i := strings.Index(s, `"@`); i >= 0 {
					used = append(used, strings.Trim(s[i+2:], `"}`))
				}
			}
			policy = append(policy, fmt.Sprintf("%s|%s|%s", r.Comment, verdict, strings.Join(used, ",")))
		}
	}
	if hooks["policy_input"] != "input" || hooks["policy_forward"] != "forward" {
		t.Errorf("nft -j: chain hooks %v", hooks)
	}
	want := []string{"|accept|"} // ct state established,related
	wantSets := map[string][]string{}
	for i, r := range fw.Filter.Rules {
		var used []string
		add := func(what string, items []string) {
			if len(items) > 0 {
				name := fmt.Sprintf("r%d_%s", i, what)
				used = append(used, name)
				wantSets[name] = items
			}
		}
		add("saddr", prefixStrings(r.Src))
		add("daddr", prefixStrings(r.Dst))
		var ports []string
		for _, pr := range r.Ports {
			ports = append(ports, portString(pr.From, pr.To))
		}
		add("dport", ports)
		want = append(want, fmt.Sprintf("%s|%s|%s", r.Comment, map[bool]string{true: "accept", false: "drop"}[r.Accept], strings.Join(used, ",")))
	}
	if !fw.Filter.DefaultAccept {
		want = append(want, "default: deny|drop|")
	}
	if !slices.Equal(policy, want) {
		t.Errorf("nft -j: policy chain rules (comment|verdict|sets):\n got %q\nwant %q", policy, want)
	}
	for name, items := range wantSets {
		got := slices.Clone(sets[name])
		sort.Strings(got)
		sort.Strings(items)
		if !slices.Equal(got, items) {
			t.Errorf("nft -j: set %s = %v, want %v", name, got, items)
		}
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		if p.IsSingleIP() {
			out = append(out, p.Addr().String())
		} else {
			out = append(out, p.String())
		}
	}
	return out
}

func portString(from, to uint16) string {
	if from == to {
		return fmt.Sprint(from)
	}
	return fmt.Sprintf("%d-%d", from, to)
}

// nftElem renders one element of `nft -j`: "10.0.0.1", {"prefix": {"addr":
// "10.0.0.0", "len": 24}}, 5432 or {"range": [8000, 8080]}.
func nftElem(raw json.RawMessage) string {
	var v any
	json.Unmarshal(raw, &v)
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(int(x))
	case map[string]any:
		if p, ok := x["prefix"].(map[string]any); ok {
			return fmt.Sprintf("%v/%v", p["addr"], p["len"])
		}
		if r, ok := x["range"].([]any); ok && len(r) == 2 {
			if a, ok := r[0].(float64); ok {
				return portString(uint16(a), uint16(r[1].(float64)))
			}
			return fmt.Sprintf("%v-%v", r[0], r[1])
		}
	}
	return string(raw)
}

// TestFilterCasesJSON checks the conformance cases against nft's own reading of
// them.
func TestFilterCasesJSON(t *testing.T) {
	netnstest.NeedsTool(t, "nftables", "nft")
	if !netnstest.InNetns(t) {
		return
	}
	h := hostnet.New()
	for _, fw := range hostnettest.FilterCases("wgnet-j", "wgt0") {
		if err := h.ApplyFirewall(fw); err != nil {
			t.Fatal(err)
		}
		if fw.Filter != nil {
			compareNftJSON(t, fw)
		}
	}
	if err := h.DeleteFirewall("wgnet-j"); err != nil && !errors.Is(err, hostnet.ErrNotFound) {
		t.Fatal(err)
	}
}
