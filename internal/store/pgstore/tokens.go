package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wgnet/wgnet/internal/store"
)

// CreateToken implements store.Store.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if t.Network != "" {
			if _, err := networkTx(ctx, tx, t.Network, false); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO tokens (hash, kind, network, host, uses, expires, routes) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (hash) DO NOTHING`,
			t.Hash[:], string(t.Kind), t.Network, t.Host, t.Uses, store.UnixNano(t.Expires), store.JoinPrefixes(t.Routes))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("token: %w", store.ErrExists)
		}
		return audit(ctx, tx, t.Network, 0, store.TokenCreated, string(t.Kind)+" "+t.Hash.ID())
	})
}

// RevokeToken implements store.Store. The admin tokens' rows are locked
// first, so that two revocations at once can't leave none.
func (s *Store) RevokeToken(ctx context.Context, h store.TokenHash) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var admins int
		rows, err := tx.Query(ctx, `SELECT hash FROM tokens WHERE kind = $1 FOR UPDATE`, string(store.AdminToken))
		if err != nil {
			return err
		}
		for rows.Next() {
			admins++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var kind, network string
		err = tx.QueryRow(ctx, `SELECT kind, network FROM tokens WHERE hash = $1 AND kind IN ($2, $3)`,
			h[:], string(store.AdminToken), string(store.EnrollToken)).Scan(&kind, &network)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("token %s: %w", h.ID(), store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if kind == string(store.AdminToken) && admins == 1 {
			return fmt.Errorf("token %s: %w: it is the last admin token; create another first", h.ID(), store.ErrInvalid)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE hash = $1`, h[:]); err != nil {
			return err
		}
		return audit(ctx, tx, network, 0, store.TokenRevoked, kind+" "+h.ID())
	})
}

// firstAdminLock is the transaction-scoped advisory lock FirstAdminToken
// takes, so that controllers starting at once check and insert one at a time.
const firstAdminLock = 0x77676e65_74000002

// FirstAdminToken implements store.Store.
func (s *Store) FirstAdminToken(ctx context.Context, h store.TokenHash) (bool, error) {
	created := false
	err := s.write(ctx, func(tx pgx.Tx) error {
		created = false
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(firstAdminLock)); err != nil {
			return err
		}
		var any bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tokens WHERE kind = $1)`, string(store.AdminToken)).Scan(&any); err != nil || any {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tokens (hash, kind, network, host, uses, expires, routes) VALUES ($1, $2, '', '', 0, 0, '')`, h[:], string(store.AdminToken)); err != nil {
			return err
		}
		created = true
		return audit(ctx, tx, "", 0, store.TokenCreated, string(store.AdminToken)+" "+h.ID())
	})
	return created && err == nil, err
}

// AdminTokens implements store.Store.
func (s *Store) AdminTokens(ctx context.Context) ([]store.TokenHash, error) {
	ts, err := s.tokens(ctx, `WHERE kind = $1`, string(store.AdminToken))
	out := make([]store.TokenHash, len(ts))
	for i, t := range ts {
		out[i] = t.Hash
	}
	return out, err
}

// Tokens implements store.Store.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) { return s.tokens(ctx, "") }

// LookupToken implements store.Store.
func (s *Store) LookupToken(ctx context.Context, h store.TokenHash) (store.Token, error) {
	ts, err := s.tokens(ctx, `WHERE hash = $1`, h[:])
	if err == nil && len(ts) == 0 {
		err = fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Token{Hash: h}, err
	}
	return ts[0], nil
}

const tokenColumns = `hash, kind, network, host, uses, expires, routes`

func (s *Store) tokens(ctx context.Context, where string, args ...any) ([]store.Token, error) {
	var out []store.Token
	err := s.read(ctx, func(tx pgx.Tx) (err error) {
		out, err = collect(ctx, tx, scanToken, `SELECT `+tokenColumns+` FROM tokens `+where+` ORDER BY hash`, args...)
		return err
	})
	return out, err
}

func scanToken(r pgx.Row) (store.Token, error) {
	var t store.Token
	var hash []byte
	var kind, routes string
	var exp int64
	if err := r.Scan(&hash, &kind, &t.Network, &t.Host, &t.Uses, &exp, &routes); err != nil {
		return t, err
	}
	copy(t.Hash[:], hash)
	t.Kind, t.Expires = store.TokenKind(kind), store.FromUnixNano(exp)
	var err error
	t.Routes, err = store.SplitPrefixes(routes)
	return t, err
}

// UseToken implements store.Store.
func (s *Store) UseToken(ctx context.Context, h store.TokenHash, now time.Time) (store.Token, error) {
	var t store.Token
	err := s.write(ctx, func(tx pgx.Tx) (err error) {
		t, err = useTokenTx(ctx, tx, h, now)
		return err
	})
	return t, err
}

// useTokenTx checks and consumes one use of an enrollment token in tx, its
// row locked: concurrent uses wait and then see what the first left.
func useTokenTx(ctx context.Context, tx pgx.Tx, h store.TokenHash, now time.Time) (store.Token, error) {
	t, err := scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1 FOR UPDATE`, h[:]))
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && t.Kind != store.EnrollToken) {
		return store.Token{Hash: h}, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return t, err
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return t, fmt.Errorf("token: %w", store.ErrTokenExpired)
	}
	if t.Uses <= 0 {
		return t, fmt.Errorf("token: %w", store.ErrTokenUsed)
	}
	t.Uses--
	_, err = tx.Exec(ctx, `UPDATE tokens SET uses = $1 WHERE hash = $2`, t.Uses, h[:])
	return t, err
}

// floors is the store.Floors of network n in tx; except is the host whose
// own addresses don't count as taken.
func floors(ctx context.Context, tx pgx.Tx, n store.Network, except string) store.Floors {
	return store.Floors{
		Read: func() (map[string]string, error) {
			m := map[string]string{}
			err := tx.QueryRow(ctx, `SELECT coalesce(jsonb_object_agg(subnet, addr), '{}') FROM alloc_floor WHERE network = $1`, n.Name).Scan(&m)
			return m, err
		},
		Set: func(sub, addr string) error {
			_, err := tx.Exec(ctx, `INSERT INTO alloc_floor (network, subnet, addr) VALUES ($1, $2, $3)
				ON CONFLICT (network, subnet) DO UPDATE SET addr = excluded.addr`, n.Name, sub, addr)
			return err
		},
		Taken: func(a netip.Addr) (bool, error) {
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM addresses WHERE network = $1 AND addr = $2 AND host <> $3`, n.Name, a.String(), except).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return false, nil
			}
			return err == nil, err
		},
	}
}

// Audit implements store.Store.
func (s *Store) Audit(ctx context.Context, since uint64, limit int) ([]store.AuditEntry, error) {
	var out []store.AuditEntry
	err := s.read(ctx, func(tx pgx.Tx) (err error) {
		q, args := limited(`SELECT seq, time, actor, network, revision, action, subject FROM audit WHERE seq > $1 ORDER BY seq`, limit, int64(since))
		out, err = collect(ctx, tx, func(r pgx.Row) (store.AuditEntry, error) {
			var e store.AuditEntry
			var seq, t, rev int64
			err := r.Scan(&seq, &t, &e.Actor, &e.Network, &rev, &e.Action, &e.Subject)
			e.Seq, e.Time, e.Revision = uint64(seq), time.Unix(0, t).UTC(), uint64(rev)
			return e, err
		}, q, args...)
		return err
	})
	return out, err
}

// ReportStatus implements store.Store: one transaction for the batch, its
// rows written in (network, host) order so that two batches never deadlock.
func (s *Store) ReportStatus(ctx context.Context, batch []store.StatusReport) (int, error) {
	batch = slices.Clone(batch)
	slices.SortStableFunc(batch, func(a, b store.StatusReport) int {
		if c := strings.Compare(a.Network, b.Network); c != 0 {
			return c
		}
		return strings.Compare(a.Status.Host, b.Status.Host)
	})
	stored := 0
	err := s.write(ctx, func(tx pgx.Tx) error {
		stored = 0
		for _, r := range batch {
			peers, err := store.EncodePeers(r.Status.Peers)
			if err != nil {
				return err
			}
			// Only a host that exists, and only a report not older than the one kept.
			tag, err := tx.Exec(ctx, `INSERT INTO host_status (network, host, time, revision, peers)
				SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM hosts WHERE network = $1 AND name = $2)
				ON CONFLICT (network, host) DO UPDATE SET time = excluded.time, revision = excluded.revision, peers = excluded.peers
				WHERE excluded.time >= host_status.time`,
				r.Network, r.Status.Host, r.Status.Time.UnixNano(), int64(r.Status.Revision), peers)
			if err != nil {
				return err
			}
			if tag.RowsAffected() > 0 {
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
	err := s.read(ctx, func(tx pgx.Tx) (err error) {
		if _, err := networkTx(ctx, tx, network, false); err != nil {
			return err
		}
		out, err = collect(ctx, tx, func(r pgx.Row) (store.HostStatus, error) {
			var st store.HostStatus
			var t, rev int64
			var peers string
			if err := r.Scan(&st.Host, &t, &rev, &peers); err != nil {
				return st, err
			}
			st.Time, st.Revision = time.Unix(0, t).UTC(), uint64(rev)
			st.Peers, err = store.DecodePeers(peers)
			if err != nil {
				err = fmt.Errorf("host %s: stored status: %w", st.Host, err)
			}
			return st, err
		}, `SELECT host, time, revision, peers FROM host_status WHERE network = $1 ORDER BY host COLLATE "C"`, network)
		return err
	})
	return out, err
}

// CA implements store.Store.
func (s *Store) CA(ctx context.Context) (store.StoredCA, error) {
	var ca store.StoredCA
	err := s.read(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT cert, sealed_key FROM ca WHERE id = 1`).Scan(&ca.CertPEM, &ca.SealedKey)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("CA: %w", store.ErrNotFound)
		}
		return err
	})
	return ca, err
}

// PutCA implements store.Store: the first controller's CA stays.
func (s *Store) PutCA(ctx context.Context, ca store.StoredCA) (store.StoredCA, error) {
	var out store.StoredCA
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO ca (id, cert, sealed_key) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`, ca.CertPEM, ca.SealedKey); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT cert, sealed_key FROM ca WHERE id = 1`).Scan(&out.CertPEM, &out.SealedKey)
	})
	return out, err
}

// Health implements store.Store: a round trip to the database and its schema version.
func (s *Store) Health(ctx context.Context) (store.Health, error) {
	h, err := health(ctx, s.pool)
	return store.Health{Backend: "postgres", Schema: h.Schema, Code: SchemaVersion, Current: err == nil && h.Current}, err
}
