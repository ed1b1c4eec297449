package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/wgnet/wgnet/internal/store"
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

// ReportStatus implements store.Store: one transaction for the batch.
func (s *Store) ReportStatus(ctx context.Context, batch []store.StatusReport) (int, error) {
	stored := 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		stored = 0
		// Only a host that exists, and only a report not older than the one
		// kept; prepared once for the batch.
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO host_status (network, host, time, revision, peers)
			SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM hosts WHERE network = ? AND name = ?)
			ON CONFLICT (network, host) DO UPDATE SET time = excluded.time, revision = excluded.revision, peers = excluded.peers
			WHERE excluded.time >= host_status.time`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range batch {
			b, err := store.EncodePeers(r.Status.Peers)
			if err != nil {
				return err
			}
			res, err := stmt.ExecContext(ctx, r.Network, r.Status.Host, r.Status.Time.UnixNano(), r.Status.Revision, b, r.Network, r.Status.Host)
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
			if st.Peers, err = store.DecodePeers(b); err != nil {
				return fmt.Errorf("host %s: stored status: %w", st.Host, err)
			}
			out = append(out, st)
		}
		return rows.Err()
	})
	return out, err
}
