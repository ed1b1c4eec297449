package controller_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/controller"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/store/sqlitestore"
)

// failingAuthStore is a real store whose credential reads fail while down is
// set, as when its read-connection pool is exhausted.
type failingAuthStore struct {
	*sqlitestore.Store
	down atomic.Bool
}

var errPool = errors.New("read pool exhausted")

func (s *failingAuthStore) AdminTokens(ctx context.Context) ([]store.TokenHash, error) {
	if s.down.Load() {
		return nil, errPool
	}
	return s.Store.AdminTokens(ctx)
}

func (s *failingAuthStore) LookupToken(ctx context.Context, h store.TokenHash) (store.Token, error) {
	if s.down.Load() {
		return store.Token{Hash: h}, errPool
	}
	return s.Store.LookupToken(ctx, h)
}

// TestAuthStoreUnavailable: a credential the store could not be asked about
// is 503 with Retry-After (an agent told 401 believes its host was removed);
// 401 stays for a credential the store really does not know.
func TestAuthStoreUnavailable(t *testing.T) {
	ctx := context.Background()
	sq, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "wgnet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &failingAuthStore{Store: sq}
	admin, err := controller.EnsureAdminToken(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	srv := controller.New(st, controller.Config{URLs: []string{"https://ctl.test:7443"}})
	unknownAgent := api.AgentCredentialPrefix + "never-issued"
	for _, c := range []struct {
		what, path, bearer string
		down               bool
		want               int
	}{
		{"admin, store up", "/v1/networks", admin, false, 200},
		{"wrong admin token, store up", "/v1/networks", "wrong", false, 401},
		{"admin, store down", "/v1/networks", admin, true, 503},
		{"unknown agent credential, store up", "/v1/agent/state", unknownAgent, false, 401},
		{"agent credential, store down", "/v1/agent/state", unknownAgent, true, 503},
	} {
		st.down.Store(c.down)
		req := httptest.NewRequest("GET", c.path, nil)
		req.Header.Set("Authorization", "Bearer "+c.bearer)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != c.want {
			t.Errorf("%s: %d %s; want %d", c.what, w.Code, w.Body, c.want)
			continue
		}
		if ra := w.Header().Get("Retry-After"); (c.want == 503) != (ra != "") {
			t.Errorf("%s: Retry-After %q", c.what, ra)
		}
		if wa := w.Header().Get("WWW-Authenticate"); (c.want == 401) != (wa != "") {
			t.Errorf("%s: WWW-Authenticate %q", c.what, wa)
		}
	}
}
