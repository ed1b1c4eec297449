package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/netnstest"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// procs are the long-running processes a test started; each is stopped by
// its PID (SIGTERM, then SIGKILL after a grace period) when the test ends.
type procs struct {
	mu   sync.Mutex
	list []*exec.Cmd
}

func (p *procs) start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.list = append(p.list, cmd)
	p.mu.Unlock()
	t.Cleanup(func() { stopProc(cmd) })
}

// stopProc stops cmd by its PID and waits for it, bounded.
func stopProc(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// agentLab is the namespaces of TestAgentNetns: a LAN namespace with a
// bridge, the controller's namespace and the agents' (each with its own
// mount namespace for /run/wireguard), all on the underlay 198.18.0.0/24.
type agentLab struct {
	t       *testing.T
	bin     string
	lan     *netnstest.NS
	ctl     *netnstest.NS
	shared  string
	confDir string
	ports   int
	procs   procs
	data    string
	ctlCmd  *exec.Cmd
	ctlLog  *bytes.Buffer
	remote  []string // --controller URL --ca-hash H --token-file F
	url     string
	// listen is where the controller listens ("": 198.18.0.1:7443, the URL it
	// advertises); ctlFlags are more flags for it (a relay in front of it).
	listen   string
	ctlFlags []string
	// prepare, when set, runs on each agent's namespaces before its agent starts.
	prepare func(a *agentHost)
}

// newAgentLab makes the LAN namespace (a bridge) and the controller's
// namespace on it at 198.18.0.1.
func newAgentLab(t *testing.T) *agentLab {
	l := &agentLab{t: t, bin: wgnetBin(t), shared: t.TempDir(), confDir: t.TempDir(), data: t.TempDir()}
	l.lan = netnstest.New(t, "lan")
	l.lan.Run(t, "ip", "link", "add", "br0", "type", "bridge")
	l.lan.Run(t, "ip", "link", "set", "br0", "up")
	l.ctl = netnstest.New(t, "ctl")
	l.plug(l.ctl, "198.18.0.1")
	return l
}

// demoToken creates the mesh network demo (10.70.0.0/24) and a join token for
// it allowing routes in 172.31.0.0/16.
func (l *agentLab) demoToken(uses int) string {
	l.t.Helper()
	l.admin("network", "create", "demo", "--subnet", "10.70.0.0/24", "--topology", "mesh")
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(l.admin("token", "create", "demo", "--uses", strconv.Itoa(uses), "--route", "172.31.0.0/16", "-o", "json")), &tok); err != nil {
		l.t.Fatal(err)
	}
	return tok.Token
}

func (l *agentLab) plug(ns *netnstest.NS, addr string) {
	l.ports++
	port := fmt.Sprintf("p%d", l.ports)
	netnstest.Veth(l.t, l.lan, port, ns, "eth0")
	l.lan.Run(l.t, "ip", "link", "set", port, "master", "br0")
	ns.Run(l.t, "ip", "addr", "add", addr+"/24", "dev", "eth0")
}

// startController runs `wgnet controller` in the controller's namespace on
// its underlay address (the same data directory each time).
func (l *agentLab) startController() {
	t := l.t
	t.Helper()
	l.ctlLog = &bytes.Buffer{}
	listen := l.listen
	if listen == "" {
		listen = "198.18.0.1:7443"
	}
	cmd := l.ctl.Command(context.Background(), append([]string{l.bin, "controller", "--listen", listen, "--data", l.data,
		"--advertise-url", "https://198.18.0.1:7443"}, l.ctlFlags...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = l.ctlLog
	l.procs.start(t, cmd)
	l.ctlCmd = cmd
	sc := bufio.NewScanner(out)
	var token, hash string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && strings.HasPrefix(f[0], "wgnet-admin-"):
			token = f[0]
		case len(f) == 3 && f[0] == "ca":
			hash = f[1]
		case len(f) == 2 && f[0] == "listening":
			go func() {
				for sc.Scan() {
				}
			}()
			if l.remote == nil {
				tf := filepath.Join(t.TempDir(), "admin-token")
				if err := os.WriteFile(tf, []byte(token+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				l.url = "https://198.18.0.1:7443"
				l.remote = []string{"--controller", l.url, "--ca-hash", hash, "--token-file", tf}
			}
			return
		}
	}
	t.Fatalf("controller did not start: %v\n%s", sc.Err(), l.ctlLog)
}

// admin runs a wgnet admin command in the controller's namespace.
func (l *agentLab) admin(args ...string) string {
	l.t.Helper()
	return l.ctl.Run(l.t, append(append([]string{l.bin}, args...), l.remote...)...)
}

// agentHost is one agent's namespace and process.
type agentHost struct {
	name, dir, underlay string
	endpoint            string // given with --endpoint; "": the address the controller sees
	h                   *nsHost
	cmd                 *exec.Cmd
	log                 *os.File
}

// join starts `wgnet agent join` in a new namespace (userspace backend),
// with more flags when given.
func (l *agentLab) join(name string, n int, token string, flags ...string) *agentHost {
	t := l.t
	t.Helper()
	a := &agentHost{name: name, dir: filepath.Join(t.TempDir(), "agent"), underlay: fmt.Sprintf("198.18.0.%d", 10+n)}
	a.h = newNSHost(t, name, l.shared, l.confDir)
	l.plug(a.h.ns, a.underlay)
	// A container subnet behind the host: a bridge with its first address, as Docker makes one.
	for _, argv := range [][]string{{"ip", "link", "add", "ctr0", "type", "bridge"},
		{"ip", "addr", "add", fmt.Sprintf("172.31.%d.1/24", n), "dev", "ctr0"}, {"ip", "link", "set", "ctr0", "up"}} {
		a.h.must(t, nil, argv...)
	}
	for i, f := range flags {
		if f == "--endpoint" && i+1 < len(flags) {
			a.endpoint = flags[i+1]
		}
	}
	if l.prepare != nil {
		l.prepare(a)
	}
	l.runAgent(a, append([]string{"join", token, "--name", name, "--backend", "userspace", "--dir", a.dir,
		"--route", fmt.Sprintf("172.31.%d.0/24", n)}, flags...)...)
	return a
}

func (l *agentLab) runAgent(a *agentHost, args ...string) {
	t := l.t
	var err error
	if a.log, err = os.CreateTemp(t.TempDir(), a.name+"-*.log"); err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command("nsenter", append([]string{"-t", strconv.Itoa(a.h.holder), "-m", "-n", "--", l.bin, "agent"}, args...)...)
	a.cmd.Env = a.h.env
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	l.procs.start(t, a.cmd)
}

func (a *agentHost) logText() string {
	b, _ := os.ReadFile(a.log.Name())
	return string(b)
}

// netStatus is `wgnet status -o json` as the test reads it.
type netStatus struct {
	Revision uint64 `json:"revision"`
	Hosts    []struct {
		Name      string   `json:"name"`
		Addresses []string `json:"addresses"`
		Endpoint  string   `json:"endpoint"`
		Revision  uint64   `json:"revision_applied"`
	} `json:"hosts"`
}

// converge waits (bounded) until the network has the hosts named, each
// reporting the network's revision, and every host pings every other's
// overlay address and container subnet.
func (l *agentLab) converge(what string, agents []*agentHost) netStatus {
	t := l.t
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var st netStatus
	for {
		if err := json.Unmarshal([]byte(l.admin("status", "demo", "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		ok := len(st.Hosts) == len(agents)
		for _, h := range st.Hosts {
			ok = ok && h.Revision == st.Revision
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			for _, a := range agents {
				t.Logf("%s log:\n%s", a.name, a.logText())
			}
			t.Fatalf("%s: not converged in 90 s: %+v", what, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	addr := map[string]string{}
	given := map[string]string{}
	for _, a := range agents {
		given[a.name] = a.endpoint
	}
	for _, h := range st.Hosts {
		addr[h.Name] = h.Addresses[0]
		if e := given[h.Name]; e != "" {
			if h.Endpoint != e {
				t.Errorf("%s: endpoint %q: want %q, given at join", h.Name, h.Endpoint, e)
			}
		} else if !strings.HasPrefix(h.Endpoint, "198.18.0.") || !strings.HasSuffix(h.Endpoint, ":51820") {
			t.Errorf("%s: endpoint %q: want the underlay address the controller saw, port 51820", h.Name, h.Endpoint)
		}
	}
	for i, a := range agents {
		for j, b := range agents {
			if a == b {
				continue
			}
			for _, dst := range []string{addr[b.name], fmt.Sprintf("172.31.%d.1", agentIndex(b))} {
				if !pingWithin(a.h, dst, 20*time.Second) {
					t.Fatalf("%s: %s (%d) can't ping %s of %s (%d)", what, a.name, i, dst, b.name, j)
				}
			}
		}
	}
	t.Logf("%s: %d hosts at revision %d, every pair and container subnet pings", what, len(agents), st.Revision)
	return st
}

func agentIndex(a *agentHost) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(a.underlay, "198.18.0.1"))
	return n
}

// pingWithin pings dst from h once a second until it answers, bounded.
func pingWithin(h *nsHost, dst string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		cmd := exec.Command("nsenter", "-t", strconv.Itoa(h.holder), "-n", "--", "ping", "-c", "1", "-W", "1", dst)
		if cmd.Run() == nil {
			return true
		}
	}
	return false
}

var receivedRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// pingRing starts n pings, 5 a second, from each agent to the next one's
// container subnet (the last to the first's), and returns a function that
// waits for them and says each pair that lost one.
func pingRing(agents []*agentHost, n int) func() []string {
	var wg sync.WaitGroup
	losses := make(chan string, len(agents))
	for i, a := range agents {
		b := agents[(i+1)%len(agents)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*200*time.Millisecond+20*time.Second)
			defer cancel()
			dst := fmt.Sprintf("172.31.%d.1", agentIndex(b))
			out, _ := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(a.h.holder), "-n", "--",
				"ping", "-c", strconv.Itoa(n), "-i", "0.2", "-W", "1", dst).CombinedOutput()
			if m := receivedRE.FindStringSubmatch(string(out)); m == nil || m[1] != strconv.Itoa(n) || m[2] != m[1] {
				losses <- fmt.Sprintf("%s -> %s (%s): %s", a.name, b.name, dst, strings.TrimSpace(string(out)))
			}
		}()
	}
	return func() []string {
		wg.Wait()
		close(losses)
		var out []string
		for m := range losses {
			out = append(out, m)
		}
		return out
	}
}

// TestAgentNetns is issue 15's test with real processes: a controller in one
// namespace, agents in others (userspace WireGuard), joined to each other by
// a bridge on the underlay 198.18.0.0/24 and to nothing else. The network, with
// a container subnet behind each host, comes up from one `token create` and
// three `agent join`s; with the controller stopped, pings between every pair
// go on for 20 s without a loss; the controller restarts, a fourth host joins
// and everyone converges; it leaves again. The controller's database and log
// hold no agent's private key.
func TestAgentNetns(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "util-linux", "unshare", "nsenter")
	netnstest.NeedsTool(t, "iputils-ping", "ping")
	if testing.Short() {
		t.Skip("about a minute of real processes")
	}
	l := newAgentLab(t)
	l.startController()
	token := l.demoToken(4)
	var agents []*agentHost
	for i := 1; i <= 3; i++ {
		agents = append(agents, l.join(fmt.Sprintf("a%d", i), i, token))
	}
	l.converge("three joined", agents)

	// The controller goes away: the network stays up, without a lost ping.
	stopProc(l.ctlCmd)
	for _, m := range pingRing(agents, 100)() {
		t.Errorf("controller stopped: pings lost: %s", m)
	}
	t.Logf("controller stopped: 3 x 100 pings over 20 s, none lost")

	// It returns; a fourth host joins; everyone converges.
	l.startController()
	agents = append(agents, l.join("a4", 4, token))
	l.converge("controller back, a4 joined", agents)

	// a4 leaves: its agent stops, `agent leave` removes it, the others follow.
	a4 := agents[3]
	stopProc(a4.cmd)
	if out := a4.h.must(t, nil, l.bin, "agent", "leave", "--dir", a4.dir, "--backend", "userspace"); !strings.Contains(out, "a4 left network demo") {
		t.Errorf("agent leave: %s", out)
	}
	if out, code := a4.h.run(t, nil, "ip", "link", "show", "wg0"); code == 0 {
		t.Errorf("a4's wg0 is still there after leave: %s", out)
	}
	l.converge("a4 left", agents[:3])

	// No agent's private key reached the controller's files or log.
	keys := privateKeys(t, agents[:3]) // a4's was deleted by leave
	files, _ := filepath.Glob(filepath.Join(l.data, "*"))
	blobs := map[string][]byte{"controller log": l.ctlLog.Bytes()}
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			blobs[f] = b
		}
	}
	for what, b := range blobs {
		if wgkey.Leaked(b, keys...) {
			t.Errorf("%s holds an agent's private key", what)
		}
	}
}

// privateKeys reads the private key each agent made.
func privateKeys(t *testing.T, agents []*agentHost) []wgkey.Private {
	t.Helper()
	var keys []wgkey.Private
	for _, a := range agents {
		b, err := os.ReadFile(filepath.Join(a.dir, "private.key"))
		if err != nil {
			t.Fatal(err)
		}
		k, err := wgkey.ParsePrivate(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}
