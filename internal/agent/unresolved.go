package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/wgnet/wgnet/internal/api"
)

// UnresolvedFile, in the agent's directory, names the peers the running
// agent configured without an endpoint (their host name never resolved) and
// since when, for `wgnet agent show`; absent when there are none.
const UnresolvedFile = "unresolved.json"

// UnresolvedPeer is a peer configured without its endpoint because the
// endpoint's host name has never resolved (in the agent's process; it can
// still dial in: WireGuard learns a peer's address from its packets).
type UnresolvedPeer struct {
	Peer  string `json:"peer"`
	Host  string `json:"host"`  // the endpoint's host name
	Error string `json:"error"` // the resolver's last error
	// Since is the first failed attempt the agent knows of (kept across
	// restarts while the peer stays unresolved); zero from a data plane.
	Since time.Time `json:"since"`
}

func (u UnresolvedPeer) String() string { return fmt.Sprintf("%s (%s: %s)", u.Peer, u.Host, u.Error) }

// unresolvedFile is UnresolvedFile's content.
type unresolvedFile struct {
	Peers []UnresolvedPeer `json:"peers"`
}

// LoadUnresolved reads UnresolvedFile from dir (nil: none).
func LoadUnresolved(dir string) ([]UnresolvedPeer, error) {
	var f unresolvedFile
	err := readJSON(filepath.Join(dir, UnresolvedFile), &f)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return f.Peers, err
}

// loadUnresolved, at start, takes the peers that were unresolved when the
// agent stopped: still so since then, unless the first apply finds their
// names resolving.
func (a *Agent) loadUnresolved() {
	u, err := LoadUnresolved(a.opts.Dir)
	if err != nil {
		a.opts.Log.Warn("unresolved endpoints of the last run not read", "err", err)
	}
	a.mu.Lock()
	a.unresolved = u
	a.mu.Unlock()
	a.m.unresolved.Set(float64(len(u)))
}

// saveUnresolved writes peers to UnresolvedFile, or removes it when there
// are none.
func saveUnresolved(dir string, peers []UnresolvedPeer) error {
	path := filepath.Join(dir, UnresolvedFile)
	if len(peers) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return writeJSON(path, unresolvedFile{Peers: peers}, true)
}

// since gives each of peers the time it was first found unresolved: from
// prev when it was there already (same peer, same host name), else now.
func since(peers, prev []UnresolvedPeer, now time.Time) {
	for i := range peers {
		peers[i].Since = now
		for _, p := range prev {
			if p.Peer == peers[i].Peer && p.Host == peers[i].Host && !p.Since.IsZero() {
				peers[i].Since = p.Since
			}
		}
	}
}

// sameUnresolved reports whether two lists name the same peers, names,
// errors and times.
func sameUnresolved(a, b []UnresolvedPeer) bool {
	return slices.EqualFunc(a, b, func(x, y UnresolvedPeer) bool { return x == y })
}

// markUnresolved sets Unresolved on the report's peers that unresolved
// names, by their public key in st; one the device did not list is added.
func markUnresolved(r *api.AgentReport, st *api.AgentState, unresolved []UnresolvedPeer) {
	for _, u := range unresolved {
		i := slices.IndexFunc(st.Peers, func(p api.Peer) bool { return p.Name == u.Peer })
		if i < 0 {
			continue // not a peer of the state reported on
		}
		ue := &api.UnresolvedEndpoint{Host: u.Host, Error: u.Error, Since: u.Since.UTC().Format(time.RFC3339Nano)}
		k := st.Peers[i].PublicKey
		if j := slices.IndexFunc(r.Peers, func(p api.PeerStatus) bool { return p.PublicKey == k }); j >= 0 {
			r.Peers[j].Unresolved = ue
		} else {
			r.Peers = append(r.Peers, api.PeerStatus{PublicKey: k, Unresolved: ue})
		}
	}
}
