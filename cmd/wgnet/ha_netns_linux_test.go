package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/netnstest"
)

// startHAController runs controller i (0, 1, 2: 198.18.0.1-3:7443) of three
// on one PostgreSQL database in the controller namespace, each advertising
// all three URLs (join tokens and desired states carry them, so agents can
// fail over). The first one's admin token and pin become the lab's remote.
func (l *agentLab) startHAController(d haDB, i int, urls []string) *exec.Cmd {
	t := l.t
	t.Helper()
	args := []string{"controller", "--listen", fmt.Sprintf("198.18.0.%d:7443", i+1), "--store", d.url,
		"--store-password-file", d.pwFile, "--ca-secret-file", d.secretFile}
	for _, u := range urls {
		args = append(args, "--advertise-url", u)
	}
	var errb bytes.Buffer
	cmd := l.ctl.Command(context.Background(), append([]string{l.bin}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &errb
	l.procs.start(t, cmd)
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
				l.url = urls[i]
				l.remote = []string{"--controller", l.url, "--ca-hash", hash, "--token-file", tf}
			}
			return cmd
		}
	}
	t.Fatalf("controller %d did not start: %v\n%s", i, sc.Err(), errb.String())
	return nil
}

// tokenVia returns join token tok with its controller URLs reordered so that
// first comes first: the agent starts there.
func tokenVia(t *testing.T, tok, first string) string {
	jt, err := api.ParseJoinToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	urls := []string{first}
	for _, u := range jt.URLs {
		if u != first {
			urls = append(urls, u)
		}
	}
	jt.URLs = urls
	return jt.String()
}

// TestHAAgentsNetns: three controllers (processes, in one namespace) on one
// PostgreSQL database, agents (userspace WireGuard, each in its namespace on
// the underlay 198.18.0.0/24) joined through B and through C; a third host
// joins through A, and the agents on B and C apply it (every pair pings over
// the overlay and into each other's container subnet). Then B is killed
// (SIGKILL): its agent fails over to another controller, and a fourth host
// joining through C is applied by every agent.
func TestHAAgentsNetns(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.NeedsTool(t, "util-linux", "unshare", "nsenter")
	netnstest.NeedsTool(t, "iputils-ping", "ping")
	if testing.Short() {
		t.Skip("about a minute of real processes")
	}
	d := newHADB(t)
	l := newAgentLab(t)
	l.ctl.Run(t, "ip", "addr", "add", "198.18.0.2/24", "dev", "eth0")
	l.ctl.Run(t, "ip", "addr", "add", "198.18.0.3/24", "dev", "eth0")
	urls := []string{"https://198.18.0.1:7443", "https://198.18.0.2:7443", "https://198.18.0.3:7443"}
	var ctls []*exec.Cmd
	for i := range urls {
		ctls = append(ctls, l.startHAController(d, i, urls))
	}
	token := l.demoToken(4)
	a1 := l.join("a1", 1, tokenVia(t, token, urls[1]))
	a2 := l.join("a2", 2, tokenVia(t, token, urls[2]))
	agents := []*agentHost{a1, a2}
	l.converge("a1 through B, a2 through C", agents)
	agents = append(agents, l.join("a3", 3, tokenVia(t, token, urls[0])))
	l.converge("a3 joined through A, applied by the agents on B and C", agents)

	if err := ctls[1].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctls[1].Wait()
	agents = append(agents, l.join("a4", 4, tokenVia(t, token, urls[2])))
	l.converge("B killed, a4 joined through C", agents)
	// a1 followed B; it says it lost B and which controller took over.
	log := a1.logText()
	if !strings.Contains(log, "controller unreachable; the network stays as it is\" controller="+urls[1]) ||
		!(strings.Contains(log, "controller reachable again\" controller="+urls[0]) || strings.Contains(log, "controller reachable again\" controller="+urls[2])) {
		t.Errorf("a1's log does not show its failover from B to A or C:\n%s", log)
	}
}
