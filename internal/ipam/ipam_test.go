package ipam

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func TestNext(t *testing.T) {
	tests := []struct {
		name   string
		subnet string
		used   []netip.Addr
		want   string // "" = ErrFull
	}{
		{"empty /24 starts at .1", "192.168.100.0/24", nil, "192.168.100.1"},
		{"lowest free, not after the highest", "192.168.100.0/24", addrs("192.168.100.1", "192.168.100.10"), "192.168.100.2"},
		{"fills a hole", "10.0.0.0/24", addrs("10.0.0.1", "10.0.0.2", "10.0.0.4"), "10.0.0.3"},
		{"unmasked subnet is masked", "10.0.0.7/24", nil, "10.0.0.1"},
		{"ignores addresses outside", "10.0.0.0/24", addrs("10.0.1.1", "fd00::1"), "10.0.0.1"},
		{"network address in used changes nothing", "10.0.0.0/24", addrs("10.0.0.0"), "10.0.0.1"},
		{"4in6 used counts", "10.0.0.0/24", addrs("::ffff:10.0.0.1"), "10.0.0.2"},
		{"/24 full: broadcast never used", "10.0.0.0/24", seq("10.0.0.1", 254), ""},
		{"/24 last host", "10.0.0.0/24", seq("10.0.0.1", 253), "10.0.0.254"},
		{"/30 two hosts", "10.0.0.4/30", nil, "10.0.0.5"},
		{"/30 second", "10.0.0.4/30", addrs("10.0.0.5"), "10.0.0.6"},
		{"/30 full", "10.0.0.4/30", addrs("10.0.0.5", "10.0.0.6"), ""},
		{"/31 holds two hosts (RFC 3021): network first", "10.0.0.6/31", nil, "10.0.0.6"},
		{"/31 second", "10.0.0.6/31", addrs("10.0.0.6"), "10.0.0.7"},
		{"/31 second after a hand-written first", "10.0.0.6/31", addrs("10.0.0.7"), "10.0.0.6"},
		{"/31 full", "10.0.0.6/31", addrs("10.0.0.6", "10.0.0.7"), ""},
		{"/32 always full", "10.0.0.9/32", nil, ""},
		{"v6 skips only the anycast address", "fd00:100::/64", nil, "fd00:100::1"},
		{"v6 fills hole", "fd00:100::/64", addrs("fd00:100::1", "fd00:100::3"), "fd00:100::2"},
		{"v6 all-ones host is usable", "fd00::/126", addrs("fd00::1", "fd00::2"), "fd00::3"},
		{"v6 /126 full", "fd00::/126", addrs("fd00::1", "fd00::2", "fd00::3"), ""},
		{"v6 /127 holds two hosts (RFC 6164)", "fd00::/127", nil, "fd00::"},
		{"v6 /127 second", "fd00::/127", addrs("fd00::"), "fd00::1"},
		{"v6 /127 full", "fd00::/127", addrs("fd00::", "fd00::1"), ""},
		{"/128 always full", "fd00::1/128", nil, ""},
		{"v6 zone ignored", "fe80::/64", addrs("fe80::1%eth0"), "fe80::2"},
		{"top of the address space", "255.255.255.252/30", addrs("255.255.255.253"), "255.255.255.254"},
		{"top of the v6 space", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", addrs("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Next(netip.MustParsePrefix(tt.subnet), tt.used)
			if tt.want == "" {
				if !errors.Is(err, ErrFull) {
					t.Fatalf("Next = %v, %v; want ErrFull", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.String()); diff != "" {
				t.Errorf("Next (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNextInvalid(t *testing.T) {
	if _, err := Next(netip.Prefix{}, nil); err == nil || errors.Is(err, ErrFull) {
		t.Errorf("Next(invalid) error = %v, want a non-ErrFull error", err)
	}
}

func seq(first string, n int) []netip.Addr {
	a := netip.MustParseAddr(first)
	var out []netip.Addr
	for range n {
		out = append(out, a)
		a = a.Next()
	}
	return out
}

func TestCheck(t *testing.T) {
	tests := []struct {
		subnet, addr string
		want         string // "" = usable
	}{
		{"192.168.100.0/24", "192.168.100.1", ""},
		{"192.168.100.0/24", "192.168.100.254", ""},
		{"192.168.100.0/24", "192.168.100.0", "192.168.100.0 is the network address of 192.168.100.0/24"},
		{"192.168.100.0/24", "192.168.100.255", "192.168.100.255 is the broadcast address of 192.168.100.0/24"},
		{"192.168.100.0/24", "192.168.101.1", "192.168.101.1 is outside 192.168.100.0/24"},
		{"192.168.100.0/24", "fd00::1", "fd00::1 is outside 192.168.100.0/24"},
		{"10.0.0.6/31", "10.0.0.7", ""},
		{"10.0.0.6/31", "10.0.0.6", ""}, // RFC 3021
		{"fd00::/127", "fd00::", ""},    // RFC 6164
		{"fd00::/127", "fd00::1", ""},
		{"10.0.0.9/32", "10.0.0.9", "10.0.0.9 is the network address of 10.0.0.9/32"},
		{"fd00:100::/64", "fd00:100::", "fd00:100:: is the network (subnet-router anycast) address of fd00:100::/64"},
		{"fd00:100::/64", "fd00:100::ffff:ffff:ffff:ffff", ""},
		{"fe80::/64", "fe80::1%eth0", "fe80::1%eth0: an overlay address has no zone"},
	}
	for _, tt := range tests {
		t.Run(tt.subnet+" "+tt.addr, func(t *testing.T) {
			err := Check(netip.MustParsePrefix(tt.subnet), netip.MustParseAddr(tt.addr))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSizeAndBroadcast(t *testing.T) {
	tests := []struct {
		subnet    string
		size      uint64
		broadcast string
	}{
		{"10.0.0.0/24", 254, "10.0.0.255"},
		{"10.0.0.0/30", 2, "10.0.0.3"},
		{"10.0.0.0/31", 2, ""},
		{"10.0.0.0/32", 0, ""},
		{"0.0.0.0/0", 1<<32 - 2, "255.255.255.255"},
		{"fd00::/64", 1 << 62, ""},
		{"fd00::/120", 255, ""},
		{"fd00::/127", 2, ""},
		{"fd00::/128", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.subnet, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.subnet)
			if got := Size(p); got != tt.size {
				t.Errorf("Size = %d, want %d", got, tt.size)
			}
			b, ok := Broadcast(p)
			got := ""
			if ok {
				got = b.String()
			}
			if got != tt.broadcast {
				t.Errorf("Broadcast = %q, want %q", got, tt.broadcast)
			}
		})
	}
}

// slowNext is the obvious version: try every address of the subnet in order.
func slowNext(subnet netip.Prefix, used []netip.Addr) (netip.Addr, bool) {
	for a := subnet.Masked().Addr(); a.IsValid() && subnet.Contains(a); a = a.Next() {
		if Check(subnet, a) != nil {
			continue
		}
		free := true
		for _, u := range used {
			if u == a {
				free = false
			}
		}
		if free {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// TestNextMatchesSlow checks Next and Size against slowNext on small random subnets,
// filling each one completely, so every usable address is handed out exactly once.
func TestNextMatchesSlow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		var p netip.Prefix
		if r.IntN(2) == 0 {
			b := [4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
			p = netip.PrefixFrom(netip.AddrFrom4(b), 24+r.IntN(9)).Masked()
		} else {
			var b [16]byte
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), 120+r.IntN(9)).Masked()
		}
		// Start from a random set of used addresses, some outside p.
		var used []netip.Addr
		for a := p.Addr(); p.Contains(a); a = a.Next() {
			if r.IntN(3) == 0 {
				used = append(used, a)
			}
		}
		used = append(used, netip.MustParseAddr("1.2.3.4"))
		for {
			got, err := Next(p, used)
			want, ok := slowNext(p, used)
			if !ok {
				if !errors.Is(err, ErrFull) {
					t.Fatalf("case %d: Next(%s) = %v, %v; want ErrFull", i, p, got, err)
				}
				break
			}
			if err != nil || got != want {
				t.Fatalf("case %d: Next(%s) = %v, %v; want %v", i, p, got, err, want)
			}
			if Check(p, got) != nil {
				t.Fatalf("case %d: Next(%s) handed out unusable %v", i, p, got)
			}
			used = append(used, got)
		}
		var usable uint64
		for a := p.Addr(); p.Contains(a); a = a.Next() {
			if Check(p, a) == nil {
				usable++
			}
		}
		if Size(p) != usable {
			t.Fatalf("Size(%s) = %d, want %d", p, Size(p), usable)
		}
	}
}

func BenchmarkNextV6(b *testing.B) {
	p := netip.MustParsePrefix("fd00::/64")
	used := seq("fd00::1", 1000)
	for b.Loop() {
		if _, err := Next(p, used); err != nil {
			b.Fatal(err)
		}
	}
}
