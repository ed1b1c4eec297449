package controller

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// status answers `wgnet status`: each host's address and endpoint from the
// store, and what its agent last reported (last seen, revision applied, each
// peer) from the store's status reports, so any controller can answer.
func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	n, hs, err := s.store.Hosts(r.Context(), r.PathValue("network"))
	if err != nil {
		return err
	}
	reports, err := s.store.Status(r.Context(), n.Name)
	if err != nil {
		return err
	}
	byHost := map[string]store.HostStatus{}
	for _, st := range reports {
		byHost[st.Host] = st
	}
	names := map[wgkey.Key]string{}
	withEndpoint := 0
	for _, h := range hs {
		names[h.PublicKey] = h.Name
		if h.Endpoint != "" {
			withEndpoint++
		}
	}
	out := api.Status{Network: n.Name, Revision: n.Revision, Hosts: []api.HostStatus{}}
	for _, h := range hs {
		a := toAPIHost(h)
		hst := api.HostStatus{Name: h.Name, Addresses: a.Addresses, Endpoint: h.Endpoint, Hub: h.Hub}
		if st, ok := byHost[h.Name]; ok {
			hst.LastSeen = st.Time.Format(time.RFC3339)
			hst.Revision = st.Revision
			for _, p := range st.Peers {
				hst.Peers = append(hst.Peers, toAPIPeerStatus(p, names[p.PublicKey]))
			}
		}
		if n.Topology == "mesh" && h.Endpoint == "" {
			hst.Notes = append(hst.Notes, fmt.Sprintf("no endpoint: in a mesh it peers only with the %d hosts that have one", withEndpoint))
		}
		if n.Topology == "hub" && h.Endpoint == "" && h.Hub {
			hst.Notes = append(hst.Notes, "the hub has no endpoint: spokes without one can't reach it")
		}
		out.Hosts = append(out.Hosts, hst)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// toAPIPeerStatus is a reported peer as `wgnet status` shows it; host is
// the peer's name in the network ("": a key the network does not have).
func toAPIPeerStatus(p store.PeerStatus, host string) api.PeerStatus {
	ps := api.PeerStatus{Host: host, PublicKey: p.PublicKey.String(), Endpoint: p.Endpoint, RxBytes: p.RxBytes, TxBytes: p.TxBytes}
	if !p.LastHandshake.IsZero() {
		ps.LastHandshake = p.LastHandshake.Format(time.RFC3339)
	}
	if p.Unresolved != "" {
		ps.Unresolved = &api.UnresolvedEndpoint{Host: p.Unresolved, Error: p.ResolveError, Since: p.UnresolvedSince.Format(time.RFC3339)}
	}
	return ps
}

// peerStatus is a peer of an agent's report (API v3 adds Unresolved) as the
// store keeps it.
func peerStatus(k wgkey.Key, p api.PeerStatus) (store.PeerStatus, error) {
	ps := store.PeerStatus{PublicKey: k, Endpoint: p.Endpoint, RxBytes: p.RxBytes, TxBytes: p.TxBytes}
	var err error
	// What an agent reports is shown to admins by wgnet status: an
	// endpoint is an address and port, a host name a name, an error one
	// bounded line.
	if p.Endpoint != "" {
		if ap, err := netip.ParseAddrPort(p.Endpoint); err != nil || !zoneRE.MatchString(ap.Addr().Zone()) {
			return ps, fmt.Errorf("endpoint %.80q: not an address and port (a zone, if any, an interface's name or index)", p.Endpoint)
		}
	}
	if p.LastHandshake != "" {
		if ps.LastHandshake, err = time.Parse(time.RFC3339Nano, p.LastHandshake); err != nil {
			return ps, fmt.Errorf("last_handshake: %w", err)
		}
	}
	if u := p.Unresolved; u != nil {
		if u.Host == "" || len(u.Host) > 253 || strings.IndexFunc(u.Host, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
			return ps, fmt.Errorf("unresolved: host name %q: empty, over 253 bytes, or not printable", u.Host)
		}
		if ps.UnresolvedSince, err = time.Parse(time.RFC3339Nano, u.Since); err != nil {
			return ps, fmt.Errorf("unresolved: since: %w", err)
		}
		ps.Unresolved, ps.ResolveError = u.Host, oneLine(u.Error, 300)
	}
	return ps, nil
}

// audit answers the audit log after ?since=SEQ, at most 1,000 entries.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) error {
	since, err := sinceParam(r)
	if err != nil {
		return err
	}
	es, err := s.store.Audit(r.Context(), since, 1000)
	if err != nil {
		return err
	}
	out := api.Audit{Entries: []api.AuditEntry{}}
	for _, e := range es {
		out.Entries = append(out.Entries, api.AuditEntry{Seq: e.Seq, Time: e.Time.Format(time.RFC3339Nano), Actor: e.Actor,
			Network: e.Network, Revision: e.Revision, Action: e.Action, Subject: e.Subject})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// oneLine is s with every character that is not printable (a newline, an
// escape) as '?', cut to at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "..."
	}
	return s
}

// zoneRE is an IPv6 zone as an endpoint reported may have one (fe80::1%eth0):
// none, or an interface's name (at most 15 bytes) or index.
var zoneRE = regexp.MustCompile(`^[A-Za-z0-9_.@-]{0,15}$`)
