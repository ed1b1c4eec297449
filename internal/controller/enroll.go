package controller

import (
	"errors"
	"net/http"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/store"
)

// DefaultTokenTTL is how long a join token lasts when no TTL is asked for.
const DefaultTokenTTL = 24 * time.Hour

// createToken makes a join token for a network: it carries the controller's
// URLs and CA pin and a secret of which only the hash is stored.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateToken
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if req.TTLSeconds < 0 || req.Uses < 0 {
		return badRequest{errors.New("ttl_seconds and uses must not be negative")}
	}
	ttl, uses := DefaultTokenTTL, 1
	if req.TTLSeconds > 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	if req.Uses > 0 {
		uses = req.Uses
	}
	secret, err := NewToken("")
	if err != nil {
		return err
	}
	network := r.PathValue("network")
	t := store.Token{Hash: store.HashToken(secret), Kind: store.EnrollToken, Network: network, Host: req.Host,
		Uses: uses, Expires: time.Now().Add(ttl).UTC()}
	if err := s.store.CreateToken(r.Context(), t); err != nil {
		return err
	}
	s.log.Info("join token created", "network", network, "uses", uses, "expires", t.Expires, "host", req.Host)
	jt := api.JoinToken{URLs: s.cfg.URLs, CAHash: s.cfg.CAHash, Secret: secret}
	writeJSON(w, http.StatusCreated, api.Token{Token: jt.String(), Network: network, Uses: uses, Expires: t.Expires.Format(time.RFC3339)})
	return nil
}

// enroll adds the host that presents a join token's secret, using the token
// in the same transaction. The host gives its public key only; its addresses
// are allocated; routes it would route need an admin (set --route) until the
// agent's guardrails exist (issue 15).
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) error {
	secret, ok := bearer(r)
	if !ok {
		return unauthorized{errors.New("enroll: give the join token's secret as Authorization: Bearer SECRET")}
	}
	// The token is checked first, so that a stranger learns nothing from the
	// answer to a body; it is checked again, and used, in Enroll's transaction.
	hash := store.HashToken(secret)
	if t, err := s.store.LookupToken(r.Context(), hash); err != nil || t.Kind != store.EnrollToken {
		if err == nil || errors.Is(err, store.ErrNotFound) {
			return unauthorized{errors.New("enroll: unknown join token")}
		}
		return err
	}
	var req api.Host
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if len(req.Routes) > 0 || len(req.Addresses) > 0 || req.Hub {
		return badRequest{errors.New("enroll: a joining host can't set its routes, addresses or hub role; an admin does (wgnet set)")}
	}
	h, err := fromAPIHost(req)
	if err != nil {
		return err
	}
	t, h, rev, err := s.store.Enroll(r.Context(), hash, time.Now(), h, validate)
	if err != nil {
		return err
	}
	s.log.Info("host enrolled", "network", t.Network, "host", h.Name, "revision", rev)
	writeJSON(w, http.StatusCreated, api.Enrolled{Network: t.Network, Host: toAPIHost(h), Revision: rev})
	return nil
}
