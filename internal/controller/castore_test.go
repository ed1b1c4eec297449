package controller

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
)

// TestStoredCA: controllers starting at once on one store serve one CA; its
// key is stored sealed (not in clear), opens only with the same secret, and
// a short secret is refused.
func TestStoredCA(t *testing.T) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "wgnet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secret := []byte("a-secret-of-32-bytes-for-the-ca!")
	const n = 4
	ids := make([]*TLS, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := LoadStoredTLS(ctx, st, secret, []string{"127.0.0.1"}, time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if id == nil || api.CAHash(id.CA) != api.CAHash(ids[0].CA) {
			t.Fatalf("controller %d serves another CA", i)
		}
	}
	stored, err := st.CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored.SealedKey, []byte("PRIVATE KEY")) || !bytes.HasPrefix(stored.SealedKey, []byte(sealMagic)) {
		t.Errorf("the stored CA key is not sealed: %q", stored.SealedKey[:40])
	}
	if _, err := LoadStoredTLS(ctx, st, []byte("another-secret-of-32-bytes-long!"), nil, time.Now()); !errors.Is(err, errCASecret) {
		t.Errorf("another secret: %v, want %v", err, errCASecret)
	}
	if _, err := LoadStoredTLS(ctx, st, []byte("short"), nil, time.Now()); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
}
