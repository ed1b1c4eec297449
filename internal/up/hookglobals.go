package up

import (
	"slices"

	"github.com/wgnet/wgnet/internal/hostnet"
)

// hostWideForwarding are the host-wide forwarding switches a user's hook may
// turn on (`PostUp = sysctl -w net.ipv4.ip_forward=1`). wgnet runs such a hook as
// written, as wg-quick does, so that it keeps its meaning (the whole host
// forwards, which a server that masquerades to its uplink needs), and like
// wg-quick leaves the switch as the hooks left it on down; down says so.
var hostWideForwarding = []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"}

// readHostWide reads the host-wide forwarding switches; one that can't be read
// is left out.
func readHostWide(h hostnet.HostNet) map[string]string {
	out := map[string]string{}
	for _, k := range hostWideForwarding {
		if v, err := h.Sysctl(k); err == nil {
			out[k] = v
		}
	}
	return out
}

// keepHookChanges records in st.Kept the host-wide forwarding switches the
// hooks changed since before (read before the PreUp hooks): those wgnet changed
// itself (st.Sysctls) are its own, restored on down.
func keepHookChanges(h hostnet.HostNet, st *State, before map[string]string) {
	after := readHostWide(h)
	for _, k := range hostWideForwarding {
		old, ok1 := before[k]
		now, ok2 := after[k]
		if !ok1 || !ok2 || old == now || slices.ContainsFunc(st.Sysctls, func(c SysctlChange) bool { return c.Key == k }) {
			continue
		}
		mergeSysctl(&st.Kept, SysctlChange{Key: k, Old: old, New: now})
	}
}
