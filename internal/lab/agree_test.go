package lab

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wgnet/wgnet/internal/check"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// TestReachAgrees asks three of them "does A reach B, through whom" on a few
// networks: the lab (real wireguard-go, real packets), its explanation of a
// probe and its route, and check (check.Reach). The explanation and check's
// answer come from the same network model; the probes are the ground truth
// they must match. One network has a self-peer, which explain used to follow
// ("s2 lists itself as a peer") where WireGuard ignores it.
func TestReachAgrees(t *testing.T) {
	s3 := netip.MustParsePrefix("192.168.100.12/32")
	tests := []struct {
		name   string
		mesh   bool
		break_ func(cfgs map[string]*wgconf.Config)
		failed int // probes that fail
	}{
		{"hub", false, func(map[string]*wgconf.Config) {}, 0},
		{"mesh", true, func(map[string]*wgconf.Config) {}, 0},
		{"hub without forwarding", false, func(cfgs map[string]*wgconf.Config) {
			cfgs["s1"].Interface.PostUp = nil
		}, 6},
		{"self-peer", false, func(cfgs map[string]*wgconf.Config) {
			// A /32 more specific than the hub's /24: explain took it.
			s2 := cfgs["s2"]
			s2.Peers = append(s2.Peers, wgconf.Peer{Name: "me", PublicKey: s2.Interface.PrivateKey.Public(), AllowedIPs: []netip.Prefix{s3}})
		}, 0},
		{"source not allowed", false, func(cfgs map[string]*wgconf.Config) {
			for i := range cfgs["s3"].Peers {
				cfgs["s3"].Peers[i].AllowedIPs = []netip.Prefix{netip.MustParsePrefix("192.168.100.10/32"), netip.MustParsePrefix("10.0.0.0/8")}
			}
		}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfgs := demoConfigs(t, tt.mesh)
			tt.break_(cfgs)
			var list []*wgconf.Config
			for _, name := range slices.Sorted(func(yield func(string) bool) {
				for k := range cfgs {
					if !yield(k) {
						return
					}
				}
			}) {
				list = append(list, cfgs[name])
			}
			hosts, _ := FromConfigs(list)
			l, m := runLab(t, hosts)
			ex := l.explainer()
			if got := len(m.Problems()); tt.failed >= 0 && got != tt.failed || tt.failed < 0 && got == 0 {
				t.Errorf("%d probes fail, want %d (-1: some): %q", got, tt.failed, problemNames(m))
			}
			if tt.name == "self-peer" {
				if path, err := ex.route("s2", s3.Addr()); err != nil || !slices.Equal(path, []string{"s2", "s1", "s3"}) {
					t.Errorf("s2 -> s3 goes %q, %v; want through the hub, the self-peer ignored", path, err)
				}
			}
			for _, p := range m.Probes {
				what := p.From + " -> " + p.To.String()
				r, ok := check.Reach(check.Input{Configs: list}, p.From, p.To.Host, p.To.Addr)
				if !ok {
					t.Fatalf("%s: check does not know the hosts", what)
				}
				if r.OK() != p.OK() {
					t.Errorf("%s: the lab's probe says ok=%v, check says ok=%v (%s)", what, p.OK(), r.OK(), r.Reason)
					continue
				}
				if !p.OK() {
					if why := ex.explain(p.From, p.To, false); why != r.Reason {
						t.Errorf("%s: explain says %q, check %q", what, why, r.Reason)
					}
					continue
				}
				path, err := ex.route(p.From, p.To.Addr)
				if err != nil {
					t.Errorf("%s: reachable, but explain's route says %v", what, err)
					continue
				}
				if diff := cmp.Diff(path, r.Out.Names()); diff != "" {
					t.Errorf("%s: path of explain (-) and check (+):\n%s", what, diff)
				}
			}
		})
	}
}
