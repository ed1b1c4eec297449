package compile

import (
	"fmt"
	"strings"

	"github.com/wgnet/wgnet/internal/intent"
)

// Explain renders who peers with whom and what each peer routes, as a Mermaid
// flowchart: one arrow per peer entry, labelled with the AllowedIPs that send
// traffic that way, and hosts that forward marked as such.
func Explain(hcs []intent.Host) string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, hc := range hcs {
		label := hc.Name
		var notes []string
		if hc.Forward.Any() {
			notes = append(notes, "forwards")
		}
		if len(hc.Routes) > 0 {
			notes = append(notes, "routes "+joinPrefixes(hc.Routes))
		}
		if len(notes) > 0 {
			label += "<br/>" + strings.Join(notes, "; ")
		}
		fmt.Fprintf(&b, "  %s[\"%s\"]\n", mermaidID(hc.Name), label)
	}
	for _, hc := range hcs {
		for _, p := range hc.Peers {
			arrow := "-->"
			if p.Endpoint == nil {
				arrow = "-.->" // waits to be dialled
			}
			fmt.Fprintf(&b, "  %s %s|\"%s\"| %s\n", mermaidID(hc.Name), arrow, joinPrefixes(p.AllowedIPs), mermaidID(p.Name))
		}
	}
	return b.String()
}

func mermaidID(name string) string {
	return "h_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
}
