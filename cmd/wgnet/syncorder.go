package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/wgnet/wgnet/internal/intent"
)

// syncOrder works out, before render writes, in what order to sync the hosts
// whose configs change (intent.SyncOrder): a new peer must be on the host it
// dials before it dials, and a changed subnet must forward before others route
// to it. Whether a host's subnets changed it reads from the file there now.
func syncOrder(n *network, steps []renderStep) []intent.SyncStep {
	changed, routes := map[string]bool{}, map[string]bool{}
	for _, st := range steps {
		if !st.Changed || st.Removed {
			continue
		}
		changed[st.Host] = true
		old, _ := readOwnFile(st.Path) // none yet: a new host
		for _, hc := range n.hosts {
			if hc.Name == st.Host {
				routes[st.Host] = !slices.Equal(intent.CommentedRoutes(fileComments(old)), hc.Routes)
			}
		}
	}
	return intent.SyncOrder(n.hosts, func(h string) bool { return changed[h] }, func(h string) bool { return routes[h] })
}

// writeSyncOrder says which hosts' configs changed and in what order to sync them.
func writeSyncOrder(w io.Writer, n *network, order []intent.SyncStep) error {
	if len(order) == 0 {
		_, err := fmt.Fprintln(w, "no host's config changed: nothing to sync")
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sync the changed hosts in this order (`wgnet sync %s` on each):\n", n.spec.InterfaceName())
	for i, s := range order {
		if s.Reason != "" {
			fmt.Fprintf(&b, "  %d. %s (%s)\n", i+1, s.Host, s.Reason)
		} else {
			fmt.Fprintf(&b, "  %d. %s\n", i+1, s.Host)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fileComments returns the text of a rendered file's comment lines.
func fileComments(data []byte) []string {
	var out []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		if c, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("#")); ok {
			out = append(out, string(bytes.TrimSpace(c)))
		}
	}
	return out
}
