package up

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// stubResolvconf writes a resolvconf that records its arguments and stdin to a
// file, so that no test ever runs the real one (it rewrites /etc/resolv.conf,
// which a network namespace does not isolate). It returns the script and the
// record.
func stubResolvconf(t *testing.T) (cmd, record string) {
	t.Helper()
	dir := t.TempDir()
	cmd, record = filepath.Join(dir, "resolvconf"), filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"resolvconf $*\" >>" + record + "\nif [ \"$1\" = -a ]; then cat >>" + record + "; fi\n"
	if err := os.WriteFile(cmd, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return cmd, record
}

func readCalls(t *testing.T, record string) string {
	t.Helper()
	b, err := os.ReadFile(record)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestDNSLikeWgQuick is issue 10's DNS =: up hands the servers and search
// domains to resolvconf -a PREFIXIFACE -m 0 -x, the prefix read from
// interface-order as wg-quick reads it; down runs resolvconf -d PREFIXIFACE -f;
// sync leaves DNS alone and says so; no resolvconf refuses up before anything is
// touched.
func TestDNSLikeWgQuick(t *testing.T) {
	fx := newFixture(t)
	cmd, record := stubResolvconf(t)
	order := filepath.Join(t.TempDir(), "interface-order")
	if err := os.WriteFile(order, []byte("# comment\nlo.inet6\n  tun* \nwg*\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.opts.Resolvconf, fx.opts.InterfaceOrder = cmd, order
	c := hubConfig()
	c.Interface.DNS = []string{"10.99.0.53", "fd00::53", "corp.example", "lan"}
	st, err := Up(context.Background(), req("wg0", c, false, false), fx.opts)
	if err != nil {
		t.Fatalf("Up: %v\n%s", err, fx.log.String())
	}
	want := "resolvconf -a tun.wg0 -m 0 -x\nnameserver 10.99.0.53\nnameserver fd00::53\nsearch corp.example lan\n"
	if diff := cmp.Diff(want, readCalls(t, record)); diff != "" {
		t.Errorf("resolvconf at up (-want +got):\n%s", diff)
	}
	if st.DNSName != "tun.wg0" || !cmp.Equal(st.DNS, c.Interface.DNS) {
		t.Errorf("state: DNS %v as %q", st.DNS, st.DNSName)
	}

	neu := clone(c)
	neu.Interface.DNS = []string{"10.99.0.54"}
	plan, err := Sync(context.Background(), req("wg0", neu, false, false), fx.syncOpts())
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Empty() || !strings.Contains(strings.Join(plan.Notes, "\n"), "sync does not change DNS") {
		t.Errorf("sync with another DNS: empty=%v notes %q", plan.Empty(), plan.Notes)
	}
	if got := readCalls(t, record); got != want {
		t.Errorf("sync ran resolvconf: %q", got)
	}

	if err := Down(context.Background(), "wg0", fx.opts); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want+"resolvconf -d tun.wg0 -f\n", readCalls(t, record)); diff != "" {
		t.Errorf("resolvconf at down (-want +got):\n%s", diff)
	}

	t.Run("no interface-order", func(t *testing.T) {
		if got := resolvconfPrefix(filepath.Join(t.TempDir(), "absent")); got != "" {
			t.Errorf("prefix = %q", got)
		}
	})
	t.Run("no resolvconf", func(t *testing.T) {
		fx := newFixture(t)
		t.Setenv("PATH", t.TempDir())
		before, calls := fx.host.Snapshot(), len(fx.host.Calls())
		_, err := Up(context.Background(), req("wg0", c, false, false), fx.opts)
		if err == nil || !strings.Contains(err.Error(), "needs resolvconf") {
			t.Fatalf("Up without resolvconf: %v", err)
		}
		if diff := cmp.Diff(before, fx.host.Snapshot(), cmpOpts...); diff != "" || len(fx.hooks) > 0 || len(fx.host.Calls()) != calls {
			t.Errorf("touched the host (-before +after):\n%s hooks %q", diff, fx.hooks)
		}
		if err := Check(context.Background(), req("wg0", c, false, false), fx.opts); err == nil {
			t.Error("Check passed without resolvconf")
		}
	})
}
