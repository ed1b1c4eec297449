package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/wgconf"
)

// This file is the agents' side of the API (issue 15): the per-host agent
// credential handed out at enrollment (only its hash is stored), the host's
// desired state compiled from public data, the long poll of the change log,
// status reports (written to the store in batches) and leaving.

// MaxWait is the longest a long poll of the change log waits.
const MaxWait = 60 * time.Second

// ReportFlush is how long status reports gather before they are written to
// the store in one transaction.
var ReportFlush = 250 * time.Millisecond

// agentKey is the context key of the calling agent's host.
type agentKey struct{}

// agentID is the host an agent credential belongs to.
type agentID struct{ network, host string }

// CredentialCache is how long a controller trusts an agent credential it has
// looked up in the store before it looks again. A cached credential passes
// only while the network's last compiled revision still has the host; once a
// revision without it is compiled (the next long poll after the removal, on
// any controller), the store is asked again and refuses it.
var CredentialCache = 30 * time.Second

// credCache remembers agent credentials found in the store, by hash.
type credCache struct {
	mu sync.Mutex // guards m
	m  map[store.TokenHash]credEntry
}

type credEntry struct {
	id      agentID
	expires time.Time
}

// authenticateAgent looks the bearer credential up by its hash (a 256-bit
// secret's SHA-256: the lookup reveals nothing) and returns whose it is.
func (s *Server) authenticateAgent(r *http.Request) (agentID, error) {
	errAgent := errors.New("missing or wrong credential: give the host's agent credential as Authorization: Bearer CREDENTIAL (wgnet agent join)")
	tok, ok := bearer(r)
	if !ok {
		return agentID{}, errAgent
	}
	h := store.HashToken(tok)
	now := time.Now()
	s.creds.mu.Lock()
	e, hit := s.creds.m[h]
	s.creds.mu.Unlock()
	if hit && now.Before(e.expires) && s.agents.has(e.id.network, e.id.host) {
		return e.id, nil
	}
	t, err := s.store.LookupToken(r.Context(), h)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return agentID{}, fmt.Errorf("%w: %v", errAuthStore, err)
	}
	if err != nil || t.Kind != store.AgentToken || t.Network == "" || t.Host == "" {
		return agentID{}, errAgent
	}
	id := agentID{t.Network, t.Host}
	s.creds.mu.Lock()
	defer s.creds.mu.Unlock()
	if s.creds.m == nil || len(s.creds.m) > 100_000 {
		s.creds.m = map[store.TokenHash]credEntry{}
	}
	s.creds.m[h] = credEntry{id, now.Add(CredentialCache)}
	return id, nil
}

// forget drops the cached credentials of a host (it left through this controller).
func (c *credCache) forget(id agentID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.m {
		if e.id == id {
			delete(c.m, h)
		}
	}
}

func agentOf(r *http.Request) agentID {
	id, _ := r.Context().Value(agentKey{}).(agentID)
	return id
}

// observedEndpoint is the endpoint of an enrolling host that declared only its
// port: the address its request comes from (never a guess by the host).
func observedEndpoint(r *http.Request, port int) (string, error) {
	if port < 1 || port > 65535 {
		return "", badRequest{fmt.Errorf("endpoint_port %d: want 1-65535", port)}
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return "", fmt.Errorf("observed address %q: %w", r.RemoteAddr, err)
	}
	return net.JoinHostPort(ap.Addr().Unmap().WithZone("").String(), strconv.Itoa(port)), nil
}

// compiled is one revision of a network compiled for its agents, the same
// for every agent that asks (one compile per revision, not per agent): every
// host's intent without its peers, and a host's peers made when an answer
// needs them (compile.Prepare: a delta needs only the peers that changed, a
// 1,000-host mesh's million peers are never made at once). A cache rebuilt
// from the store: any controller answers the same.
type compiled struct {
	rev      uint64
	mark     store.Change // the log's entry at rev: with rev, what the compilation is known by
	net      store.Network
	hosts    *compile.Network // nil when the network has no host
	approved []string
	iface    string
	port     int

	headsMu sync.Mutex                 // guards heads
	heads   map[string]*api.AgentState // each host's state without peers, made once (head)
	sums    hostDigests                // each host's state's digest (digest.go)
}

// host is the intent of the host called name without its peers (read-only).
func (cp *compiled) host(name string) (*intent.Host, bool) { return cp.hosts.Head(name) }

// agentCache holds the last compiled revision of each network, and the
// change log entries agents asked for last: after a change every agent of a
// network asks for the same entries, read once.
type agentCache struct {
	mu    sync.Mutex // guards the fields below
	nets  map[string]*compiled
	locks map[string]*sync.Mutex // one compile of a network at a time
	logs  map[logKey]logEntries
	steps map[string]steps // what changed between the revisions compiled, per network (delta.go)
}

// logKey names the entries of a network's log after since, read at revision rev.
type logKey struct {
	network   string
	since, at uint64
}

// logEntries is a log read, and when.
type logEntries struct {
	cs   []store.Change
	read time.Time
}

// LogCache is how long the entries of a log read for one agent serve the
// others that ask for the same (after a change, every agent of a network
// does, within about a second). Bounded because a revision alone does not
// name a log: a network deleted and created again, or a store restored,
// reaches the same revisions with other entries (a deletion through this
// controller forgets them at once).
var LogCache = 5 * time.Second

// changes returns the log of network after since as of revision at (at most
// 1,000 entries), from the cache when another agent asked for the same
// within LogCache.
func (c *agentCache) changes(ctx context.Context, st store.Store, network string, since, at uint64) ([]store.Change, error) {
	k := logKey{network, since, at}
	c.mu.Lock()
	le, ok := c.logs[k]
	c.mu.Unlock()
	if ok && time.Since(le.read) < LogCache {
		return le.cs, nil
	}
	read := time.Now()
	cs, err := st.Changes(ctx, network, since, 1000)
	if err != nil {
		return nil, err
	}
	if len(cs) > 0 && lastRevision(cs) != at {
		return cs, nil // the log moved on since: not the entries of (since, at)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logs == nil || len(c.logs) > 256 {
		c.logs = map[logKey]logEntries{}
	}
	c.logs[k] = logEntries{cs, read}
	return cs, nil
}

// forget drops all this controller knows of network (deleted through it).
func (c *agentCache) forget(network string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nets, network)
	delete(c.steps, network)
	for k := range c.logs {
		if k.network == network {
			delete(c.logs, k)
		}
	}
}

func (c *agentCache) get(network string) (*compiled, *sync.Mutex) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nets == nil {
		c.nets, c.locks = map[string]*compiled{}, map[string]*sync.Mutex{}
	}
	m, ok := c.locks[network]
	if !ok {
		m = &sync.Mutex{}
		c.locks[network] = m
	}
	return c.nets[network], m
}

// put caches cp as network's compiled revision (nil: the network is gone)
// and the step from the revision compiled before it, when there is one.
func (c *agentCache) put(network string, cp *compiled, st *step) {
	if cp == nil {
		c.forget(network)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nets[network] = cp
	if st != nil {
		if c.steps == nil {
			c.steps = map[string]steps{}
		}
		c.steps[network] = c.steps[network].add(st)
	}
}

// hostStep is what changed for host from revision since to revision to, as
// far as the steps this controller compiled say.
func (c *agentCache) hostStep(network, host string, since, to uint64) (hostStep, bool) {
	c.mu.Lock()
	ss := c.steps[network]
	c.mu.Unlock()
	return ss.forHost(host, since, to)
}

// has reports whether the last compiled revision of network this controller
// knows still has host (true when it knows none).
func (c *agentCache) has(network, host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.nets[network]
	if !ok {
		return true
	}
	_, ok = cp.host(host)
	return ok
}

// compiledNetwork returns the network compiled at its current revision (n
// and the log after some revision, cs, when the caller has just read them;
// else read here). A compilation is known by its revision and the log's
// entry at that revision (its time, kind and host), never by its revision
// alone: a network deleted and created again, or a store restored from a
// backup, reaches the same revisions again with other contents, and its
// revision may go down.
func (s *Server) compiledNetwork(ctx context.Context, network string, n store.Network, cs []store.Change) (*compiled, error) {
	if n.Name == "" {
		var err error
		if n, err = s.store.Network(ctx, network); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				s.agents.put(network, nil, nil)
			}
			return nil, err
		}
	}
	mark, known := entryAt(cs, n.Revision)
	if !known {
		var err error
		if mark, err = s.logEntry(ctx, network, n.Revision); err != nil {
			return nil, err
		}
	}
	cp, lock := s.agents.get(network)
	if cp.is(mark) {
		return cp, nil
	}
	lock.Lock()
	defer lock.Unlock()
	old := cp
	if cp, _ = s.agents.get(network); cp.is(mark) {
		return cp, nil // compiled by another request meanwhile
	}
	if cp != nil {
		old = cp
		if cp.rev > n.Revision {
			// Compiled by another request at a revision the store reached
			// since n was read: still the store's, if its log says so.
			if e, err := s.logEntry(ctx, network, cp.rev); err == nil && cp.is(e) {
				return cp, nil
			}
		}
	}
	cp, err := s.compile(ctx, network)
	if err != nil {
		return nil, err
	}
	if old == nil {
		s.agents.put(network, cp, nil)
		return cp, nil
	}
	// A step only within one history: the log still has old's entry. Else
	// (deleted and created again, a store restored) nothing this controller
	// knew of the network holds: its steps and logs go with old.
	if e, err := s.logEntry(ctx, network, old.rev); err == nil && old.rev < cp.rev && old.is(e) {
		s.agents.put(network, cp, diffCompiled(old, cp))
	} else {
		s.agents.forget(network)
		s.agents.put(network, cp, nil)
	}
	return cp, nil
}

// compile reads network from the store and compiles it at its current
// revision, known by the log's entry there.
func (s *Server) compile(ctx context.Context, network string) (*compiled, error) {
	n, hs, log, err := s.store.HostsAndLog(ctx, network, 0, 1) // one transaction: the hosts at the log's entry
	if err != nil {
		return nil, err
	}
	mark, ok := entryAt(log, n.Revision)
	if !ok {
		mark = store.Change{Revision: n.Revision}
	}
	sp, err := toSpec(n, hs)
	if err != nil {
		return nil, err
	}
	cp := &compiled{rev: n.Revision, mark: mark, net: n, iface: sp.InterfaceName()}
	if len(hs) > 0 {
		if cp.hosts, err = compile.Prepare(sp, spec.Secrets{}); err != nil {
			return nil, fmt.Errorf("compile %s: %w", n.Name, err)
		}
		cp.port = sp.ListenPortOf(&sp.Hosts[0])
	}
	for _, h := range hs {
		for _, p := range h.Routes {
			cp.approved = append(cp.approved, p.String())
		}
	}
	slices.Sort(cp.approved)
	cp.approved = slices.Compact(cp.approved)
	return cp, nil
}

// entryAt is the entry of cs (a log read in order) at revision rev.
func entryAt(cs []store.Change, rev uint64) (store.Change, bool) {
	if len(cs) > 0 && cs[len(cs)-1].Revision == rev {
		return cs[len(cs)-1], true
	}
	return store.Change{}, false
}

// logEntry reads the entry of network's log at revision rev: what the
// compilation at rev is known by. A store whose log lacks it (none should:
// every revision is a change) gives the revision alone.
func (s *Server) logEntry(ctx context.Context, network string, rev uint64) (store.Change, error) {
	if rev == 0 {
		return store.Change{}, nil
	}
	cs, err := s.store.Changes(ctx, network, rev-1, 1)
	if err != nil {
		return store.Change{}, err
	}
	if e, ok := entryAt(cs, rev); ok {
		return e, nil
	}
	return store.Change{Revision: rev}, nil
}

// is reports whether cp is the compilation of the revision whose log entry
// is e (false for nil).
func (cp *compiled) is(e store.Change) bool {
	return cp != nil && cp.rev == e.Revision && cp.mark.Kind == e.Kind && cp.mark.Host == e.Host && cp.mark.Time.Equal(e.Time)
}

// agentState answers GET /v1/agent/state: the calling host's compiled intent
// as wire data, without a key, hooks or anything to run.
func (s *Server) agentState(w http.ResponseWriter, r *http.Request) error {
	id := agentOf(r)
	cp, err := s.compiledNetwork(r.Context(), id.network, store.Network{}, nil)
	if err != nil {
		return err
	}
	ih, err := s.member(cp, id)
	if err != nil {
		return err
	}
	st := toAgentState(cp, ih, s.cfg.URLs)
	cp.keepDigest(r, &st)
	writeJSON(w, http.StatusOK, st)
	return nil
}

// member returns the calling agent's host in cp (without its peers), the
// network compiled at its current revision; a host that is gone there is refused as unauthorized and
// its cached credential forgotten (another controller removed it: its
// credential is gone from the store).
func (s *Server) member(cp *compiled, id agentID) (*intent.Host, error) {
	ih, ok := cp.host(id.host)
	if !ok {
		s.creds.forget(id)
		return nil, unauthorized{fmt.Errorf("host %s is not in network %s at revision %d (removed): its credential is no longer valid", id.host, id.network, cp.rev)}
	}
	return ih, nil
}

// toAgentState is the host's whole desired state at cp's revision.
func toAgentState(cp *compiled, ih *intent.Host, urls []string) api.AgentState {
	out := *cp.head(ih)
	out.Revision, out.URLs = cp.rev, urls
	out.Peers = make([]api.Peer, 0, cp.hosts.PeerRoom(ih.Name))
	cp.hosts.EachPeer(ih.Name, func(p *wgconf.Peer) { out.Peers = append(out.Peers, wirePeer(p)) })
	return out
}

// toAgentHead is the host's desired state without its peers, URLs and
// revision: every field a delta's Head carries. It reads the host's intent
// (no peers) and, of the network, only what diffCompiled's sameNet compares:
// keep them together (a head is shared between revisions when both are
// unchanged).
func toAgentHead(cp *compiled, ih *intent.Host) *api.AgentState {
	out := &api.AgentState{Network: cp.net.Name, Host: ih.Name, Interface: cp.iface, MTU: ih.MTU,
		ApprovedRoutes: cp.approved, ForwardV4: ih.Forward.V4, ForwardV6: ih.Forward.V6, ClampMSS: ih.Firewall.ClampMSS,
		Filter: toAPIFilter(ih.Firewall.Filter), DNS: ih.DNS, Table: ih.Table, FwMark: ih.FwMark}
	for _, p := range cp.net.Subnets {
		out.Subnets = append(out.Subnets, p.String())
	}
	if ih.ListenPort != nil {
		out.ListenPort = int(*ih.ListenPort)
	}
	for _, a := range ih.Addresses {
		out.Addresses = append(out.Addresses, a.String())
	}
	for _, p := range ih.Routes {
		out.Routes = append(out.Routes, p.String())
	}
	return out
}

// wirePeer is one peer as the agent gets it.
func wirePeer(p *wgconf.Peer) api.Peer {
	ap := api.Peer{Name: p.Name, PublicKey: p.PublicKey.String(), Keepalive: p.PersistentKeepalive, AllowedIPs: make([]string, 0, len(p.AllowedIPs))}
	if p.Endpoint != nil {
		ap.Endpoint = p.Endpoint.String()
	}
	for _, a := range p.AllowedIPs {
		ap.AllowedIPs = append(ap.AllowedIPs, a.String())
	}
	return ap
}

// agentChanges answers GET /v1/agent/changes?since=N&wait=D&state=1: the
// change log of the agent's network after N; with wait, a long poll that
// answers as soon as the revision passes N (store.WaitRevision), or empty
// after D (at most MaxWait); with state=1, when the revision is not N, the
// agent's desired state too (one round trip per change). An answer whose
// revision is below N tells the agent that the store is behind it (restored
// from a backup).
func (s *Server) agentChanges(w http.ResponseWriter, r *http.Request) error {
	since, err := sinceParam(r)
	if err != nil {
		return err
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			return badRequest{fmt.Errorf("wait %q: want a duration such as 30s", v)}
		}
		wait = min(wait, MaxWait)
	}
	id := agentOf(r)
	network := id.network
	var out api.AgentChanges
	var n store.Network
	var log []store.Change // the entries read, when they were
	if wait > 0 {
		// The wait's answer says the revision: the log is read only when it moved.
		s.polling.Add(1)
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		rev, err := s.store.WaitRevision(ctx, network, since)
		cancel()
		s.polling.Add(-1)
		switch {
		case errors.Is(err, context.Canceled):
			writeError(w, http.StatusServiceUnavailable, "controller shutting down or client gone: poll again")
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			writeJSON(w, http.StatusOK, api.AgentChanges{Revision: rev, Changes: []api.Change{}})
			return nil
		case err != nil:
			return err
		}
		cs, err := s.agents.changes(r.Context(), s.store, network, since, rev)
		if err != nil {
			return err
		}
		n = store.Network{Name: network, Revision: max(rev, lastRevision(cs))}
		out, log = api.AgentChanges{Revision: n.Revision, Changes: toAPIChanges(cs)}, cs
	} else {
		ch, rn, err := s.readChanges(r.Context(), network, since)
		if err != nil {
			return err
		}
		out, n = api.AgentChanges{Revision: ch.Revision, Changes: ch.Changes}, rn
	}
	if r.URL.Query().Get("state") == "1" && n.Revision != since {
		cp, err := s.compiledNetwork(r.Context(), network, n, log)
		if err != nil {
			return err
		}
		ih, err := s.member(cp, id)
		if err != nil {
			return err
		}
		out.State, out.Delta = s.stateOrDelta(r, cp, ih, since)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// stateOrDelta is what a long poll's answer carries for the host ih at cp:
// to an agent that speaks v2, what changed since its revision, when the
// steps this controller compiled reach from there (not when the store is
// behind the agent); else the whole state.
func (s *Server) stateOrDelta(r *http.Request, cp *compiled, ih *intent.Host, since uint64) (*api.AgentState, *api.AgentDelta) {
	if api.Includes(apiVersion(r), api.V2) && since > 0 && since < cp.rev {
		if hs, ok := s.agents.hostStep(cp.net.Name, ih.Name, since, cp.rev); ok {
			s.answers.WithLabelValues("delta").Inc()
			return nil, cp.delta(ih, hs, since, s.cfg.URLs)
		}
	}
	s.answers.WithLabelValues("state").Inc()
	st := toAgentState(cp, ih, s.cfg.URLs)
	cp.keepDigest(r, &st)
	return &st, nil
}

func lastRevision(cs []store.Change) uint64 {
	if len(cs) == 0 {
		return 0
	}
	return cs[len(cs)-1].Revision
}

// agentReport answers POST /v1/agent/status: the report joins the batch the
// controller writes to the store in one transaction (202: accepted, not yet
// written).
func (s *Server) agentReport(w http.ResponseWriter, r *http.Request) error {
	var req api.AgentReport
	if err := readJSON(r, &req); err != nil {
		return err
	}
	id := agentOf(r)
	st := store.HostStatus{Host: id.host, Revision: req.Revision, Time: time.Now().UTC()}
	if req.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, req.Time)
		if err != nil {
			return badRequest{fmt.Errorf("time: %w", err)}
		}
		st.Time = t
	}
	for _, p := range req.Peers {
		k, err := parsePublicKey(p.PublicKey)
		if err != nil {
			return err
		}
		ps, err := peerStatus(k, p)
		if err != nil {
			return badRequest{fmt.Errorf("peer %s: %w", p.PublicKey, err)}
		}
		st.Peers = append(st.Peers, ps)
	}
	s.reports.add(s, store.StatusReport{Network: id.network, Status: st})
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// agentLeave answers DELETE /v1/agent: the host removes itself.
func (s *Server) agentLeave(w http.ResponseWriter, r *http.Request) error {
	id := agentOf(r)
	rev, err := s.store.RemoveHost(r.Context(), id.network, id.host)
	if err != nil {
		return err
	}
	s.creds.forget(id)
	s.log.Info("host left", "network", id.network, "host", id.host, "revision", rev)
	writeJSON(w, http.StatusOK, api.Removed{Revision: rev})
	return nil
}

// reportBatch gathers status reports for ReportFlush and writes them in one
// store transaction; no goroutine outlives a flush.
type reportBatch struct {
	mu      sync.Mutex // guards pending and armed
	pending []store.StatusReport
	armed   bool
}

func (b *reportBatch) add(s *Server, r store.StatusReport) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = append(b.pending, r)
	if !b.armed {
		b.armed = true
		time.AfterFunc(ReportFlush, func() { b.flush(s) })
	}
}

// flush writes what is pending.
func (b *reportBatch) flush(s *Server) {
	b.mu.Lock()
	batch := b.pending
	b.pending, b.armed = nil, false
	b.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.store.ReportStatus(ctx, batch); err != nil {
		s.log.Error("status reports", "reports", len(batch), "err", err)
	}
}

// Close writes the status reports still gathering.
func (s *Server) Close() { s.reports.flush(s) }
