package wgconf

import "testing"

func TestForwards(t *testing.T) {
	// The compiler's hooks (internal/compile HookForwardV4/V6), copied: compile
	// imports this package.
	const (
		compiledV4 = "sysctl -q -w net.ipv4.conf.%i.forwarding=1"
		compiledV6 = "if [ -e /proc/sys/net/ipv6/conf/%i/force_forwarding ]; then sysctl -q -w net.ipv6.conf.%i.force_forwarding=1; else sysctl -q -w net.ipv6.conf.all.forwarding=1; fi"
	)
	tests := []struct {
		name   string
		postUp []string
		v4, v6 bool
	}{
		{"none", nil, false, false},
		{"compiled v4", []string{compiledV4}, true, false},
		{"compiled v6", []string{compiledV6}, false, true},
		{"compiled both", []string{"wg set %i private-key /etc/wireguard/wg0.key", compiledV4, compiledV6}, true, true},
		{"global ip_forward", []string{"sysctl -w net.ipv4.ip_forward=1"}, true, false},
		{"slashed form, quoted", []string{`sysctl -w 'net/ipv4/conf/all/forwarding=1' && sysctl -w "net/ipv6/conf/all/forwarding=1"`}, true, true},
		{"turned off is not on", []string{"sysctl -w net.ipv4.ip_forward=0", "sysctl -w net.ipv6.conf.all.forwarding=0"}, false, false},
		{"a longer value is not 1", []string{"sysctl -w net.ipv4.conf.all.forwarding=10"}, false, false},
		{"reading is not setting", []string{"sysctl net.ipv4.ip_forward", "cat /proc/sys/net/ipv6/conf/all/forwarding"}, false, false},
		{"other sysctls", []string{"sysctl -w net.ipv4.conf.all.rp_filter=1"}, false, false},
		{"echo to proc", []string{"echo 1 > /proc/sys/net/ipv4/ip_forward", "echo 1 >/proc/sys/net/ipv6/conf/all/forwarding"}, true, true},
		{"echo 0 to proc", []string{"echo 0 > /proc/sys/net/ipv4/ip_forward"}, false, false},
		{"another interface does not forward tunnel traffic", []string{"sysctl -w net.ipv4.conf.eth0.forwarding=1", "sysctl -w net.ipv4.conf.default.forwarding=1"}, false, false},
		{"v6 per-interface forwarding is not forwarding", []string{"sysctl -w net.ipv6.conf.%i.forwarding=1"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Interface: Interface{PostUp: tt.postUp}}
			if v4, v6 := c.Forwards(); v4 != tt.v4 || v6 != tt.v6 {
				t.Errorf("Forwards() = %v, %v; want %v, %v", v4, v6, tt.v4, tt.v6)
			}
			// Only PostUp counts: the same lines elsewhere do nothing.
			other := &Config{Interface: Interface{PreUp: tt.postUp, PostDown: tt.postUp}}
			if v4, v6 := other.Forwards(); v4 || v6 {
				t.Errorf("hooks outside PostUp counted: %v, %v", v4, v6)
			}
		})
	}
}
