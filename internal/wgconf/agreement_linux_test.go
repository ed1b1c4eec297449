package wgconf

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAgreementWithWg feeds every file of testdata/agreement to the real tools,
// `wg-quick strip` and `wg setconf` into a throw-away Debian wireguard-go device,
// and checks that Parse agrees with them:
//
//   - a file wg (or wg-quick strip) rejects, Parse rejects; a file without
//     wg-quick keys gets the same verdict from `wg setconf` directly;
//   - a file wg accepts, Parse accepts, unless the file says "# stricter: WHY"
//     (the intended differences, each with its reason in the file);
//   - for a file both accept, `wg showconf` parses, and the device holds the
//     peers, keys, AllowedIPs, endpoints and keepalives that the Config says
//     (with wg's own semantics: a prefix given to two peers goes to the later
//     one, two peers with one key merge);
//   - Stripped() of that Config is exactly what `wg-quick strip` makes of
//     WgQuick(), and wg accepts it and ends up in the same state.
//
// One device serves every case: `wg setconf` replaces the whole configuration.
func TestAgreementWithWg(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace with a wireguard-go device")
	}
	for _, tool := range []string{"wg", "wg-quick", "wireguard-go", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (packages wireguard-tools, wireguard-go, iproute2): %v", tool, err)
		}
	}
	dev := startDevice(t)
	dir := t.TempDir()

	for _, path := range corpus(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".conf")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			stricter := stricterReason(src)
			cfg, perr := Parse(filepath.Base(path), src)
			wgErr := dev.setconfQuick(dir, src)
			if dev.wgOnly(dir, src) {
				// Nothing for wg-quick in it: wg must give the same verdict on
				// the file itself.
				if direct := dev.setconf(dir, src); (direct == nil) != (wgErr == nil) {
					t.Fatalf("wg setconf of the file says %v, of wg-quick strip's output %v", direct, wgErr)
				}
			}
			switch {
			case wgErr != nil && perr == nil:
				t.Fatalf("wg rejects the file but Parse accepts it:\n%v", wgErr)
			case wgErr != nil:
				if stricter != "" {
					t.Logf("marked stricter, but this wg rejects it too: %v", wgErr)
				}
				return
			case perr != nil && stricter == "":
				t.Fatalf("wg accepts the file but Parse rejects it (mark it \"# stricter: WHY\" if intended):\n%v", perr)
			case perr != nil:
				t.Logf("intended difference (wg accepts, wgnet rejects): %s", stricter)
				return
			case stricter != "":
				t.Fatalf("marked stricter (%s), but Parse accepts it", stricter)
			}

			want := deviceView(cfg)
			if diff := cmp.Diff(want, dev.view(t, want)); diff != "" {
				t.Errorf("device after `wg setconf` differs from the Config (-want +got):\n%s", diff)
			}

			// Our renderings: wg-quick strip of WgQuick() is Stripped(), and wg
			// reads Stripped() into the same state.
			stripped, err := dev.strip(dir, cfg.WgQuick())
			if err != nil {
				t.Fatalf("wg-quick strip of WgQuick(): %v", err)
			}
			if diff := cmp.Diff(string(cfg.Stripped())+"\n", stripped); diff != "" {
				t.Errorf("Stripped() differs from `wg-quick strip` of WgQuick() (-want +got):\n%s", diff)
			}
			if err := dev.setconf(dir, cfg.Stripped()); err != nil {
				t.Fatalf("wg rejects Stripped(): %v", err)
			}
			if diff := cmp.Diff(want, dev.view(t, want)); diff != "" {
				t.Errorf("device after `wg setconf` of Stripped() differs (-want +got):\n%s", diff)
			}
		})
	}
}

// stricterReason returns the text of a "# stricter: WHY" line, or "".
func stricterReason(src []byte) string {
	for _, line := range strings.Split(string(src), "\n") {
		if r, ok := strings.CutPrefix(strings.TrimSpace(line), "# stricter:"); ok {
			return strings.TrimSpace(r)
		}
	}
	return ""
}

// wgDevice is a Debian wireguard-go device in a network namespace of its own.
type wgDevice struct {
	ns, name string
}

func startDevice(t *testing.T) *wgDevice {
	t.Helper()
	// The UAPI socket /var/run/wireguard/NAME.sock is shared by every namespace:
	// the name must be unique on the machine, and 15 characters at most.
	id := fmt.Sprintf("%x%04x", os.Getpid()&0xfffff, rand.IntN(0x10000))
	d := &wgDevice{ns: "wgt-wgconf-" + id, name: "wgcf" + id}
	if out, err := exec.Command("ip", "netns", "add", d.ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", d.ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", d.ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", d.ns, err, out)
		}
	})

	var log bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", d.ns, "wireguard-go", "-f", d.name)
	cmd.Env = append(os.Environ(), "WG_PROCESS_FOREGROUND=1")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start wireguard-go: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	sock := "/var/run/wireguard/" + d.name + ".sock"
	t.Cleanup(func() {
		// SIGTERM lets wireguard-go remove its socket; kill it if it lingers.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = os.Remove(sock) // ours: the name is unique
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := d.wg("show", d.name); err == nil {
			return d
		}
		select {
		case <-exited:
			t.Fatalf("wireguard-go exited: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go device %s did not come up: %s", d.name, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wg runs wg(8) inside the namespace, bounded in time, and returns its stdout.
// Name resolution is not retried: the corpus only names localhost.
func (d *wgDevice) wg(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", d.ns, "wg"}, args...)...)
	cmd.Env = append(os.Environ(), "WG_ENDPOINT_RESOLUTION_RETRIES=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("wg %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// strip runs `wg-quick strip` on src. wg-quick wants the file to be called
// IFACE.conf with a valid interface name, and not world-readable.
func (d *wgDevice) strip(dir string, src []byte) (string, error) {
	path := filepath.Join(dir, "wgc.conf")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "wg-quick", "strip", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("wg-quick strip: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// setconfQuick does what `wg-quick up` does with the file's wg part.
func (d *wgDevice) setconfQuick(dir string, src []byte) error {
	stripped, err := d.strip(dir, src)
	if err != nil {
		return err
	}
	return d.setconf(dir, []byte(stripped))
}

// wgOnly reports whether src has nothing that wg-quick strip removes.
func (d *wgDevice) wgOnly(dir string, src []byte) bool {
	stripped, err := d.strip(dir, src)
	if err != nil {
		return false
	}
	lines := func(s string) int { return len(strings.Split(strings.TrimRight(s, "\n"), "\n")) }
	return lines(stripped) == lines(string(src))
}

func (d *wgDevice) setconf(dir string, conf []byte) error {
	path := filepath.Join(dir, "setconf.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		return err
	}
	_, err := d.wg("setconf", d.name, path)
	return err
}

// view reads the device back with `wg showconf`, which must parse. Fields that
// want leaves open (a random port, a resolved host name) are copied from it.
func (d *wgDevice) view(t *testing.T, want devView) devView {
	t.Helper()
	out, err := d.wg("showconf", d.name)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("showconf", []byte(out))
	if err != nil {
		t.Fatalf("`wg showconf` output does not parse: %v", err)
	}
	got := deviceView(cfg)
	if want.ListenPort == 0 {
		got.ListenPort = 0
	}
	for i := range got.Peers {
		if j := slices.IndexFunc(want.Peers, func(p devPeer) bool { return p.PublicKey == got.Peers[i].PublicKey }); j >= 0 && want.Peers[j].Endpoint == "host name" {
			got.Peers[i].Endpoint = "host name"
		}
	}
	return got
}

// devView is what a device holds after `wg setconf`, in a form cmp prints
// without secrets: the private key as its public key, the preshared key as a
// yes/no.
type devView struct {
	PublicKey  string
	ListenPort int // 0: not compared
	FwMark     uint32
	Peers      []devPeer // sorted by key
}

type devPeer struct {
	PublicKey    string
	PresharedKey bool
	AllowedIPs   []string // sorted
	Endpoint     string
	Keepalive    int
}

// deviceView applies cfg the way `wg setconf` does: each [Peer] replaces its
// peer's AllowedIPs, a prefix belongs to the last peer that names it, and two
// [Peer]s with one key are one peer.
func deviceView(cfg *Config) devView {
	v := devView{PublicKey: cfg.Interface.PrivateKey.Public().String(), FwMark: cfg.Interface.FwMark}
	if lp := cfg.Interface.ListenPort; lp != nil {
		v.ListenPort = int(*lp)
	}
	type peer struct {
		devPeer
		allowed map[netip.Prefix]bool
	}
	var order []*peer
	byKey := map[string]*peer{}
	owner := map[netip.Prefix]*peer{}
	for _, p := range cfg.Peers {
		key := p.PublicKey.String()
		dp := byKey[key]
		if dp == nil {
			dp = &peer{devPeer: devPeer{PublicKey: key}}
			byKey[key] = dp
			order = append(order, dp)
		}
		for a := range dp.allowed {
			delete(owner, a)
		}
		dp.allowed = map[netip.Prefix]bool{}
		for _, a := range p.AllowedIPs {
			if o := owner[a]; o != nil && o != dp {
				delete(o.allowed, a)
			}
			owner[a] = dp
			dp.allowed[a] = true
		}
		if !p.PresharedKey.IsZero() {
			dp.PresharedKey = true
		}
		if e := p.Endpoint; e != nil {
			if addr, ok := e.Addr(); ok {
				dp.Endpoint = netip.AddrPortFrom(addr, e.Port).String()
			} else {
				dp.Endpoint = "host name"
			}
		}
		if p.PersistentKeepalive != 0 {
			dp.Keepalive = p.PersistentKeepalive
		}
	}
	for _, dp := range order {
		for a := range dp.allowed {
			dp.AllowedIPs = append(dp.AllowedIPs, a.String())
		}
		slices.Sort(dp.AllowedIPs)
		v.Peers = append(v.Peers, dp.devPeer)
	}
	slices.SortFunc(v.Peers, func(a, b devPeer) int { return strings.Compare(a.PublicKey, b.PublicKey) })
	return v
}
