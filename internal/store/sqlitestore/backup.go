package sqlitestore

import "context"

// Backup writes a consistent copy of the database to a new file at path
// (VACUUM INTO: one read snapshot, while writers go on).
func (s *Store) Backup(ctx context.Context, path string) error {
	_, err := s.r.ExecContext(ctx, `VACUUM INTO ?`, path)
	return err
}
