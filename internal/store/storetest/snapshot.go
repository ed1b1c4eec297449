package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wgnet/wgnet/internal/store"
)

// testHostsAndLog: HostsAndLog reads the hosts and the log's tail at one
// revision: the newest entries asked for, oldest first, the last at the
// network's revision; and while writers add hosts, every read agrees with
// itself (as many hosts as adds logged, the last entry's host among them).
func testHostsAndLog(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "mesh", "10.9.0.0/24")
	for i, name := range []string{"a", "b", "c"} {
		if _, _, err := s.AddHost(ctx, "n", store.Host{Name: name, PublicKey: Key(i + 1)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ka := 25
	if _, _, err := s.SetHost(ctx, "n", "b", store.HostChanges{Keepalive: &ka}, nil); err != nil {
		t.Fatal(err)
	}
	n, hs, cs, err := s.HostsAndLog(ctx, "n", 0, 1)
	if err != nil || n.Revision != 5 || len(hs) != 3 || hs[1].Keepalive != 25 || len(cs) != 1 ||
		cs[0].Revision != 5 || cs[0].Kind != store.HostChanged || cs[0].Host != "b" {
		t.Fatalf("HostsAndLog(0, last 1) = rev %d, %d hosts, log %+v, %v; want rev 5, 3 hosts, the entry host-changed b at 5", n.Revision, len(hs), cs, err)
	}
	if _, _, cs, err := s.HostsAndLog(ctx, "n", 2, 0); err != nil || len(cs) != 3 || cs[0].Revision != 3 || cs[2].Revision != 5 {
		t.Errorf("HostsAndLog(2, all) log = %+v, %v; want revisions 3-5", cs, err)
	}
	if _, _, cs, err := s.HostsAndLog(ctx, "n", 1, 2); err != nil || len(cs) != 2 || cs[0].Revision != 4 || cs[1].Revision != 5 {
		t.Errorf("HostsAndLog(1, last 2) log = %+v, %v; want revisions 4, 5", cs, err)
	}
	if _, _, cs, err := s.HostsAndLog(ctx, "n", 5, 1); err != nil || len(cs) != 0 {
		t.Errorf("HostsAndLog(5) log = %+v, %v; want none", cs, err)
	}
	if _, _, _, err := s.HostsAndLog(ctx, "missing", 0, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("HostsAndLog of a missing network = %v, want ErrNotFound", err)
	}

	mustNetwork(t, s, "busy", "mesh", "10.10.0.0/24")
	const adds = 24
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range adds {
			if _, _, err := s.AddHost(ctx, "busy", store.Host{Name: fmt.Sprintf("h%02d", i), PublicKey: Key(100 + i)}, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var reads atomic.Int64
	for reader := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				n, hs, cs, err := s.HostsAndLog(ctx, "busy", 0, 1)
				if err != nil {
					t.Errorf("reader %d: %v", reader, err)
					return
				}
				last := store.Change{}
				if len(cs) > 0 {
					last = cs[len(cs)-1]
				}
				names := make([]string, len(hs))
				for i, h := range hs {
					names[i] = h.Name
				}
				if last.Revision != n.Revision || uint64(len(hs)) != n.Revision-1 || n.Hosts != len(hs) ||
					(last.Kind == store.HostAdded && !slices.Contains(names, last.Host)) {
					t.Errorf("reader %d: network at revision %d (%d hosts counted), %d hosts read, log's last entry %+v: not one revision", reader, n.Revision, n.Hosts, len(hs), last)
					return
				}
				reads.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d consistent reads during %d adds", reads.Load(), adds)
}
