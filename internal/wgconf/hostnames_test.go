package wgconf

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHostNames(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"out/s1/wg0.conf", "out/s2/wg0.conf"}, []string{"s1", "s2"}},
		{[]string{"s1.conf", "conf/s2.conf"}, []string{"s1", "s2"}},
		{[]string{"out/s1/wg0.conf"}, []string{"s1"}},
		{[]string{"wg0.conf"}, []string{"wg0"}},
		{[]string{"/etc/wireguard/wg0.conf"}, []string{"wg0"}},
		{[]string{"a/x.conf", "b/x.conf", "c/a/x.conf"}, []string{"a/x", "b", "c/a/x"}},
		{[]string{"a/hub.conf", "b/hub.conf"}, []string{"a", "b"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, HostNames(tt.in)); diff != "" {
			t.Errorf("HostNames(%v) (-want +got):\n%s", tt.in, diff)
		}
	}
}
