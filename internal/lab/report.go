package lab

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Unproven says what a lab run cannot show about the real network. Print it with
// every result: a green matrix proves the configs, not the servers.
var Unproven = []string{
	"host firewalls on the real servers (nftables/iptables rules, cloud security groups)",
	"Docker's FORWARD DROP policy and masquerading in front of container subnets, and that the real interface in front of a routed subnet forwards (the lab's always do)",
	"the real path MTU between the servers: the lab runs over loopback",
	"that Endpoint host names resolve, and to the right addresses; NAT between the servers",
	"that a host without an Endpoint for a peer ever hears from it first: the lab lets every host that can start a handshake start one",
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// WriteStatus prints the hosts and their peers as the devices report them.
func WriteStatus(w io.Writer, hosts []HostStatus, now time.Time) {
	t := newTable(w)
	fmt.Fprintln(t, "HOST\tADDRESS\tUDP (LAB)\tENDPOINT (CONFIGS)\tFORWARDS\tSUBNETS")
	for _, h := range hosts {
		var addrs, subnets []string
		for _, a := range h.Addresses {
			addrs = append(addrs, a.String())
		}
		for _, s := range h.Subnets {
			subnets = append(subnets, fmt.Sprintf("%s (%s answers)", s.Subnet, s.Addr))
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Host, orDash(strings.Join(addrs, ",")), h.Listen,
			orDash(h.Endpoint), yesNo(h.Forwards), orDash(strings.Join(subnets, ", ")))
	}
	t.Flush()
	fmt.Fprintln(w)
	t = newTable(w)
	fmt.Fprintln(t, "HOST\tPEER\tENDPOINT\tHANDSHAKES\tLATEST\tRECEIVED\tSENT")
	for _, h := range hosts {
		for _, p := range h.Peers {
			ep := "-"
			if p.Endpoint.IsValid() {
				ep = p.Endpoint.String()
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", h.Host, p.Peer, ep, p.Handshakes,
				ago(p.LastHandshake, now), bytesText(p.RxBytes), bytesText(p.TxBytes))
		}
	}
	t.Flush()
}

// WriteMatrix prints who reaches whom: a grid by host, then every probe with its
// round-trip times.
func WriteMatrix(w io.Writer, m *Matrix) {
	fmt.Fprintln(w, "Reachability: ICMP echo + TCP connect from each host (row) to every address of each other host (column), overlay and routed subnets.")
	t := newTable(w)
	fmt.Fprintf(t, "FROM \\ TO\t%s\n", strings.Join(m.Hosts, "\t"))
	for _, from := range m.Hosts {
		cells := []string{from}
		for _, to := range m.Hosts {
			cells = append(cells, gridCell(m, from, to))
		}
		fmt.Fprintln(t, strings.Join(cells, "\t"))
	}
	t.Flush()
	fmt.Fprintln(w)
	if slices.ContainsFunc(m.Probes, func(p Probe) bool { return len(p.Checks) > 0 }) {
		writeChecks(w, m)
		return
	}
	t = newTable(w)
	fmt.Fprintln(t, "FROM\tTO\tADDRESS\tINTENT\tICMP\tTCP\tRESULT")
	for _, p := range m.Probes {
		addr := p.To.Addr.String()
		if p.To.Subnet.IsValid() {
			addr += " in " + p.To.Subnet.String()
		}
		icmp, tcp := rttText(p.ICMP), rttText(p.TCP)
		if p.NotProbed != "" {
			icmp, tcp = "-", "-"
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.From, p.To.Host, addr, wantText(p.Want),
			icmp, tcp, verdict(p))
	}
	t.Flush()
}

// writeChecks prints every check of every probe: what the policy wants, what
// happened and the rule the verdict comes from.
func writeChecks(w io.Writer, m *Matrix) {
	t := newTable(w)
	fmt.Fprintln(t, "FROM\tTO\tADDRESS\tCHECK\tPOLICY\tGOT\tRESULT\tRULE")
	for _, p := range m.Probes {
		addr := p.To.Addr.String()
		if p.To.Subnet.IsValid() {
			addr += " in " + p.To.Subnet.String()
		}
		if p.NotProbed != "" {
			fmt.Fprintf(t, "%s\t%s\t%s\t-\t-\t-\t%s\t-\n", p.fromText(), p.To.Host, addr, verdict(p))
			continue
		}
		for _, c := range p.Checks {
			got, res := "blocked", "ok"
			if c.Result.OK {
				got = rttText(c.Result)
			}
			if c.Problem() {
				res = "FAIL"
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.fromText(), p.To.Host, addr, c.Name(), passText(c.Want), got, res, orDash(c.Rule))
		}
	}
	t.Flush()
}

// fromText names a probe's source: the host, or "s2 10.0.5.1" for a probe
// from one of its subnets.
func (p Probe) fromText() string {
	if p.FromSubnet.IsValid() {
		return p.From + " " + p.FromSubnet.String()
	}
	return p.From
}

// WriteReport prints what a lab run found, as lab and demo show it: the status
// table, the reachability matrix and the probes that are not as intended, each
// after a blank line. now is the time handshake ages are measured from.
func WriteReport(w io.Writer, st []HostStatus, m *Matrix, now time.Time) {
	fmt.Fprintln(w)
	WriteStatus(w, st, now)
	fmt.Fprintln(w)
	WriteMatrix(w, m)
	fmt.Fprintln(w)
	WriteProblems(w, m)
}

// WriteProblems prints every probe whose result differs from the intent, with the
// reason the configs give. It prints nothing when there are none.
func WriteProblems(w io.Writer, m *Matrix) {
	ps := m.Problems()
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(w, "%d of %d pairs are not as intended:\n", len(ps), len(m.Probes))
	for _, p := range ps {
		what := "can't reach"
		switch {
		case len(p.Checks) > 0:
			what = "→"
		case !p.Want:
			what = "reaches, but should not reach"
		}
		fmt.Fprintf(w, "  %s %s %s: %s\n", p.fromText(), what, p.To, p.Why)
	}
	fmt.Fprintln(w)
}

// WriteUnproven prints what the lab cannot prove.
func WriteUnproven(w io.Writer) {
	fmt.Fprintln(w, "What this run does not prove:")
	for _, u := range Unproven {
		fmt.Fprintf(w, "  - %s\n", u)
	}
}

func gridCell(m *Matrix, from, to string) string {
	if from == to {
		return "-"
	}
	n, bad, skipped := 0, 0, 0
	for _, p := range m.Probes {
		if p.From == from && p.To.Host == to && p.NotProbed != "" {
			skipped++
		} else if p.From == from && p.To.Host == to {
			n++
			if p.Problem() {
				bad++
			}
		}
	}
	switch {
	case n == 0 && skipped > 0:
		return "not probed"
	case n == 0:
		return "?"
	case bad == 0:
		return "ok"
	}
	return fmt.Sprintf("FAIL %d/%d", bad, n)
}

func wantText(want bool) string {
	if want {
		return "reach"
	}
	return "blocked"
}

func verdict(p Probe) string {
	switch {
	case p.NotProbed != "":
		return "not probed: " + p.NotProbed
	case !p.Problem():
		return "ok"
	case p.Want:
		return "FAIL"
	}
	return "FAIL (reachable)"
}

func rttText(r Result) string {
	if !r.OK {
		return "no answer"
	}
	return fmt.Sprintf("%.1f ms", float64(r.RTT.Microseconds())/1000)
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%.1fs ago", d.Seconds())
}

func bytesText(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
