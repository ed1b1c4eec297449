package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// A migration brings the schema from version Version-1 to Version. Migrations
// are expand-then-contract: one that only adds (tables, columns with
// defaults, indexes) keeps CompatibleFrom, so a controller of the previous
// release keeps running against the new schema during a rolling upgrade; one
// that removes or changes what older code reads (a contract step, shipped a
// release after the code stopped reading it) raises CompatibleFrom to the
// oldest schema version whose code still works.
type migration struct {
	Version        int
	CompatibleFrom int
	SQL            string
}

var migrations = []migration{
	{Version: 1, CompatibleFrom: 1, SQL: `
CREATE TABLE networks (
	name     TEXT PRIMARY KEY,
	subnets  TEXT NOT NULL,
	topology TEXT NOT NULL,
	hub      TEXT NOT NULL DEFAULT '',
	revision BIGINT NOT NULL,
	hosts    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE hosts (
	network    TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	public_key TEXT NOT NULL,
	endpoint   TEXT NOT NULL,
	routes     TEXT NOT NULL,
	keepalive  INTEGER NOT NULL,
	PRIMARY KEY (network, name),
	UNIQUE (network, public_key)
);
CREATE UNIQUE INDEX hosts_name_nocase ON hosts (network, lower(name));
CREATE INDEX hosts_routed ON hosts (network) WHERE routes <> '';
CREATE TABLE addresses (
	network TEXT NOT NULL,
	addr    TEXT NOT NULL,
	host    TEXT NOT NULL,
	PRIMARY KEY (network, addr),
	FOREIGN KEY (network, host) REFERENCES hosts(network, name) ON DELETE CASCADE
);
CREATE INDEX addresses_host ON addresses (network, host);
CREATE TABLE changes (
	network  TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
	revision BIGINT NOT NULL,
	kind     TEXT NOT NULL,
	host     TEXT NOT NULL,
	time     BIGINT NOT NULL,
	PRIMARY KEY (network, revision)
);
CREATE TABLE tokens (
	hash    BYTEA PRIMARY KEY,
	kind    TEXT NOT NULL,
	network TEXT NOT NULL,
	host    TEXT NOT NULL,
	uses    INTEGER NOT NULL,
	expires BIGINT NOT NULL,
	routes  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tokens_kind ON tokens (kind);
-- The audit log's sequence is a counter row, like the revisions: a sequence
-- would hand out numbers in a different order than transactions commit, and a
-- reader following "after seq" would skip an entry committed late.
CREATE TABLE audit_seq (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq BIGINT NOT NULL
);
INSERT INTO audit_seq VALUES (1, 0);
CREATE TABLE audit (
	seq      BIGINT PRIMARY KEY,
	time     BIGINT NOT NULL,
	actor    TEXT NOT NULL,
	network  TEXT NOT NULL,
	revision BIGINT NOT NULL,
	action   TEXT NOT NULL,
	subject  TEXT NOT NULL
);
CREATE TABLE alloc_floor (
	network TEXT NOT NULL,
	subnet  TEXT NOT NULL,
	addr    TEXT NOT NULL,
	PRIMARY KEY (network, subnet)
);
CREATE TABLE host_status (
	network  TEXT NOT NULL,
	host     TEXT NOT NULL,
	time     BIGINT NOT NULL,
	revision BIGINT NOT NULL,
	peers    TEXT NOT NULL,
	PRIMARY KEY (network, host)
);
CREATE TABLE ca (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	cert       BYTEA NOT NULL,
	sealed_key BYTEA NOT NULL
);
`},
	// 2: the segmentation policy and hosts' tags (issue 13). Expand only: a
	// controller of schema 1 ignores both columns.
	{Version: 2, CompatibleFrom: 1, SQL: `
ALTER TABLE networks ADD COLUMN policy BYTEA NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN tags TEXT NOT NULL DEFAULT '';
`},
	// 3: routes a joining host asked for beyond its token's, for an admin to
	// approve. Expand only.
	{Version: 3, CompatibleFrom: 1, SQL: `
ALTER TABLE hosts ADD COLUMN pending_routes TEXT NOT NULL DEFAULT '';
`},
	// 4: a host's own settings (store.Settings, issue 10; SQLite's schema
	// 6): the defaults are what every host had before, and compile as they
	// did. Expand only.
	{Version: 4, CompatibleFrom: 1, SQL: `
ALTER TABLE hosts ADD COLUMN address_bits TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN address_elsewhere BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE hosts ADD COLUMN random_port BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE hosts ADD COLUMN mtu INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN dns TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN table_name TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN fwmark BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN external BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE hosts ADD COLUMN full_tunnel TEXT NOT NULL DEFAULT '';
`},
}

// SchemaVersion is the newest schema version this build knows.
var SchemaVersion = migrations[len(migrations)-1].Version

// migrationLock is the pg_advisory_lock key under which migrations run: one
// controller migrates, the others wait and then find nothing left to do.
const migrationLock = 0x77676e65_74000001 // "wgnet" + 1

// migrate applies the migrations the database lacks, each in its own
// transaction together with its schema_version row, under the advisory lock,
// on one connection. It returns how many it applied.
func (s *Store) migrate(ctx context.Context) (int, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return 0, fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version         INTEGER PRIMARY KEY,
		compatible_from INTEGER NOT NULL,
		applied         TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return 0, fmt.Errorf("schema_version: %w", err)
	}
	h, err := health(ctx, conn.Conn())
	if err != nil {
		return 0, err
	}
	if h.compatibleFrom > SchemaVersion {
		return 0, fmt.Errorf("the database's schema is version %d, which needs a wgnet that knows at least version %d; this one knows %d: upgrade wgnet",
			h.Schema, h.compatibleFrom, SchemaVersion)
	}
	applied := 0
	for _, m := range migrations {
		if m.Version <= h.Schema {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (version, compatible_from) VALUES ($1, $2)`, m.Version, m.CompatibleFrom)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate schema to version %d: %w", m.Version, err)
		}
		applied++
	}
	return applied, nil
}

type healthInfo struct {
	Schema, compatibleFrom int
	Current                bool
}

// health reads the schema's version: the newest applied migration, and the
// oldest code version it still works with. Current: every migration this
// build knows is applied and the schema still works with this build.
func health(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (healthInfo, error) {
	var h healthInfo
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0), coalesce(max(compatible_from), 0) FROM schema_version`).Scan(&h.Schema, &h.compatibleFrom)
	if err != nil {
		return h, fmt.Errorf("schema_version: %w", err)
	}
	h.Current = h.Schema >= SchemaVersion && h.compatibleFrom <= SchemaVersion
	return h, nil
}
