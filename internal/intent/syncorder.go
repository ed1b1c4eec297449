package intent

import (
	"cmp"
	"slices"
	"strings"
)

// SyncStep is one host to sync after a render, and why it comes where it does.
type SyncStep struct {
	Host   string `json:"host"`
	Reason string `json:"reason,omitempty"`
}

// SyncOrder returns the changed hosts in the order to sync them: first the hosts
// that other changed hosts dial (a peer with their Endpoint; the dialled side must
// know a new peer before its handshake comes: the hub before its spokes), most
// dialled first; then the hosts whose routed subnets changed (routesChanged), so
// that a subnet forwards before the others route it there; then the rest, in the
// order of hosts. Hosts that are not changed are left out.
func SyncOrder(hosts []Host, changed, routesChanged func(name string) bool) []SyncStep {
	dialers := map[string][]string{}
	for _, h := range hosts {
		if !changed(h.Name) {
			continue
		}
		for _, p := range h.Peers {
			if p.Endpoint != nil && p.Name != "" && p.Name != h.Name {
				dialers[p.Name] = append(dialers[p.Name], h.Name)
			}
		}
	}
	type ranked struct {
		SyncStep
		dialled, routes bool
		n, i            int
	}
	var rs []ranked
	for i, h := range hosts {
		if !changed(h.Name) {
			continue
		}
		r := ranked{SyncStep: SyncStep{Host: h.Name}, n: len(dialers[h.Name]), i: i}
		r.dialled, r.routes = r.n > 0, routesChanged(h.Name)
		var why []string
		if r.dialled {
			why = append(why, "dialled by "+strings.Join(dialers[h.Name], ", "))
		}
		if r.routes {
			why = append(why, "its routed subnets changed")
		}
		r.Reason = strings.Join(why, "; ")
		rs = append(rs, r)
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if c := -cmp.Compare(a.n, b.n); c != 0 {
			return c
		}
		if a.routes != b.routes {
			if a.routes {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.i, b.i)
	})
	out := make([]SyncStep, len(rs))
	for i, r := range rs {
		out[i] = r.SyncStep
	}
	return out
}
