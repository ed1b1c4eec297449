package controller

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/spec"
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
	routes, err := parseRoutes("routes", req.Routes)
	if err != nil {
		return err
	}
	for i, p := range routes {
		if p != p.Masked() {
			return badRequest{fmt.Errorf("routes: %s has host bits set (did you mean %s?)", p, p.Masked())}
		}
		routes[i] = p
	}
	if req.Host != "" && !spec.ValidName(req.Host) {
		return badRequest{fmt.Errorf("host %q: a name is 1-63 of a-z 0-9 _ . - starting with a letter or digit", req.Host)}
	}
	secret, err := NewToken("")
	if err != nil {
		return err
	}
	network := r.PathValue("network")
	t := store.Token{Hash: store.HashToken(secret), Kind: store.EnrollToken, Network: network, Host: req.Host,
		Uses: uses, Expires: time.Now().Add(ttl).UTC(), Routes: routes}
	if err := s.store.CreateToken(r.Context(), t); err != nil {
		return err
	}
	s.log.Info("join token created", "network", network, "token", t.Hash.ID(), "uses", uses, "expires", t.Expires, "host", req.Host)
	jt := api.JoinToken{URLs: s.cfg.URLs, CAHash: s.cfg.CAHash, Secret: secret}
	writeJSON(w, http.StatusCreated, api.Token{Token: jt.String(), Network: network, Uses: uses, Expires: t.Expires.Format(time.RFC3339),
		ID: t.Hash.ID(), URLs: jt.URLs, CAHash: jt.CAHash, Routes: req.Routes})
	return nil
}

// enroll adds the host that presents a join token's secret, using the token
// in the same transaction. The host gives its public key; its addresses are
// allocated; it may claim routes only inside its token's (token create
// --route), others need an admin (set --route).
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
	if len(req.Addresses) > 0 || req.Hub {
		return badRequest{errors.New("enroll: a joining host can't set its addresses or hub role; an admin does (wgnet set)")}
	}
	if !reflect.DeepEqual(req.Settings, api.Settings{}) {
		return badRequest{errors.New("enroll: a joining host can't set its MTU, DNS, table, fwmark, full tunnel or the like; an admin does (wgnet set)")}
	}
	if req.EndpointPort != 0 {
		if req.Endpoint != "" {
			return badRequest{errors.New("enroll: give endpoint or endpoint_port, not both")}
		}
		ep, err := observedEndpoint(r, req.EndpointPort)
		if err != nil {
			return err
		}
		req.Endpoint, req.EndpointPort = ep, 0
	}
	h, err := fromAPIHost(req)
	if err != nil {
		return err
	}
	// The host's agent credential: shown once, only its hash is stored, with
	// the host, in the enrollment's transaction.
	cred, err := NewToken(api.AgentCredentialPrefix)
	if err != nil {
		return err
	}
	ctx := store.WithActor(r.Context(), "join token "+hash.ID())
	t, h, rev, err := s.store.Enroll(ctx, hash, time.Now(), h, validate, store.HashToken(cred))
	switch {
	case errors.Is(err, store.ErrTokenExpired):
		return fmt.Errorf("enroll: join token %s: %w at %s: ask an admin for a new one (wgnet token create --ttl D)", hash.ID(), store.ErrTokenExpired, t.Expires.Format(time.RFC3339))
	case errors.Is(err, store.ErrTokenUsed):
		return fmt.Errorf("enroll: join token %s: %w (all its uses are spent): ask an admin for a new one (wgnet token create --uses N)", hash.ID(), store.ErrTokenUsed)
	case err != nil:
		return err
	}
	s.log.Info("host enrolled", "network", t.Network, "host", h.Name, "token", hash.ID(), "revision", rev)
	writeJSON(w, http.StatusCreated, api.Enrolled{Network: t.Network, Host: toAPIHost(h), Revision: rev, Credential: cred})
	return nil
}
