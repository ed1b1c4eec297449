package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
	"github.com/wgnet/wgnet/internal/store/storetest"
)

// BenchmarkAddHost times one add through the API handler (validation and the
// store's transaction, no TLS) on a network of 100 and of 2,000 hosts, in the
// same run: the ratio says how the work per change grows with the network.
// Each network has a few hosts with routed subnets, as a fleet would.
func BenchmarkAddHost(b *testing.B) {
	for _, n := range []int{100, 2000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "wgnet.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			tok, err := controller.EnsureAdminToken(ctx, st)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.CreateNetwork(ctx, store.Network{Name: "n", Topology: "hub", Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}}); err != nil {
				b.Fatal(err)
			}
			for i := range n {
				h := store.Host{Name: fmt.Sprintf("h%05d", i), PublicKey: storetest.Key(i), Keepalive: 25}
				if i%100 == 0 {
					h.Endpoint = fmt.Sprintf("192.0.2.%d:51820", i/100+1)
					h.Routes = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(i / 100), 0}), 24)}
				}
				if _, _, err := st.AddHost(ctx, "n", h, nil); err != nil {
					b.Fatal(err)
				}
			}
			srv := controller.New(st, controller.Config{})
			b.ResetTimer()
			for i := range b.N {
				body, _ := json.Marshal(api.Host{Name: fmt.Sprintf("new%06d", i), PublicKey: storetest.Key(1_000_000 + i).String(), Keepalive: 25})
				req := httptest.NewRequest("POST", "/v1/networks/n/hosts", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != http.StatusCreated {
					b.Fatalf("add: %d %s", w.Code, w.Body)
				}
			}
		})
	}
}
