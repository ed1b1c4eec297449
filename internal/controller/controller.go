// Package controller is `wgnet controller`'s server: the HTTPS JSON API of
// package api over a store.Store, its own CA and serving certificate, the admin
// token, /healthz and Prometheus /metrics. A change is checked with the same
// packages the offline commands use (spec validation, compile), inside the
// store's writing transaction, so that what is stored always compiles; a
// rendered config holds public data only.
//
// It keeps no state of its own besides what it reads from the store on each
// request, so several controllers can share one database. It imports api,
// atomicfile, check, compile, diag, spec, store and wgkey; never the data plane,
// and no store implementation (the command picks one).
package controller

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/store"
)

// MaxBody is the largest request body the API reads.
const MaxBody = 1 << 20

// Config is what a Server is told, not state: it is the same for every
// controller of one installation.
type Config struct {
	Log *slog.Logger // nil: discard
	// URLs are the https URLs the controller is reached at, put into join
	// tokens; CAHash is its CA's pin (api.CAHash), put there too.
	URLs   []string
	CAHash string
}

// Server is the API over one store. Its zero value is not usable; use New.
type Server struct {
	store   store.Store
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	latency *prometheus.HistogramVec
	mux     *http.ServeMux
	routes  []Route

	agents  agentCache   // each network compiled at its last revision asked for
	reports reportBatch  // agents' status reports waiting to be written
	polling atomic.Int64 // agents waiting in a long poll: "agents connected"
	creds   credCache    // agent credentials recently found in the store
	// answers counts the desired states sent to agents, by kind: "state"
	// (whole) or "delta" (v2).
	answers *prometheus.CounterVec
}

// Auth says which credential a route needs.
type Auth int

// Kinds of credential.
const (
	AuthAdmin  Auth = iota // the admin token as Bearer
	AuthNone               // none: health only
	AuthEnroll             // a join token's secret as Bearer, checked and used with the change
	AuthAgent              // a host's agent credential as Bearer: the route acts on that host only
)

// Route is one route of the API: the router is built from this list, and
// Routes returns it, so that tests can check every route.
type Route struct {
	Method  string
	Pattern string // a net/http ServeMux pattern, without the method
	Auth    Auth
	handle  func(w http.ResponseWriter, r *http.Request) error
}

// New returns the API over s.
func New(s store.Store, cfg Config) *Server {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &Server{store: s, cfg: cfg, log: log, reg: prometheus.NewRegistry(), mux: http.NewServeMux()}
	srv.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wgnet_controller_api_request_duration_seconds",
		Help:    "Time to answer an API request, by route, method and status code.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method", "code"})
	srv.reg.MustRegister(srv.latency, &collector{s: s, log: log}, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wgnet_controller_agents_connected",
		Help: "Agents waiting on this controller in a long poll of their change log.",
	}, func() float64 { return float64(srv.polling.Load()) }))
	srv.answers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wgnet_controller_agent_states_total",
		Help: "Desired states sent to agents in long poll answers, by kind: state (whole) or delta (API v2).",
	}, []string{"kind"})
	srv.reg.MustRegister(srv.answers)
	metrics := promhttp.HandlerFor(srv.reg, promhttp.HandlerOpts{})
	v := "/" + api.Version
	srv.routes = []Route{
		{Method: "GET", Pattern: "/healthz", Auth: AuthNone, handle: srv.healthz},
		{Method: "POST", Pattern: v + "/enroll", Auth: AuthEnroll, handle: srv.enroll},
		{Method: "GET", Pattern: "/metrics", handle: func(w http.ResponseWriter, r *http.Request) error {
			metrics.ServeHTTP(w, r)
			return nil
		}},
		{Method: "GET", Pattern: v + "/networks", handle: srv.listNetworks},
		{Method: "POST", Pattern: v + "/networks", handle: srv.createNetwork},
		{Method: "GET", Pattern: v + "/networks/{network}", handle: srv.getNetwork},
		{Method: "DELETE", Pattern: v + "/networks/{network}", handle: srv.deleteNetwork},
		{Method: "GET", Pattern: v + "/networks/{network}/hosts", handle: srv.listHosts},
		{Method: "POST", Pattern: v + "/networks/{network}/hosts", handle: srv.addHost},
		{Method: "PATCH", Pattern: v + "/networks/{network}/hosts/{host}", handle: srv.setHost},
		{Method: "DELETE", Pattern: v + "/networks/{network}/hosts/{host}", handle: srv.removeHost},
		{Method: "GET", Pattern: v + "/networks/{network}/hosts/{host}/config", handle: srv.renderHost},
		{Method: "GET", Pattern: v + "/networks/{network}/check", handle: srv.check},
		{Method: "GET", Pattern: v + "/networks/{network}/policy", handle: srv.getPolicy},
		{Method: "PUT", Pattern: v + "/networks/{network}/policy", handle: srv.putPolicy},
		{Method: "GET", Pattern: v + "/networks/{network}/changes", handle: srv.changes},
		{Method: "POST", Pattern: v + "/networks/{network}/tokens", handle: srv.createToken},
		{Method: "GET", Pattern: v + "/networks/{network}/status", handle: srv.status},
		{Method: "GET", Pattern: v + "/audit", handle: srv.audit},
		{Method: "GET", Pattern: v + "/tokens", handle: srv.listTokens},
		{Method: "POST", Pattern: v + "/tokens/admin", handle: srv.createAdminToken},
		{Method: "DELETE", Pattern: v + "/tokens/{id}", handle: srv.revokeToken},
		{Method: "GET", Pattern: v + "/agent/state", Auth: AuthAgent, handle: srv.agentState},
		{Method: "GET", Pattern: v + "/agent/changes", Auth: AuthAgent, handle: srv.agentChanges},
		{Method: "POST", Pattern: v + "/agent/status", Auth: AuthAgent, handle: srv.agentReport},
		{Method: "DELETE", Pattern: v + "/agent", Auth: AuthAgent, handle: srv.agentLeave},
	}
	for _, rt := range srv.routes {
		srv.mux.Handle(rt.Method+" "+rt.Pattern, srv.wrap(rt))
	}
	srv.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route")
	})
	return srv
}

// Routes returns the routes the router serves.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// statusWriter remembers the status code for the latency histogram.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// wrap authenticates (unless the route is public), times the request and turns
// a handler's error into a JSON error answer.
func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			s.latency.WithLabelValues(rt.Pattern, rt.Method, fmt.Sprint(sw.code)).Observe(time.Since(start).Seconds())
		}()
		sw.Header().Set(api.VersionHeader, strings.Join(api.Versions, ","))
		version := api.Version // a client that says nothing: v1
		if h := r.Header.Get(api.VersionHeader); h != "" {
			var err error
			if version, err = api.Negotiate(api.Versions, api.ParseVersions(h)); err != nil {
				writeError(sw, http.StatusBadRequest, "controller: "+err.Error())
				return
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), versionKey{}, version))
		switch rt.Auth {
		case AuthAgent:
			id, err := s.authenticateAgent(r)
			if err != nil {
				s.refuse(sw, r, err)
				return
			}
			ctx := context.WithValue(r.Context(), agentKey{}, id)
			r = r.WithContext(store.WithActor(ctx, "agent of "+id.host))
		case AuthAdmin:
			who, err := s.authenticate(r)
			if err != nil {
				s.refuse(sw, r, err)
				return
			}
			r = r.WithContext(store.WithActor(r.Context(), who))
		}
		r.Body = http.MaxBytesReader(sw, r.Body, MaxBody)
		if err := rt.handle(sw, r); err != nil {
			code, msg := status(err)
			if code >= 500 {
				s.log.Error("api", "method", r.Method, "route", rt.Pattern, "err", err)
			}
			writeError(sw, code, msg)
		}
	})
}

// versionKey is the context key of the API version negotiated for a request.
type versionKey struct{}

// apiVersion is the API version negotiated for r (v1 when none was).
func apiVersion(r *http.Request) string {
	if v, ok := r.Context().Value(versionKey{}).(string); ok {
		return v
	}
	return api.Version
}

// errAuthStore marks a credential that could not be checked because the
// store did not answer (a read-connection pool exhausted, a database down):
// 503 with Retry-After, never 401, which tells an agent its host was removed.
var errAuthStore = errors.New("controller: the credential could not be checked now (store unavailable); retry")

// refuse answers a request whose credential was not accepted: 503 with
// Retry-After when the store could not be read, else 401.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errAuthStore) {
		s.log.Error("authentication: store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, errAuthStore.Error())
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="wgnet"`)
	writeError(w, http.StatusUnauthorized, err.Error())
}

var errUnauthorized = errors.New("missing or wrong credential: give the admin token as Authorization: Bearer TOKEN")

// authenticate checks the request's bearer token against every admin token's
// hash, in constant time, without stopping at the first match, and returns
// who it is for the audit log: "admin" and the token's ID, never the secret.
func (s *Server) authenticate(r *http.Request) (string, error) {
	tok, ok := bearer(r)
	if !ok {
		return "", errUnauthorized
	}
	hashes, err := s.store.AdminTokens(r.Context())
	if err != nil {
		return "", fmt.Errorf("%w: %v", errAuthStore, err)
	}
	h := store.HashToken(tok)
	match := 0
	for _, a := range hashes {
		match |= subtle.ConstantTimeCompare(h[:], a[:])
	}
	if match != 1 {
		return "", errUnauthorized
	}
	return "admin " + h.ID(), nil
}

// bearer returns the request's bearer credential.
func bearer(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok, ok && tok != ""
}

// unauthorized marks a missing or unknown credential (401).
type unauthorized struct{ error }

// badRequest marks an error in what the client sent.
type badRequest struct{ error }

// status maps an error to an HTTP status and the message the client sees.
func status(err error) (int, string) {
	var br badRequest
	var mbe *http.MaxBytesError
	var ua unauthorized
	switch {
	case errors.As(err, &ua):
		return http.StatusUnauthorized, err.Error()
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", MaxBody)
	case errors.As(err, &br), errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrTokenUsed):
		return http.StatusConflict, err.Error()
	case errors.Is(err, store.ErrTokenExpired):
		return http.StatusGone, err.Error()
	}
	return http.StatusInternalServerError, "internal error (see the controller's log)"
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.Error{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func readJSON(r *http.Request, v any) error {
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest{fmt.Errorf("request body: %w", err)}
	}
	return nil
}

// NewToken returns a new random token secret with the given prefix.
func NewToken(prefix string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}
