package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Write is write, for the retry test.
func (s *Store) Write(ctx context.Context, fn func(tx pgx.Tx) error) error { return s.write(ctx, fn) }
