package controller

import (
	"fmt"
	"net/http"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/store"
)

// createAdminToken makes another admin token (to hand to a second admin, or
// to rotate: create the new one, then revoke the old). Shown once; only its
// hash is stored.
func (s *Server) createAdminToken(w http.ResponseWriter, r *http.Request) error {
	secret, err := NewToken("wgnet-admin-")
	if err != nil {
		return err
	}
	h := store.HashToken(secret)
	if err := s.store.CreateToken(r.Context(), store.Token{Hash: h, Kind: store.AdminToken}); err != nil {
		return err
	}
	s.log.Info("admin token created", "token", h.ID())
	writeJSON(w, http.StatusCreated, api.AdminToken{Token: secret, ID: h.ID()})
	return nil
}

// listTokens lists the admin and join tokens by ID, never their secrets
// (agent credentials are listed with their hosts' status, not here).
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.store.Tokens(r.Context())
	if err != nil {
		return err
	}
	out := api.Tokens{Tokens: []api.TokenInfo{}}
	for _, t := range ts {
		if t.Kind != store.AdminToken && t.Kind != store.EnrollToken {
			continue
		}
		ti := api.TokenInfo{ID: t.Hash.ID(), Kind: string(t.Kind), Network: t.Network, Host: t.Host, Uses: t.Uses}
		if !t.Expires.IsZero() {
			ti.Expires = t.Expires.UTC().Format(time.RFC3339)
		}
		out.Tokens = append(out.Tokens, ti)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeToken deletes the admin or join token with the ID; the last admin
// token is refused (400), the request's own admin token may be revoked when
// another exists.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ts, err := s.store.Tokens(r.Context())
	if err != nil {
		return err
	}
	var found []store.TokenHash
	for _, t := range ts {
		if t.Hash.ID() == id && (t.Kind == store.AdminToken || t.Kind == store.EnrollToken) {
			found = append(found, t.Hash)
		}
	}
	switch len(found) {
	case 0:
		return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	case 1:
	default:
		return badRequest{fmt.Errorf("token %s: %d tokens have that ID; revoke by a longer one is not possible, recreate them", id, len(found))}
	}
	if err := s.store.RevokeToken(r.Context(), found[0]); err != nil {
		return err
	}
	s.log.Info("token revoked", "token", id)
	writeJSON(w, http.StatusOK, map[string]string{"revoked": id})
	return nil
}
