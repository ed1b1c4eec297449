package controller_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/client"
	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/pgtest"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/store/pgstore"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
	"github.com/wgnet/wgnet/internal/store/storetest"
)

// BenchmarkConvergence is issue 16's convergence figure: simulated agents
// (1,000, or WGNET_BENCH_AGENTS) long poll the change log over HTTPS, spread
// over the controllers; each iteration adds a host through the first
// controller and waits until every agent's poll has returned the new
// revision. It reports the p50 and p99 of the time from the add's start to
// each agent's answer, side by side: one controller on SQLite (the baseline)
// and three controllers (each its own pool and LISTEN connection) on one
// PostgreSQL database.
func BenchmarkConvergence(b *testing.B) {
	agents := 1000
	if v, err := strconv.Atoi(os.Getenv("WGNET_BENCH_AGENTS")); err == nil && v > 0 {
		agents = v
	}
	b.Run("sqlite-1-controller", func(b *testing.B) {
		st, err := sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), "wgnet.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		converge(b, []store.Store{st}, agents)
	})
	b.Run("postgres-3-controllers", func(b *testing.B) {
		srv := pgtest.Start(b)
		url := srv.URL(srv.NewDatabase(b))
		var sts []store.Store
		for range 3 {
			st, err := pgstore.Open(context.Background(), url, pgstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			sts = append(sts, st)
		}
		converge(b, sts, agents)
	})
}

// converge serves the API over each store (one CA, kept in the store) and
// runs the benchmark.
func converge(b *testing.B, sts []store.Store, agents int) {
	ctx := context.Background()
	secret := []byte("bench-ca-secret-0123456789abcdef")
	_, err := controller.EnsureAdminToken(ctx, sts[0])
	if err != nil {
		b.Fatal(err)
	}
	var urls []string
	var hash string
	for _, st := range sts {
		id, err := controller.LoadStoredTLS(ctx, st, secret, []string{"127.0.0.1"}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		hash = api.CAHash(id.CA)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: controller.New(st, controller.Config{CAHash: hash}), TLSConfig: id.Config}
		go hs.ServeTLS(ln, "", "")
		defer hs.Close()
		urls = append(urls, "https://"+ln.Addr().String())
	}
	if _, err := sts[0].CreateNetwork(ctx, store.Network{Name: "bench", Topology: "mesh", Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}}); err != nil {
		b.Fatal(err)
	}
	join := store.HashToken("bench-join")
	if err := sts[0].CreateToken(ctx, store.Token{Hash: join, Kind: store.EnrollToken, Network: "bench", Uses: agents}); err != nil {
		b.Fatal(err)
	}
	tr, err := client.Transport(hash)
	if err != nil {
		b.Fatal(err)
	}
	tr.MaxIdleConnsPerHost = 64
	defer tr.CloseIdleConnections()
	var rev uint64
	clients := make([]*client.Client, agents)
	for i := range agents {
		cred := fmt.Sprintf("%sbench-%06d", api.AgentCredentialPrefix, i)
		_, _, r, err := sts[i%len(sts)].Enroll(ctx, join, time.Now(), store.Host{Name: fmt.Sprintf("a%05d", i), PublicKey: storetest.Key(i)}, nil, store.HashToken(cred))
		if err != nil {
			b.Fatal(err)
		}
		rev = max(rev, r)
		if clients[i], err = client.New(client.Options{URL: urls[i%len(urls)], Token: cred, Transport: tr, Timeout: 2 * time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
	// Each agent long polls from rev; answers go to got, one per agent per revision.
	type answer struct {
		rev uint64
		at  time.Time
	}
	got := make(chan answer, agents*4)
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			since := rev
			for pctx.Err() == nil {
				ch, err := c.AgentChanges(pctx, since, 50*time.Second, false)
				if err != nil {
					if pctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				if ch.Revision > since {
					got <- answer{ch.Revision, time.Now()}
					since = ch.Revision
				}
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	time.Sleep(time.Second) // every poll is waiting
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		_, r, err := sts[0].AddHost(ctx, "bench", store.Host{Name: fmt.Sprintf("new%05d", i), PublicKey: storetest.Key(1_000_000 + i)}, nil)
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.After(2 * time.Minute)
		for n := 0; n < agents; {
			select {
			case a := <-got:
				if a.rev >= r {
					lat = append(lat, a.at.Sub(start))
					n++
				}
			case <-deadline:
				b.Fatalf("revision %d: %d of %d agents answered in 2 minutes", r, n, agents)
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(agents), "agents")
}
