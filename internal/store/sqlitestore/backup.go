package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wgnet/wgnet/internal/store"
)

// Backup writes a consistent copy of the database to a new file at path
// (VACUUM INTO: one read snapshot, while writers go on).
func (s *Store) Backup(ctx context.Context, path string) error {
	_, err := s.r.ExecContext(ctx, `VACUUM INTO ?`, path)
	return err
}

// Tokens implements store.Store.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	var out []store.Token
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT hash, kind, network, host, uses, expires, routes FROM tokens ORDER BY hash`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t store.Token
			var hash []byte
			var kind, routes string
			var exp int64
			if err := rows.Scan(&hash, &kind, &t.Network, &t.Host, &t.Uses, &exp, &routes); err != nil {
				return err
			}
			copy(t.Hash[:], hash)
			t.Kind, t.Expires = store.TokenKind(kind), store.FromUnixNano(exp)
			if t.Routes, err = store.SplitPrefixes(routes); err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	return out, err
}

// CA implements store.Store.
func (s *Store) CA(ctx context.Context) (store.StoredCA, error) {
	var ca store.StoredCA
	err := s.read(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT cert, sealed_key FROM ca WHERE id = 1`).Scan(&ca.CertPEM, &ca.SealedKey)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("CA: %w", store.ErrNotFound)
		}
		return err
	})
	return ca, err
}

// PutCA implements store.Store.
func (s *Store) PutCA(ctx context.Context, ca store.StoredCA) (store.StoredCA, error) {
	var out store.StoredCA
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ca (id, cert, sealed_key) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`, ca.CertPEM, ca.SealedKey); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT cert, sealed_key FROM ca WHERE id = 1`).Scan(&out.CertPEM, &out.SealedKey)
	})
	return out, err
}

// Health implements store.Store.
func (s *Store) Health(ctx context.Context) (store.Health, error) {
	h := store.Health{Backend: "sqlite", Code: schemaVersion}
	err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&h.Schema)
	})
	h.Current = err == nil && h.Schema == h.Code
	return h, err
}
