package intent

import "strings"

// hostFirewallComment starts the comment the compiler writes into a rendered
// config of a host whose spec opts in to opening its forward firewall:
// "host_firewall docker: wgnet up adds accepts for the overlay to ...".
const hostFirewallComment = "host_firewall "

// HostFirewallComment is that comment for mode.
func HostFirewallComment(mode string) string {
	return hostFirewallComment + mode + ": `wgnet up` of this file adds accept rules for the overlay and the routed subnets to the host's forward firewall (Docker's DOCKER-USER, or FORWARD) and removes them on down."
}

// CommentedHostFirewall returns the mode named by that comment, so that `up` of
// a rendered file opts in as `up --host` does; "" when there is none.
func CommentedHostFirewall(comments []string) string {
	for _, c := range comments {
		rest, ok := strings.CutPrefix(strings.TrimSpace(c), hostFirewallComment)
		if !ok {
			continue
		}
		if mode, _, ok := strings.Cut(rest, ":"); ok && !strings.ContainsAny(mode, " \t") {
			return mode
		}
	}
	return ""
}
