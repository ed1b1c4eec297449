package up

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/wgconf"
)

// TestForwardingHookKeepsItsMeaning: `PostUp = sysctl -w net.ipv4.ip_forward=1`
// is run as written (the whole host forwards, as with wg-quick), not turned
// into forwarding on the interface only; down leaves it set, as wg-quick does,
// and says so. wgnet's own narrow line is still done natively and restored.
func TestForwardingHookKeepsItsMeaning(t *testing.T) {
	fx := newFixture(t)
	run := fx.opts.RunHook
	fx.opts.RunHook = func(ctx context.Context, cmd string) error {
		if cmd == "sysctl -w net.ipv4.ip_forward=1" {
			fx.host.SetSysctlValue("net/ipv4/ip_forward", "1") // what the real sysctl does
		}
		return run(ctx, cmd)
	}
	src := "[Interface]\nPrivateKey = " + fixedPrivate(21).Base64() + "\nAddress = 10.8.0.1/24\nListenPort = 51820\n" +
		"PreUp =\nPostUp = sysctl -w net.ipv4.ip_forward=1\nPostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1\n" +
		"PostUp = iptables -t nat -A POSTROUTING -s 10.8.0.0/24 -o eth0 -j MASQUERADE\nPreDown =\n" +
		"PostDown = iptables -t nat -D POSTROUTING -s 10.8.0.0/24 -o eth0 -j MASQUERADE\n\n[Peer]\nPublicKey = " +
		fixedPeer(22).String() + "\nAllowedIPs = 10.8.0.2/32\n"
	c, err := wgconf.Parse("wg0.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Up(context.Background(), req("wg0", c, false, false), fx.opts); err != nil {
		t.Fatalf("Up: %v\n%s", err, fx.log.String())
	}
	if !slices.Contains(fx.hooks, "sysctl -w net.ipv4.ip_forward=1") || slices.Contains(fx.hooks, "sysctl -q -w net.ipv4.conf.wg0.forwarding=1") {
		t.Errorf("hooks run: %q; want the global line run as written and the interface's done natively", fx.hooks)
	}
	snap := fx.host.Snapshot()
	if snap.Sysctls["net/ipv4/ip_forward"] != "1" || snap.Sysctls["net/ipv4/conf/wg0/forwarding"] != "1" {
		t.Errorf("ip_forward %q, wg0 forwarding %q; want 1 and 1", snap.Sysctls["net/ipv4/ip_forward"], snap.Sysctls["net/ipv4/conf/wg0/forwarding"])
	}
	st, err := LoadState(fx.opts.StateDir, "wg0")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Kept) != 1 || st.Kept[0] != (SysctlChange{Key: "net/ipv4/ip_forward", Old: "0", New: "1"}) {
		t.Errorf("state kept %+v", st.Kept)
	}
	fx.log.Reset()
	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fx.log.String(), "net.ipv4.ip_forward=1 stays set (it was 0)") {
		t.Errorf("down does not say ip_forward stays:\n%s", fx.log.String())
	}
	if v, _ := fx.host.Sysctl("net/ipv4/ip_forward"); v != "1" {
		t.Errorf("down changed ip_forward to %s; wg-quick leaves it", v)
	}
}
