package netnstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStopAllAtCleanup: a test that stops half-way (here by SkipNow, which
// ends it the way FailNow does) with two daemons detached in its namespace,
// one of which ignores SIGTERM, leaves neither running, nor the namespace.
func TestStopAllAtCleanup(t *testing.T) {
	NeedsTool(t, "util-linux", "setsid")
	var name string
	var pids []int
	t.Run("stops-half-way", func(t *testing.T) {
		ns := New(t, "stop")
		name = ns.Name
		// Detached, as daemons are, with no pipe back to the test.
		for _, argv := range [][]string{{"sleep", "300"}, {"sh", "-c", `trap "" TERM; exec sleep 301`}} {
			if err := ns.Command(context.Background(), append([]string{"setsid", "-f"}, argv...)...).Run(); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(pids) < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			pids = ns.PIDs()
		}
		if len(pids) != 2 {
			t.Fatalf("daemons in %s: %v, want 2", ns.Name, pids)
		}
		t.SkipNow()
	})
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d (%s) still runs after its test ended", pid, cmdline(pid))
			_ = exec.Command("kill", "-9", fmt.Sprint(pid)).Run()
		}
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(strings.Split(string(out), "\n"), func(l string) bool { return strings.HasPrefix(l, name+" ") || l == name }) {
		t.Errorf("namespace %s is left", name)
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || !strings.HasPrefix(string(stat[i+1:]), " Z")
}
