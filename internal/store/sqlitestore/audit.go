package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// audit writes one audit entry in tx, the transaction of the change it records.
func audit(ctx context.Context, tx *sql.Tx, network string, rev uint64, action, subject string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (time, actor, network, revision, action, subject) VALUES (?, ?, ?, ?, ?, ?)`,
		time.Now().UnixNano(), store.ActorOf(ctx), network, rev, action, subject)
	return err
}

// Audit implements store.Store.
func (s *Store) Audit(ctx context.Context, since uint64, limit int) ([]store.AuditEntry, error) {
	if limit <= 0 {
		limit = -1
	}
	var out []store.AuditEntry
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, time, actor, network, revision, action, subject FROM audit
			WHERE seq > ? ORDER BY seq LIMIT ?`, since, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e store.AuditEntry
			var t int64
			if err := rows.Scan(&e.Seq, &t, &e.Actor, &e.Network, &e.Revision, &e.Action, &e.Subject); err != nil {
				return err
			}
			e.Time = time.Unix(0, t).UTC()
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// allowedRoutes checks that every route a joining host asks for lies inside
// one of its token's routes.
func allowedRoutes(t store.Token, routes []netip.Prefix) error {
	for _, r := range routes {
		if !slices.ContainsFunc(t.Routes, func(p netip.Prefix) bool { return p.Bits() <= r.Bits() && p.Contains(r.Addr()) }) {
			return fmt.Errorf("route %s: %w: the join token does not allow it (token create --route)", r, store.ErrInvalid)
		}
	}
	return nil
}

// peerJSON is how a peer's status is kept in host_status.peers.
type peerJSON struct {
	Key       string `json:"k"`
	Endpoint  string `json:"e,omitempty"`
	Handshake int64  `json:"h,omitempty"`
	Rx        uint64 `json:"rx,omitempty"`
	Tx        uint64 `json:"tx,omitempty"`
}

// ReportStatus implements store.Store: one transaction for the batch.
func (s *Store) ReportStatus(ctx context.Context, batch []store.StatusReport) (int, error) {
	stored := 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		stored = 0
		for _, r := range batch {
			peers := make([]peerJSON, len(r.Status.Peers))
			for i, p := range r.Status.Peers {
				peers[i] = peerJSON{Key: p.PublicKey.String(), Endpoint: p.Endpoint, Handshake: unixNano(p.LastHandshake), Rx: p.RxBytes, Tx: p.TxBytes}
			}
			b, err := json.Marshal(peers)
			if err != nil {
				return err
			}
			// Only a host that exists, and only a report not older than the one kept.
			res, err := tx.ExecContext(ctx, `INSERT INTO host_status (network, host, time, revision, peers)
				SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM hosts WHERE network = ? AND name = ?)
				ON CONFLICT (network, host) DO UPDATE SET time = excluded.time, revision = excluded.revision, peers = excluded.peers
				WHERE excluded.time >= host_status.time`,
				r.Network, r.Status.Host, r.Status.Time.UnixNano(), r.Status.Revision, string(b), r.Network, r.Status.Host)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k > 0 {
				stored++
			}
		}
		return nil
	})
	return stored, err
}

// Status implements store.Store.
func (s *Store) Status(ctx context.Context, network string) ([]store.HostStatus, error) {
	var out []store.HostStatus
	err := s.read(ctx, func(tx *sql.Tx) error {
		if _, err := networkTx(ctx, tx, network); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT host, time, revision, peers FROM host_status WHERE network = ? ORDER BY host`, network)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st store.HostStatus
			var t int64
			var b string
			if err := rows.Scan(&st.Host, &t, &st.Revision, &b); err != nil {
				return err
			}
			st.Time = time.Unix(0, t).UTC()
			var peers []peerJSON
			if err := json.Unmarshal([]byte(b), &peers); err != nil {
				return fmt.Errorf("host %s: stored status: %w", st.Host, err)
			}
			for _, p := range peers {
				k, err := wgkey.ParseKey(p.Key)
				if err != nil {
					return fmt.Errorf("host %s: stored status: %w", st.Host, err)
				}
				ps := store.PeerStatus{PublicKey: k, Endpoint: p.Endpoint, RxBytes: p.Rx, TxBytes: p.Tx}
				if p.Handshake != 0 {
					ps.LastHandshake = time.Unix(0, p.Handshake).UTC()
				}
				st.Peers = append(st.Peers, ps)
			}
			out = append(out, st)
		}
		return rows.Err()
	})
	return out, err
}
