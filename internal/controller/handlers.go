package controller

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/check"
	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// healthz answers a load balancer: 200 when the database answers and its
// schema is one this controller runs against (its migrations applied), 503
// otherwise, with what is wrong.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	h, err := s.store.Health(r.Context())
	out := api.Health{Status: "ok", API: api.Version, Store: h.Backend, Schema: h.Schema, SchemaWanted: h.Code, Database: "reachable", Migrations: "current"}
	if f, ok := s.store.(interface{ Following() (bool, int, error) }); ok {
		live, _, _ := f.Following()
		out.Following = &live
	}
	switch {
	case err != nil:
		s.log.Warn("healthz: store", "err", err)
		out.Status, out.Database, out.Migrations = "unavailable", "unreachable", "unknown"
	case !h.Current:
		out.Status, out.Migrations = "unavailable", fmt.Sprintf("schema %d, this controller needs %d: run a controller of this version to migrate, or upgrade", h.Schema, h.Code)
	}
	code := http.StatusOK
	if out.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
	return nil
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.store.Networks(r.Context())
	if err != nil {
		return err
	}
	out := []api.Network{}
	for _, n := range ns {
		out = append(out, toAPINetwork(n))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateNetwork
	if err := readJSON(r, &req); err != nil {
		return err
	}
	n := store.Network{Name: req.Name, Topology: req.Topology}
	var err error
	if n.Subnets, err = parsePrefixes("subnets", req.Subnets); err != nil {
		return err
	}
	// The same validation as a spec's: name, subnets, topology.
	if err := validate(n, nil); err != nil {
		return err
	}
	if n, err = s.store.CreateNetwork(r.Context(), n); err != nil {
		return err
	}
	s.log.Info("network created", "network", n.Name)
	writeJSON(w, http.StatusCreated, toAPINetwork(n))
	return nil
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := s.store.Network(r.Context(), r.PathValue("network"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAPINetwork(n))
	return nil
}

func (s *Server) deleteNetwork(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("network")
	if err := s.store.DeleteNetwork(r.Context(), name); err != nil {
		return err
	}
	s.agents.forget(name)
	s.log.Info("network deleted", "network", name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listHosts(w http.ResponseWriter, r *http.Request) error {
	n, hs, err := s.store.Hosts(r.Context(), r.PathValue("network"))
	if err != nil {
		return err
	}
	out := api.Hosts{Network: toAPINetwork(n), Hosts: []api.Host{}}
	for _, h := range hs {
		out.Hosts = append(out.Hosts, toAPIHost(h))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) addHost(w http.ResponseWriter, r *http.Request) error {
	var req api.Host
	if err := readJSON(r, &req); err != nil {
		return err
	}
	h, err := fromAPIHost(req)
	if err != nil {
		return err
	}
	network := r.PathValue("network")
	h, rev, err := s.store.AddHost(r.Context(), network, h, validate)
	if err != nil {
		return err
	}
	s.log.Info("host added", "network", network, "host", h.Name, "revision", rev)
	writeJSON(w, http.StatusCreated, api.HostResult{Host: toAPIHost(h), Revision: rev})
	return nil
}

func (s *Server) setHost(w http.ResponseWriter, r *http.Request) error {
	var req api.SetHost
	if err := readJSON(r, &req); err != nil {
		return err
	}
	c, err := fromAPISetHost(req)
	if err != nil {
		return err
	}
	network, name := r.PathValue("network"), r.PathValue("host")
	h, rev, err := s.store.SetHost(r.Context(), network, name, c, validate)
	if err != nil {
		return err
	}
	s.log.Info("host changed", "network", network, "host", name, "revision", rev)
	writeJSON(w, http.StatusOK, api.HostResult{Host: toAPIHost(h), Revision: rev})
	return nil
}

func (s *Server) removeHost(w http.ResponseWriter, r *http.Request) error {
	network, name := r.PathValue("network"), r.PathValue("host")
	rev, err := s.store.RemoveHost(r.Context(), network, name)
	if err != nil {
		return err
	}
	s.log.Info("host removed", "network", network, "host", name, "revision", rev)
	writeJSON(w, http.StatusOK, api.Removed{Revision: rev})
	return nil
}

// renderHost compiles the network with the offline compiler, from public data
// only: each host reads its own private key on the host (PostUp hook).
func (s *Server) renderHost(w http.ResponseWriter, r *http.Request) error {
	n, hs, err := s.store.Hosts(r.Context(), r.PathValue("network"))
	if err != nil {
		return err
	}
	name := r.PathValue("host")
	sp, err := toSpec(n, hs)
	if err != nil {
		return err
	}
	if _, ok := sp.HostByName(name); !ok {
		return fmt.Errorf("host %s: %w", name, store.ErrNotFound)
	}
	hcs, err := compile.Compile(sp, spec.Secrets{})
	if err != nil {
		return fmt.Errorf("compile %s: %w", n.Name, err)
	}
	for _, hc := range hcs {
		if hc.Name == name {
			writeJSON(w, http.StatusOK, api.Config{Host: name, Interface: sp.InterfaceName(), Revision: n.Revision, WgQuick: string(hc.WgQuick())})
			return nil
		}
	}
	return fmt.Errorf("host %s: %w", name, store.ErrNotFound)
}

// check lints the network as the offline check lints a spec: the spec's own
// findings, then (when it has no errors) those of the configs it compiles to,
// each config's under its host's name.
func (s *Server) check(w http.ResponseWriter, r *http.Request) error {
	n, hs, err := s.store.Hosts(r.Context(), r.PathValue("network"))
	if err != nil {
		return err
	}
	sp, err := toSpec(n, hs)
	if err != nil {
		return err
	}
	errs, warns := sp.Lint()
	findings := append(errs, warns...)
	if len(errs) == 0 && len(hs) > 0 {
		hcs, err := compile.Compile(sp, spec.Secrets{})
		if err != nil {
			return fmt.Errorf("compile %s: %w", n.Name, err)
		}
		in := check.Input{Topology: sp.Topology, Hub: sp.Hub, PublicKeys: map[string]wgkey.Key{}}
		for _, hc := range hcs {
			c := hc.View() // check reads the peers, never changes them
			c.Name = hc.Name
			in.Configs = append(in.Configs, c)
		}
		for _, h := range hs {
			in.PublicKeys[h.Name] = h.PublicKey
		}
		findings = append(findings, check.Configs(in)...)
	}
	findings = append(findings, agentFindings(n, hs)...)
	out := api.Check{Revision: n.Revision, Findings: []api.Finding{}}
	for _, f := range findings {
		out.Findings = append(out.Findings, toAPIFinding(n.Name, f))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) changes(w http.ResponseWriter, r *http.Request) error {
	since, err := sinceParam(r)
	if err != nil {
		return err
	}
	return s.writeChanges(w, r, r.PathValue("network"), since)
}

// writeChanges answers the change log of network after since, at most 1,000
// entries, with the revision read before them.
func (s *Server) writeChanges(w http.ResponseWriter, r *http.Request, network string, since uint64) error {
	out, _, err := s.readChanges(r.Context(), network, since)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// readChanges reads the change log of network after since, at most 1,000
// entries, with the revision read before them.
func (s *Server) readChanges(ctx context.Context, network string, since uint64) (api.Changes, store.Network, error) {
	n, err := s.store.Network(ctx, network)
	if err != nil {
		return api.Changes{}, n, err
	}
	cs, err := s.store.Changes(ctx, network, since, 1000)
	if err != nil {
		return api.Changes{}, n, err
	}
	return api.Changes{Revision: n.Revision, Changes: toAPIChanges(cs)}, n, nil
}

func toAPIChanges(cs []store.Change) []api.Change {
	out := make([]api.Change, 0, len(cs))
	for _, c := range cs {
		out = append(out, api.Change{Revision: c.Revision, Kind: string(c.Kind), Host: c.Host, Time: c.Time.Format(time.RFC3339Nano)})
	}
	return out
}

// sinceParam reads the ?since=N of a log's route (0 when absent).
func sinceParam(r *http.Request) (uint64, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, badRequest{fmt.Errorf("since %q: want a number", v)}
	}
	return n, nil
}

// validate is the store.Validate of every change: the network as it would be
// must pass spec validation (the offline commands' rules), warnings allowed.
func validate(n store.Network, hosts []store.Host) error {
	if !spec.ValidName(n.Name) {
		return badRequest{fmt.Errorf("network %q: a name is 1-63 of a-z 0-9 _ . - starting with a letter or digit", n.Name)}
	}
	// hosts are only those the change can conflict with (store.Validate):
	// the policy, which names any host, is checked when it changes (putPolicy)
	// and compiles with what is there (a rule naming a host that left
	// matches nothing; check reports it).
	sp, err := toSpec(n, hosts)
	if err != nil {
		return err
	}
	sp.Policy = spec.Policy{}
	errs, _ := sp.Lint()
	if len(errs) > 0 {
		return badRequest{fmt.Errorf("network %s: %w", n.Name, errs.Err())}
	}
	return nil
}

// agentFindings are what the network's agents may not take: a subnet (the
// agent refuses the state) or a
// routed subnet granted to a host outside api.AgentRanges (one waiting for
// approval reaches no agent).
func agentFindings(n store.Network, hs []store.Host) []diag.Diagnostic {
	var out []diag.Diagnostic
	public := func(what string, p netip.Prefix) {
		if !api.InAgentRanges(p) {
			out = append(out, diag.Diagnostic{File: n.Name, Severity: diag.Warning, Code: "agent-public-route",
				Message: fmt.Sprintf("%s %s is public address space: agents that did not join with --allow public-routes (or full-tunnel) do not route it", what, p)})
		}
	}
	for _, p := range n.Subnets {
		public("subnet", p)
	}
	for _, h := range hs {
		for _, p := range h.Routes {
			public("host "+h.Name+": route", p)
		}
	}
	return out
}

func toAPIFinding(network string, f diag.Diagnostic) api.Finding {
	file := f.File
	if file == "" {
		file = network
	}
	return api.Finding{File: file, Line: f.Line, Severity: string(f.Severity), Code: f.Code, Message: f.Message}
}

func parsePrefixes(field string, in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, badRequest{fmt.Errorf("%s: %w", field, err)}
		}
		out = append(out, p)
	}
	return out, nil
}

// parseRoutes reads a host's routed subnets: none that no agent would take
// (agent.CheckOwnRoutes): wider than a /8 (a default route in parts), over
// ranges no tunnel routes (api.NeverRouted: link-local, where clouds serve
// their metadata, multicast), or IPv4-mapped IPv6.
func parseRoutes(field string, in []string) ([]netip.Prefix, error) {
	ps, err := parsePrefixes(field, in)
	for _, p := range ps {
		var why string
		if n, ok := api.Unroutable(p); ok {
			why = fmt.Sprintf("it overlaps %s, which no tunnel routes", n)
		}
		switch {
		case p.Addr().Is4In6():
			why = "an IPv4-mapped IPv6 prefix (write the IPv4 one)"
		case p.Bits() < 8:
			why = "wider than /8: agents take no default route, whole or in parts (a spoke's full tunnel is its full_tunnel setting, which an agent takes only with --allow full-tunnel)"
		}
		if why != "" {
			return nil, badRequest{fmt.Errorf("%s: %s: %s", field, p, why)}
		}
	}
	return ps, err
}

func parseAddrs(field string, in []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range in {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, badRequest{fmt.Errorf("%s: %w", field, err)}
		}
		out = append(out, a)
	}
	return out, nil
}

func parsePublicKey(s string) (wgkey.Key, error) {
	k, err := wgkey.ParseKey(s)
	if err == nil && k.IsZero() {
		err = wgkey.ErrZero
	}
	if err != nil {
		return k, badRequest{fmt.Errorf("public_key: %w (the host keeps its own private key; give its public key)", err)}
	}
	return k, nil
}
