package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/wgnet/wgnet/internal/store"
)

var _ store.Importer = (*Store)(nil)

// Import implements store.Importer: into an empty database (no network, no
// token), in one transaction, revisions, change logs and audit numbers kept.
func (s *Store) Import(ctx context.Context, d store.Dump) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var used bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM networks) OR EXISTS (SELECT 1 FROM tokens) OR EXISTS (SELECT 1 FROM audit)`).Scan(&used); err != nil {
			return err
		}
		if used {
			return fmt.Errorf("import: %w: the target database holds networks, tokens or an audit log already; import into an empty one", store.ErrExists)
		}
		for _, nd := range d.Networks {
			if err := importNetwork(ctx, tx, nd); err != nil {
				return fmt.Errorf("import network %s: %w", nd.Network.Name, err)
			}
		}
		for _, t := range d.Tokens {
			if _, err := tx.Exec(ctx, `INSERT INTO tokens (hash, kind, network, host, uses, expires, routes) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				t.Hash[:], string(t.Kind), t.Network, t.Host, t.Uses, store.UnixNano(t.Expires), store.JoinPrefixes(t.Routes)); err != nil {
				return fmt.Errorf("import token %s: %w", t.Hash.ID(), err)
			}
		}
		var last uint64
		for _, e := range d.Audit {
			if _, err := tx.Exec(ctx, `INSERT INTO audit (seq, time, actor, network, revision, action, subject) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				int64(e.Seq), e.Time.UnixNano(), e.Actor, e.Network, int64(e.Revision), e.Action, e.Subject); err != nil {
				return fmt.Errorf("import audit entry %d: %w", e.Seq, err)
			}
			last = max(last, e.Seq)
		}
		_, err := tx.Exec(ctx, `UPDATE audit_seq SET seq = $1 WHERE id = 1`, int64(last))
		return err
	})
}

func importNetwork(ctx context.Context, tx pgx.Tx, nd store.NetworkDump) error {
	n := nd.Network
	policy := n.Policy
	if policy == nil {
		policy = []byte{}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO networks (name, subnets, topology, hub, revision, hosts, policy) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		n.Name, store.JoinPrefixes(n.Subnets), n.Topology, n.Hub, int64(n.Revision), len(nd.Hosts), policy); err != nil {
		return err
	}
	for _, h := range nd.Hosts {
		if err := insertHost(ctx, tx, n.Name, h); err != nil {
			return err
		}
	}
	// insertHost counted the hosts once more.
	if _, err := tx.Exec(ctx, `UPDATE networks SET hosts = $1 WHERE name = $2`, len(nd.Hosts), n.Name); err != nil {
		return err
	}
	for _, c := range nd.Changes {
		if _, err := tx.Exec(ctx, `INSERT INTO changes (network, revision, kind, host, time) VALUES ($1, $2, $3, $4, $5)`,
			n.Name, int64(c.Revision), string(c.Kind), c.Host, c.Time.UnixNano()); err != nil {
			return err
		}
	}
	for _, st := range nd.Status {
		peers, err := store.EncodePeers(st.Peers)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO host_status (network, host, time, revision, peers) VALUES ($1, $2, $3, $4, $5)`,
			n.Name, st.Host, st.Time.UnixNano(), int64(st.Revision), peers); err != nil {
			return err
		}
	}
	return nil
}
