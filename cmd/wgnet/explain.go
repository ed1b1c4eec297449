package main

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/netmodel"
	"github.com/wgnet/wgnet/internal/policy"
	"github.com/wgnet/wgnet/internal/spec"
)

func init() { register(newExplainCmd) }

func newExplainCmd() *cobra.Command {
	var proto string
	var port int
	c := &cobra.Command{
		Use:   "explain FROM TO [--proto tcp|udp|icmp] [--port N]",
		Short: "Say whether a packet from FROM reaches TO, and which rule, route or AllowedIPs entry decides, hop by hop",
		Long: "explain follows one packet through the spec's compiled network: FROM and TO are host\n" +
			"names or addresses (an overlay address, or one in a routed subnet). At each hop it\n" +
			"says which AllowedIPs entry sends the packet on and, on every host that receives it\n" +
			"over the tunnel, which policy rule its filter decides by; then whether the reply\n" +
			"gets back (replies of an accepted connection pass the filters). Without --proto it\n" +
			"is an ICMP echo, with --port a TCP connection. Exit 0: it passes; 1: it does not;\n" +
			"2: could not run.",
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			format, err := outputFormat(global.output, "text", "json")
			if err != nil {
				return err
			}
			if proto == "" {
				proto = policy.ICMP
				if c.Flags().Changed("port") {
					proto = policy.TCP
				}
			}
			switch {
			case proto != policy.TCP && proto != policy.UDP && proto != policy.ICMP:
				return usageError{fmt.Errorf("--proto %q: want tcp, udp or icmp", proto)}
			case proto == policy.ICMP && c.Flags().Changed("port"):
				return usageError{fmt.Errorf("--port is for tcp and udp, not icmp")}
			case proto != policy.ICMP && (port < 1 || port > 65535):
				return usageError{fmt.Errorf("--proto %s needs --port 1-65535", proto)}
			}
			in, err := labHosts(nil, global.specFile, stderrOf) // keys the secrets lack are made up: only who is who matters
			if err != nil {
				return err
			}
			e, err := explainPacket(in.spec, in.hosts, args[0], args[1], proto, uint16(port))
			if err != nil {
				return usageError{err}
			}
			if format == "json" {
				if err := writeJSON(c.OutOrStdout(), e); err != nil {
					return err
				}
			} else {
				e.writeText(c.OutOrStdout())
			}
			if !e.Passes {
				return errProblems("")
			}
			return nil
		},
	}
	c.Flags().StringVar(&proto, "proto", "", "tcp, udp or icmp (default: icmp, or tcp with --port)")
	c.Flags().IntVar(&port, "port", 0, "destination port (tcp, udp)")
	return c
}

// explanation is explain's answer (-o json prints it).
type explanation struct {
	From   string      `json:"from"`
	To     string      `json:"to"`
	Packet string      `json:"packet"`
	Passes bool        `json:"passes"`
	Hops   []hopReport `json:"hops"`
	Reply  []string    `json:"reply,omitempty"`
	// DecidedBy is the rule, route or AllowedIPs entry that decides.
	DecidedBy string `json:"decided_by"`
	// Policy is the whole policy's verdict for the packet, wherever it is enforced.
	Policy string `json:"policy"`
}

// hopReport is one host the packet passes.
type hopReport struct {
	Host string `json:"host"`
	// Filter is the host's filter verdict on arrival over the tunnel ("" on
	// the sender).
	Filter string `json:"filter,omitempty"`
	Accept bool   `json:"accept"`
	// Next says what the host does with it: sends it to a peer (by which
	// AllowedIPs entry) or delivers it.
	Next string `json:"next,omitempty"`
}

// explainPacket resolves from and to (host names or addresses) in the
// compiled network and follows a packet of proto/port from one to the other.
func explainPacket(s *spec.Spec, hosts []intent.Host, from, to, proto string, port uint16) (*explanation, error) {
	ins := make([]netmodel.Input, len(hosts))
	for i := range hosts {
		ins[i] = netmodel.FromIntent(&hosts[i], hosts[i].PrivateKey.Public())
	}
	nm := netmodel.New(ins)
	pol := policy.Resolve(s)
	dst, toHost, err := explainEnd(nm, s, to, netip.Addr{})
	if err != nil {
		return nil, err
	}
	src, fromHost, err := explainEnd(nm, s, from, dst)
	if err != nil {
		return nil, err
	}
	if src.Is4() != dst.Is4() {
		return nil, fmt.Errorf("%s and %s are of different IP families", src, dst)
	}
	pkt := policy.Packet{Src: src, Dst: dst, Proto: proto, Port: port}
	e := &explanation{From: from, To: to, Packet: pkt.String(), Passes: true}
	e.Policy = verdictText(policy.Eval(&pol.Filter, pkt))
	w := nm.Walk(fromHost, src, dst, nil)
	for i, h := range w.Hops {
		if !e.Passes {
			break // dropped at the hop before
		}
		hr := hopReport{Host: h.Name, Accept: true}
		if i > 0 {
			v := policy.Eval(&hosts[h.Host].Firewall.Filter, pkt)
			hr.Filter, hr.Accept = verdictText(v), v.Accept
			if !v.Accept {
				e.Passes, e.DecidedBy = false, fmt.Sprintf("%s's filter: %s", h.Name, v.Origin)
			}
		}
		switch {
		case h.Peer >= 0:
			hr.Next = fmt.Sprintf("sends it to peer %s (AllowedIPs %s)", netmodel.Label(&nm.Hosts[h.Host].Peers[h.Peer]), h.Prefix)
		case w.Fail == netmodel.Delivered && i == len(w.Hops)-1:
			hr.Next = "delivers it to itself"
			if p, ok := nm.Hosts[h.Host].SubnetOf(dst); ok && !nm.Hosts[h.Host].Owns(dst) {
				hr.Next = "delivers it to its subnet " + p.String()
			}
		}
		e.Hops = append(e.Hops, hr)
	}
	switch {
	case w.Fail != netmodel.Delivered:
		if last := &e.Hops[len(e.Hops)-1]; e.Passes && last.Next == "" {
			last.Next = "stops here"
		}
		e.Passes = false
		if e.DecidedBy == "" {
			e.DecidedBy = "route: " + w.Reason
			if toHost >= 0 && s.Topology == spec.TopologyMesh && !pol.CanTalk(pol.Hosts[nm.Hosts[fromHost].Name], pol.Hosts[nm.Hosts[toHost].Name]) {
				e.DecidedBy += fmt.Sprintf(" (the policy never lets %s and %s talk, so they are no peers)", nm.Hosts[fromHost].Name, nm.Hosts[toHost].Name)
			}
		}
	case w.Last() != toHost && toHost >= 0:
		e.Passes, e.DecidedBy = false, fmt.Sprintf("route: delivered to %s, not %s", nm.Hosts[w.Last()].Name, nm.Hosts[toHost].Name)
	case e.Passes:
		back := nm.Walk(w.Last(), dst, src, nil)
		e.Reply = back.Names()
		if back.Fail != netmodel.Delivered {
			e.Passes, e.DecidedBy = false, "reply route: "+back.Reason
		} else {
			e.DecidedBy = lastFilter(e.Hops)
		}
	}
	return e, nil
}

// explainEnd resolves one end: a host name (its address of like's family, or
// its first) or an address, and the host it is of (-1: none).
func explainEnd(nm *netmodel.Network, s *spec.Spec, name string, like netip.Addr) (netip.Addr, int, error) {
	if h := nm.Host(name); h != nil {
		if like.IsValid() {
			if a, ok := h.Source(like); ok {
				return a, h.Index, nil
			}
		}
		if len(h.Addresses) == 0 {
			return netip.Addr{}, -1, fmt.Errorf("host %s has no address", name)
		}
		return h.Addresses[0].Addr(), h.Index, nil
	}
	a, err := netip.ParseAddr(name)
	if err != nil {
		return netip.Addr{}, -1, fmt.Errorf("%q: not a host of %s nor an IP address", name, s.Network)
	}
	for _, h := range nm.Hosts {
		if _, sub := h.SubnetOf(a); h.Owns(a) || sub {
			return a, h.Index, nil
		}
	}
	return a, -1, nil
}

func verdictText(v policy.Verdict) string {
	if v.Accept {
		return "accept: " + v.Origin
	}
	return "drop: " + v.Origin
}

// lastFilter names the rule of the last filter the packet met, or says none did.
func lastFilter(hops []hopReport) string {
	for i := len(hops) - 1; i >= 0; i-- {
		if hops[i].Filter != "" {
			return hops[i].Host + "'s filter: " + strings.SplitN(hops[i].Filter, ": ", 2)[1]
		}
	}
	return "no filter on the way"
}

func (e *explanation) writeText(w io.Writer) {
	verdict := "passes"
	if !e.Passes {
		verdict = "does not pass"
	}
	fmt.Fprintf(w, "%s → %s, %s: %s\n", e.From, e.To, e.Packet, verdict)
	for i, h := range e.Hops {
		parts := []string{}
		if h.Filter != "" {
			parts = append(parts, "filter "+h.Filter)
		}
		if h.Next != "" && h.Accept {
			parts = append(parts, h.Next)
		}
		fmt.Fprintf(w, "  %s. %s: %s\n", strconv.Itoa(i+1), h.Host, strings.Join(parts, "; "))
	}
	if len(e.Reply) > 0 {
		fmt.Fprintf(w, "  reply: %s (replies of an accepted connection pass the filters)\n", strings.Join(e.Reply, " → "))
	}
	fmt.Fprintf(w, "decided by %s\n", e.DecidedBy)
	fmt.Fprintf(w, "the policy as a whole: %s\n", e.Policy)
}
