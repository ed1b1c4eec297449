package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
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

// testSettings: a host's own settings (schema 6) round-trip through AddHost,
// Hosts and HostsAndLog, each changes alone with SetHost (nil leaves it, an
// empty list removes it), a host added without them reads the zero value,
// the largest firewall mark (2^32-1) is kept, and an address's own prefix
// length goes with the address.
func testSettings(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustNetwork(t, s, "n", "hub", "10.11.0.0/24", "fd11::/64")
	if _, _, err := s.AddHost(ctx, "n", store.Host{Name: "hub", PublicKey: Key(1), Endpoint: "198.18.0.1:51820"}, nil); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("10.11.0.9")
	want := store.Settings{AddressBits: map[netip.Addr]int{a: 32}, AddressElsewhere: true, RandomPort: true, MTU: 1380,
		DNS: []string{"10.11.0.1", "corp.example"}, Table: "off", FwMark: 1<<32 - 1, External: true,
		FullTunnel: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}}
	added, _, err := s.AddHost(ctx, "n", store.Host{Name: "s1", PublicKey: Key(2), Addresses: []netip.Addr{a}, Settings: want}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(added.Addresses) != 2 {
		t.Errorf("added %+v: want its address and one allocated in fd11::/64", added.Addresses)
	}
	read := func(what string) store.Host {
		t.Helper()
		_, hs, err := s.Hosts(ctx, "n")
		_, hs2, _, err2 := s.HostsAndLog(ctx, "n", 0, 1)
		if err != nil || err2 != nil || len(hs) != 2 || !reflect.DeepEqual(hs, hs2) {
			t.Fatalf("%s: Hosts = %+v, %v; HostsAndLog = %+v, %v", what, hs, err, hs2, err2)
		}
		if !reflect.DeepEqual(hs[0].Settings, store.Settings{}) {
			t.Errorf("%s: hub's settings = %+v, want none (the defaults)", what, hs[0].Settings)
		}
		return hs[1]
	}
	if got := read("after add"); !reflect.DeepEqual(got.Settings, want) {
		t.Errorf("after add: settings %+v\nwant %+v", got.Settings, want)
	}

	// Each field alone; the others stay.
	mtu, table, mark, no := -1, "1234", uint32(0x10), false
	dns := []string{"fd11::1"}
	steps := []struct {
		c    store.HostChanges
		edit func(*store.Settings)
	}{
		{store.HostChanges{MTU: &mtu}, func(w *store.Settings) { w.MTU = -1 }},
		{store.HostChanges{Table: &table}, func(w *store.Settings) { w.Table = "1234" }},
		{store.HostChanges{FwMark: &mark}, func(w *store.Settings) { w.FwMark = 0x10 }},
		{store.HostChanges{DNS: &dns}, func(w *store.Settings) { w.DNS = dns }},
		{store.HostChanges{DNS: &[]string{}}, func(w *store.Settings) { w.DNS = nil }},
		{store.HostChanges{FullTunnel: &[]netip.Prefix{}}, func(w *store.Settings) { w.FullTunnel = nil }},
		{store.HostChanges{External: &no, RandomPort: &no, AddressElsewhere: &no}, func(w *store.Settings) {
			w.External, w.RandomPort, w.AddressElsewhere = false, false, false
		}},
		// A new address of the family drops the old one's length; one given
		// with a length keeps it.
		{store.HostChanges{Addresses: addrs("10.11.0.20")}, func(w *store.Settings) { w.AddressBits = nil }},
		{store.HostChanges{Addresses: addrs("fd11::20"), AddressBits: map[netip.Addr]int{netip.MustParseAddr("fd11::20"): 128}},
			func(w *store.Settings) { w.AddressBits = map[netip.Addr]int{netip.MustParseAddr("fd11::20"): 128} }},
		{store.HostChanges{Keepalive: new(int)}, func(*store.Settings) {}},
	}
	for i, st := range steps {
		if _, _, err := s.SetHost(ctx, "n", "s1", st.c, nil); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		st.edit(&want)
		if got := read(fmt.Sprintf("step %d", i)); !reflect.DeepEqual(got.Settings, want) {
			t.Errorf("step %d: settings %+v\nwant %+v", i, got.Settings, want)
		}
	}
	var zero uint32
	if _, _, err := s.SetHost(ctx, "n", "s1", store.HostChanges{FwMark: &zero, MTU: new(int), Table: new(string), Addresses: addrs("fd11::21")}, nil); err != nil {
		t.Fatal(err)
	}
	if got := read("back to the defaults"); !reflect.DeepEqual(got.Settings, store.Settings{}) {
		t.Errorf("back to the defaults: %+v", got.Settings)
	}
}
