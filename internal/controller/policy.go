package controller

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/store"
)

// storedPolicy is how the controller keeps a network's policy in the store
// (store.Network.Policy, opaque there): the spec's own text of each rule and
// group member, so that what is stored reads back through the spec's parser.
type storedPolicy struct {
	Default string        `json:"default,omitempty"`
	Groups  []storedGroup `json:"groups,omitempty"`
	Rules   []string      `json:"rules,omitempty"`
}

type storedGroup struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// parsePolicy reads a policy from the wire into the spec's form, each rule
// and member through the spec's parser; errors name the rule or group.
func parsePolicy(in api.Policy) (spec.Policy, error) {
	groups := make([]spec.GroupText, len(in.Groups))
	for i, g := range in.Groups {
		groups[i] = spec.GroupText(g)
	}
	p, err := spec.ParsePolicy(in.Default, groups, in.Rules)
	if err != nil {
		return p, badRequest{err}
	}
	return p, nil
}

// encodePolicy is what the store keeps of p: nil for no policy.
func encodePolicy(p spec.Policy) ([]byte, error) {
	if !p.Present {
		return nil, nil
	}
	sp := storedPolicy{Default: p.Default}
	for _, g := range p.Groups {
		sg := storedGroup{Name: g.Name, Members: []string{}}
		for _, m := range g.Members {
			sg.Members = append(sg.Members, m.String())
		}
		sp.Groups = append(sp.Groups, sg)
	}
	for _, r := range p.Rules {
		sp.Rules = append(sp.Rules, r.String())
	}
	return json.Marshal(sp)
}

// decodePolicy reads what encodePolicy stored.
func decodePolicy(b []byte) (spec.Policy, error) {
	if len(b) == 0 {
		return spec.Policy{}, nil
	}
	var sp storedPolicy
	if err := json.Unmarshal(b, &sp); err != nil {
		return spec.Policy{}, fmt.Errorf("stored policy: %w", err)
	}
	groups := make([]spec.GroupText, len(sp.Groups))
	for i, g := range sp.Groups {
		groups[i] = spec.GroupText(g)
	}
	p, err := spec.ParsePolicy(sp.Default, groups, sp.Rules)
	if err != nil {
		return p, fmt.Errorf("stored policy: %w", err)
	}
	p.Present = true
	return p, nil
}

// toAPIPolicy is a network's policy on the wire.
func toAPIPolicy(n store.Network) (api.Policy, error) {
	p, err := decodePolicy(n.Policy)
	out := api.Policy{Revision: n.Revision, Default: p.Default}
	for _, g := range p.Groups {
		ag := api.PolicyGroup{Name: g.Name, Members: []string{}}
		for _, m := range g.Members {
			ag.Members = append(ag.Members, m.String())
		}
		out.Groups = append(out.Groups, ag)
	}
	for _, r := range p.Rules {
		out.Rules = append(out.Rules, r.String())
	}
	return out, err
}

// getPolicy answers GET /v1/networks/{network}/policy.
func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	n, err := s.store.Network(r.Context(), r.PathValue("network"))
	if err != nil {
		return err
	}
	out, err := toAPIPolicy(n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// putPolicy answers PUT /v1/networks/{network}/policy: the whole policy,
// checked against every host as the offline check would (a rule naming
// nothing, a bad group), stored as one change; with a revision, only if the
// network is still there (409 otherwise, so concurrent editors lose nothing).
// An empty policy removes it.
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) error {
	var req api.Policy
	if err := readJSON(r, &req); err != nil {
		return err
	}
	p, err := parsePolicy(req)
	if err != nil {
		return err
	}
	n, hs, err := s.store.Hosts(r.Context(), r.PathValue("network"))
	if err != nil {
		return err
	}
	sp, err := toSpec(n, hs)
	if err != nil {
		return err
	}
	sp.Policy = p
	if errs, _ := sp.Lint(); len(errs) > 0 {
		return badRequest{fmt.Errorf("network %s: %w", n.Name, errs.Err())}
	}
	b, err := encodePolicy(p)
	if err != nil {
		return err
	}
	rev, err := s.store.SetPolicy(r.Context(), n.Name, b, req.Revision)
	if err != nil {
		return err
	}
	s.log.Info("policy changed", "network", n.Name, "revision", rev, "rules", len(p.Rules))
	n.Policy, n.Revision = b, rev
	out, err := toAPIPolicy(n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// toAPIFilter is a host's compiled filter on the wire; nil without a policy.
func toAPIFilter(f intent.Filter) *api.Filter {
	if !f.Enabled {
		return nil
	}
	out := &api.Filter{DefaultAccept: f.DefaultAccept, Rules: []api.FilterRule{}}
	for _, r := range f.Rules {
		ar := api.FilterRule{Accept: r.Accept, Proto: r.Proto, Origin: r.Origin}
		for _, p := range r.Src {
			ar.Src = append(ar.Src, p.String())
		}
		for _, p := range r.Dst {
			ar.Dst = append(ar.Dst, p.String())
		}
		for _, pr := range r.Ports {
			ar.Ports = append(ar.Ports, spec.PortRange(pr).String())
		}
		out.Rules = append(out.Rules, ar)
	}
	return out
}
