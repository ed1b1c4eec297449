package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/up"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// nsHost is a network namespace with a mount namespace of its own, held open by
// a sleeping process: its own tmpfs on /run, so that its /run/wireguard (UAPI
// sockets are named by path, and paths are shared across network namespaces) is
// its own, while /run/wgnet is one directory that every nsHost of a test shares,
// as /run/wgnet is on a real host.
type nsHost struct {
	ns     *netnstest.NS
	holder int // the sleeping process
	env    []string
}

func newNSHost(t *testing.T, label, sharedRun, confDir string) *nsHost {
	t.Helper()
	h := &nsHost{ns: netnstest.New(t, label)}
	cmd := h.ns.Command(context.Background(), "unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o mode=755 tmpfs /run && mkdir /run/wgnet /run/wireguard && mount --bind "$0" /run/wgnet && echo ready && exec sleep 600`, sharedRun)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.holder = cmd.Process.Pid
	t.Cleanup(func() {
		// Daemons wgnet left running (a failed test), by the PIDs it recorded.
		root := filepath.Join(sharedRun)
		m, _ := filepath.Glob(filepath.Join(root, "*", "*.json"))
		m2, _ := filepath.Glob(filepath.Join(root, "*.json"))
		for _, f := range append(m, m2...) {
			n := strings.TrimSuffix(filepath.Base(f), ".json")
			if st, err := up.ReadState(filepath.Dir(f), n); err == nil && st.PID != 0 {
				if ino, err := nsInode("/proc/" + strconv.Itoa(st.PID) + "/ns/net"); err == nil && ino == h.inode(t) {
					_ = device.Stop(st.PID, n, 2*time.Second)
				}
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("namespace holder: %q, %v", line, err)
	}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "WGNET_") {
			h.env = append(h.env, e)
		}
	}
	h.env = append(h.env, "WGNET_CONFIG_DIR="+confDir)
	return h
}

func nsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	err := syscall.Stat(path, &st)
	return st.Ino, err
}

// inode is the inode of h's network namespace.
func (h *nsHost) inode(t *testing.T) uint64 {
	ino, err := nsInode("/proc/" + strconv.Itoa(h.holder) + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return ino
}

// run runs argv inside h's namespaces (bounded) and returns its combined output
// and exit code.
func (h *nsHost) run(t *testing.T, env []string, argv ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(h.holder), "-m", "-n", "--"}, argv...)...)
	cmd.Env = append(append([]string(nil), h.env...), env...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s: did not finish in 30s: %s", strings.Join(argv, " "), out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return string(out), code
}

func (h *nsHost) must(t *testing.T, env []string, argv ...string) string {
	t.Helper()
	out, code := h.run(t, env, argv...)
	if code != 0 {
		t.Fatalf("in %s: %s: exit %d\n%s", h.ns.Name, strings.Join(argv, " "), code, out)
	}
	return out
}

// netnsConf writes wg0.conf, a config that forwards (so up makes an nft table).
func netnsConf(t *testing.T, dir string) string {
	t.Helper()
	k, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	p, err := wgkey.GeneratePrivate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "wg0.conf")
	src := "[Interface]\nPrivateKey = " + k.Base64() + "\nAddress = 10.99.0.1/24\nListenPort = 51820\n" +
		"PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1\n\n" +
		"[Peer]\nPublicKey = " + p.Public().String() + "\nAllowedIPs = 10.99.0.2/32, 10.10.2.0/24\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCLINetnsState: wg0 brought up by wgnet (userspace) in two network
// namespaces that share /run/wgnet; `down wg0` in one leaves the other's
// interface, nft table and state alone (issue 9 finding 5: down in the second
// said "down" and orphaned the first's table). A record of the layout before
// (in /run/wgnet itself, no namespace) is moved by the wgnet of its
// namespace only, and brought down there. Then finding 10: plain show lists an
// interface whose daemon died, marked, with the fix; `up .`/`up ..` are
// refused; and finding 6 at the command: `up wg0 7>&1 | cat` returns.
func TestCLINetnsState(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "util-linux, nftables", "unshare", "nsenter", "nft")
	bin := wgnetBin(t)
	shared := t.TempDir() // /run/wgnet of both
	confDir := t.TempDir()
	conf := netnsConf(t, confDir)
	a := newNSHost(t, "a", shared, confDir)
	b := newNSHost(t, "b", shared, confDir)
	userspace := []string{bin, "up", "--backend", "userspace", "wg0"}
	for _, h := range []*nsHost{a, b} {
		h.must(t, nil, userspace...)
	}
	stateOf := func(h *nsHost) string {
		return filepath.Join(shared, strconv.FormatUint(h.inode(t), 10), "wg0.json")
	}
	intact := func(h *nsHost, what string) {
		t.Helper()
		if out, code := h.run(t, nil, "ip", "link", "show", "wg0"); code != 0 {
			t.Errorf("%s: %s's wg0 is gone: %s", what, h.ns.Name, out)
		}
		if out, code := h.run(t, nil, "nft", "list", "table", "inet", "wgnet-wg0"); code != 0 {
			t.Errorf("%s: %s's nft table is gone: %s", what, h.ns.Name, out)
		}
		if _, err := os.Stat(stateOf(h)); err != nil {
			t.Errorf("%s: %s's state: %v", what, h.ns.Name, err)
		}
		if out := h.must(t, nil, bin, "show", "wg0"); !strings.Contains(out, "wgnet pid") {
			t.Errorf("%s: show in %s:\n%s", what, h.ns.Name, out)
		}
	}
	intact(a, "both up")
	intact(b, "both up")
	gone := func(h *nsHost, what string) {
		t.Helper()
		if out, code := h.run(t, nil, "ip", "link", "show", "wg0"); code == 0 {
			t.Errorf("%s: %s's wg0 is still there: %s", what, h.ns.Name, out)
		}
		if out, code := h.run(t, nil, "nft", "list", "table", "inet", "wgnet-wg0"); code == 0 {
			t.Errorf("%s: %s's nft table is still there: %s", what, h.ns.Name, out)
		}
		if socks := h.must(t, nil, "ls", "-A", "/run/wireguard"); socks != "" {
			t.Errorf("%s: sockets left in %s: %s", what, h.ns.Name, socks)
		}
	}
	a.must(t, nil, bin, "down", "wg0")
	gone(a, "down in a")
	intact(b, "down in a")

	// The layout before: wg0 of a recorded in /run/wgnet itself, no namespace.
	a.must(t, []string{"WGNET_STATE_DIR=/run/wgnet"}, userspace...)
	old := filepath.Join(shared, "wg0.json")
	b2, err := os.ReadFile(old)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b2, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "netns")
	if b2, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, b2, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := b.must(t, nil, bin, "show"); strings.Count(out, "interface: wg0") != 1 || strings.Contains(out, "NOT RUNNING") {
		t.Errorf("show in b, with a's old-layout record about:\n%s", out)
	}
	if _, err := os.Stat(old); err != nil {
		t.Errorf("b's wgnet took a's old-layout record: %v", err)
	}
	a.must(t, nil, bin, "down", "wg0")
	gone(a, "down in a of an old-layout record")
	if _, err := os.Stat(old); err == nil {
		t.Error("a's old-layout record is still there after its down")
	}
	intact(b, "down in a of an old-layout record")

	// Finding 10: the daemon of b's wg0 dies; plain show lists it, marked.
	st, err := up.ReadState(filepath.Dir(stateOf(b)), "wg0")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, code := b.run(t, nil, "ip", "link", "show", "wg0"); code != 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.must(t, nil, "rm", "-f", "/run/wireguard/wg0.sock") // SIGKILL leaves it
	if out := b.must(t, nil, bin, "show"); !strings.Contains(out, "interface: wg0") || !strings.Contains(out, "NOT RUNNING") || !strings.Contains(out, "`wgnet down wg0`") {
		t.Errorf("plain show with a dead daemon:\n%s", out)
	}
	b.must(t, nil, bin, "down", "wg0")
	gone(b, "down in b after its daemon died")

	// Finding 10: "." and ".." are no interface names, even with ..conf and
	// ...conf there; nothing is started, no socket left.
	for _, f := range []string{"..conf", "...conf"} {
		if err := os.WriteFile(filepath.Join(confDir, f), mustRead(t, conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, arg := range []string{".", ".."} {
		out, code := a.run(t, nil, bin, "up", "--backend", "userspace", arg)
		if code != 2 || !strings.Contains(out, "not an interface name nor a path to IFACE.conf") {
			t.Errorf("up %s: exit %d\n%s", arg, code, out)
		}
	}
	if socks := a.must(t, nil, "ls", "-A", "/run/wireguard"); socks != "" {
		t.Errorf("sockets after up . and up ..: %s", socks)
	}

	// Finding 6: a stray fd (7, the pipe to cat) is not handed to the daemon,
	// so the pipe closes when up exits.
	out := a.must(t, nil, "sh", "-c", bin+" up --backend userspace wg0 7>&1 | cat")
	if !strings.Contains(out, "wg0 is up") {
		t.Errorf("up 7>&1 | cat:\n%s", out)
	}
	a.must(t, nil, bin, "down", "wg0")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
