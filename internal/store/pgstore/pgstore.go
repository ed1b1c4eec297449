// Package pgstore is the PostgreSQL implementation of store.Store (jackc/pgx),
// for any number of controllers on one database.
//
// Every writing transaction runs at READ COMMITTED and starts by locking the
// row it changes first: the network's row (whose revision counter it
// increments: revisions are dense and commit-ordered, since the next writer
// of the network waits for the row until this one commits) or, for a token's
// use, the token's row and then the network's. Statements after the lock see
// everything committed before it, so uniqueness checks and address allocation
// read the current state, and the unique indexes (names, keys, addresses)
// hold whatever happens. Serialization failures, deadlocks and unique
// violations that escape the explicit checks (40001, 40P01, 23505) roll the
// transaction back and run it again, a bounded number of times. A change's
// transaction also sends NOTIFY wgnet_changes 'NETWORK REVISION', delivered at
// commit, as a wake-up for the controllers that follow the change log.
//
// Schema migrations are versioned (schema_version) and applied under
// pg_advisory_lock, so several controllers starting at once apply each once.
// It imports store and wgkey only.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// Channel is the NOTIFY channel of changes; a payload is "NETWORK REVISION".
const Channel = "wgnet_changes"

// MaxAttempts bounds how often a transaction that lost a race (40001, 40P01,
// 23505) is run again before the caller gets store.ErrConflict.
const MaxAttempts = 12

// Options of Open.
type Options struct {
	// Password, when set, is used instead of one in the URL or the
	// environment's PGPASSWORD (the command reads it from a file or an
	// environment variable, never from its command line).
	Password string
	// MaxConns caps the pool (0: pgxpool's default).
	MaxConns int32
}

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	pool   *pgxpool.Pool
	follow *follower
	// Migrated is how many migrations Open applied (0 when another
	// controller had applied them).
	Migrated int
}

var _ store.Store = (*Store)(nil)

// Config parses a postgres:// URL (or key=value DSN) as Open does: TLS as its
// sslmode, sslrootcert, sslcert and sslkey parameters say.
func Config(url string, o Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store URL: %w", err)
	}
	if o.Password != "" {
		cfg.ConnConfig.Password = o.Password
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	return cfg, nil
}

// Open connects to the database at url and brings its schema up to date.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := Config(url, o)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{pool: pool}
	if s.Migrated, err = s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store %s: %w", redact(cfg), err)
	}
	s.follow = newFollower(cfg)
	return s, nil
}

// redact names the database without its password.
func redact(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("postgres database %s on %s as %s", c.Database, c.Host, c.User)
}

// Close closes the pool.
func (s *Store) Close() error {
	s.follow.close()
	s.pool.Close()
	return nil
}

// Pool is the store's connection pool (for tests and the change follower).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// retryable reports an error that a new attempt of the transaction can cure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01", "23505":
		return true
	}
	return false
}

// write runs fn in a READ COMMITTED transaction and commits it, running it
// again (after a short random pause) when it lost a race.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
		if err == nil || !retryable(err) {
			return err
		}
		if attempt == MaxAttempts {
			return fmt.Errorf("%w: the database reported a conflicting concurrent change %d times; try again (%v)", store.ErrConflict, attempt, err)
		}
		pause := time.Duration(rand.Int64N(int64(attempt)*int64(5*time.Millisecond))) + time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// read runs fn in one REPEATABLE READ, read-only transaction: one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// isUnique reports a unique violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// CreateNetwork implements store.Store.
func (s *Store) CreateNetwork(ctx context.Context, n store.Network) (store.Network, error) {
	if err := store.ValidNetwork(n); err != nil {
		return n, err
	}
	n.Revision, n.Hub, n.Hosts = 1, "", 0
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO networks (name, subnets, topology, hub, revision) VALUES ($1, $2, $3, '', 1) ON CONFLICT (name) DO NOTHING`,
			n.Name, store.JoinPrefixes(n.Subnets), n.Topology)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("network %s: %w", n.Name, store.ErrExists)
		}
		if err := logChange(ctx, tx, n.Name, 1, store.NetworkCreated, ""); err != nil {
			return err
		}
		return audit(ctx, tx, n.Name, 1, string(store.NetworkCreated), n.Name)
	})
	return n, err
}

// Network implements store.Store.
func (s *Store) Network(ctx context.Context, name string) (store.Network, error) {
	var n store.Network
	err := s.read(ctx, func(tx pgx.Tx) (err error) {
		n, err = networkTx(ctx, tx, name, false)
		return err
	})
	return n, err
}

// Networks implements store.Store.
func (s *Store) Networks(ctx context.Context) ([]store.Network, error) {
	var out []store.Network
	err := s.read(ctx, func(tx pgx.Tx) (err error) {
		out, err = collect(ctx, tx, scanNetwork, `SELECT name, subnets, topology, hub, revision, hosts, policy FROM networks ORDER BY name COLLATE "C"`)
		return err
	})
	return out, err
}

// collect runs q in tx and scans every row with scan.
func collect[T any](ctx context.Context, tx pgx.Tx, scan func(pgx.Row) (T, error), q string, args ...any) ([]T, error) {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
}

// DeleteNetwork implements store.Store.
func (s *Store) DeleteNetwork(ctx context.Context, name string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := networkTx(ctx, tx, name, true); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM tokens WHERE network = $1`, `DELETE FROM addresses WHERE network = $1`,
			`DELETE FROM host_status WHERE network = $1`, `DELETE FROM alloc_floor WHERE network = $1`, `DELETE FROM networks WHERE name = $1`} {
			if _, err := tx.Exec(ctx, q, name); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, name+" 0"); err != nil {
			return err
		}
		return audit(ctx, tx, name, 0, store.NetworkDeleted, name)
	})
}

// AddHost implements store.Store.
func (s *Store) AddHost(ctx context.Context, network string, h store.Host, v store.Validate) (store.Host, uint64, error) {
	var rev uint64
	var out store.Host
	err := s.write(ctx, func(tx pgx.Tx) (err error) {
		out, rev, err = addHostTx(ctx, tx, network, h, v)
		return err
	})
	return out, rev, err
}

// Enroll implements store.Store: the token's use, the host's addition and its
// agent credential commit together or not at all.
func (s *Store) Enroll(ctx context.Context, hash store.TokenHash, now time.Time, h store.Host, v store.Validate, cred store.TokenHash) (store.Token, store.Host, uint64, error) {
	var t store.Token
	var rev uint64
	var out store.Host
	err := s.write(ctx, func(tx pgx.Tx) (err error) {
		if t, err = useTokenTx(ctx, tx, hash, now); err != nil {
			return err
		}
		if t.Host != "" && t.Host != h.Name {
			return fmt.Errorf("token: %w: it is for host %s, not %s", store.ErrInvalid, t.Host, h.Name)
		}
		h := h
		h.Hub = false // a host never makes itself the hub
		if h.Routes, h.PendingRoutes, err = store.SplitRoutes(t, h.Routes); err != nil {
			return err
		}
		adopted, err := adoptTx(ctx, tx, t, h)
		switch {
		case err != nil:
			return err
		case adopted != nil:
			n, err := networkTx(ctx, tx, t.Network, true)
			if err != nil {
				return err
			}
			out, rev = *adopted, n.Revision
		default:
			if out, rev, err = addHostTx(ctx, tx, t.Network, h, v); err != nil {
				return err
			}
		}
		if cred != (store.TokenHash{}) {
			tag, err := tx.Exec(ctx, `INSERT INTO tokens (hash, kind, network, host, uses, expires, routes) VALUES ($1, $2, $3, $4, 0, 0, '')
				ON CONFLICT (hash) DO NOTHING`, cred[:], string(store.AgentToken), t.Network, h.Name)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("agent credential: %w", store.ErrExists)
			}
		}
		if adopted != nil {
			return audit(ctx, tx, t.Network, rev, store.HostAdopted, h.Name+" (join token "+hash.ID()+")")
		}
		return audit(ctx, tx, t.Network, rev, store.HostEnrolled, h.Name+" (join token "+hash.ID()+")")
	})
	return t, out, rev, err
}

// adoptTx returns the stored host a join with token t adopts (store.Adopted),
// nil when the host is new.
func adoptTx(ctx context.Context, tx pgx.Tx, t store.Token, h store.Host) (*store.Host, error) {
	if t.Host == "" {
		return nil, nil
	}
	hs, err := hostsTx(ctx, tx, t.Network, `name = $2`, t.Host)
	if err != nil {
		return nil, err
	}
	return store.Adopted(hs, h)
}

// SetPolicy implements store.Store.
func (s *Store) SetPolicy(ctx context.Context, network string, policy []byte, ifRevision uint64) (uint64, error) {
	var rev uint64
	err := s.write(ctx, func(tx pgx.Tx) error {
		n, err := networkTx(ctx, tx, network, true)
		if err != nil {
			return err
		}
		if ifRevision != 0 && n.Revision != ifRevision {
			return fmt.Errorf("network %s: %w: it is at revision %d, not %d; read the policy again", network, store.ErrConflict, n.Revision, ifRevision)
		}
		if policy == nil {
			policy = []byte{}
		}
		if _, err := tx.Exec(ctx, `UPDATE networks SET policy = $1 WHERE name = $2`, policy, network); err != nil {
			return err
		}
		if rev, err = bump(ctx, tx, network, store.PolicyChanged, ""); err != nil {
			return err
		}
		return audit(ctx, tx, network, rev, string(store.PolicyChanged), "")
	})
	return rev, err
}

// addHostTx is AddHost inside tx, the network's row locked first.
func addHostTx(ctx context.Context, tx pgx.Tx, network string, h store.Host, v store.Validate) (store.Host, uint64, error) {
	n, err := networkTx(ctx, tx, network, true)
	if err != nil {
		return h, 0, err
	}
	if err := unique(ctx, tx, network, h.Name, h.PublicKey, true); err != nil {
		return h, 0, err
	}
	if err := store.Allocate(n, floors(ctx, tx, n, ""), &h); err != nil {
		return h, 0, err
	}
	switch {
	case h.Hub && n.Topology != "hub":
		return h, 0, fmt.Errorf("host %s: %w: a hub in a mesh network", h.Name, store.ErrInvalid)
	case h.Hub, n.Topology == "hub" && n.Hub == "":
		n.Hub = h.Name
	}
	h.Hub = n.Hub == h.Name
	n.Hosts++
	if err := validateTx(ctx, tx, n, h, v); err != nil {
		return h, 0, err
	}
	h.Tags = store.EditTags(h.Tags, nil, nil)
	if err := insertHost(ctx, tx, network, h); err != nil {
		return h, 0, err
	}
	if err := setHub(ctx, tx, n); err != nil {
		return h, 0, err
	}
	rev, err := bump(ctx, tx, network, store.HostAdded, h.Name)
	if err != nil {
		return h, 0, err
	}
	return h, rev, audit(ctx, tx, network, rev, string(store.HostAdded), h.Name)
}

// unique checks that no other host of the network has name (compared
// case-insensitively) or key; the unique indexes enforce it too, this says
// which one.
func unique(ctx context.Context, tx pgx.Tx, network, name string, key wgkey.Key, checkName bool) error {
	var other string
	if checkName {
		err := tx.QueryRow(ctx, `SELECT name FROM hosts WHERE network = $1 AND lower(name) = lower($2)`, network, name).Scan(&other)
		if err == nil {
			return fmt.Errorf("host %s: %w", name, store.ErrExists)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
	}
	err := tx.QueryRow(ctx, `SELECT name FROM hosts WHERE network = $1 AND public_key = $2 AND name <> $3`, network, key.String(), name).Scan(&other)
	if err == nil {
		return fmt.Errorf("host %s: public key of %s: %w", name, other, store.ErrConflict)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	return err
}

// validateTx hands v the network and h with the hosts h can conflict with
// beyond the unique indexes: the hub and the hosts with routed subnets.
func validateTx(ctx context.Context, tx pgx.Tx, n store.Network, h store.Host, v store.Validate) error {
	if v == nil {
		return nil
	}
	related, err := hostsTx(ctx, tx, n.Name, `(routes <> '' OR name = $2) AND name <> $3`, n.Hub, h.Name)
	if err != nil {
		return err
	}
	all := append(related, h)
	slices.SortFunc(all, func(a, b store.Host) int { return strings.Compare(a.Name, b.Name) })
	store.MarkHub(n, all)
	return v(n, all)
}

// SetHost implements store.Store.
func (s *Store) SetHost(ctx context.Context, network, name string, c store.HostChanges, v store.Validate) (store.Host, uint64, error) {
	var rev uint64
	var h store.Host
	err := s.write(ctx, func(tx pgx.Tx) (err error) {
		h, rev, err = setHostTx(ctx, tx, network, name, c, v)
		return err
	})
	return h, rev, err
}

func setHostTx(ctx context.Context, tx pgx.Tx, network, name string, c store.HostChanges, v store.Validate) (store.Host, uint64, error) {
	n, err := networkTx(ctx, tx, network, true)
	if err != nil {
		return store.Host{}, 0, err
	}
	hs, err := hostsTx(ctx, tx, network, `name = $2`, name)
	if err != nil {
		return store.Host{}, 0, err
	}
	if len(hs) == 0 {
		return store.Host{}, 0, fmt.Errorf("host %s: %w", name, store.ErrNotFound)
	}
	h, err := c.Apply(&n, floors(ctx, tx, n, name), hs[0])
	if err != nil {
		return h, 0, err
	}
	if c.PublicKey != nil {
		if err := unique(ctx, tx, network, name, h.PublicKey, false); err != nil {
			return h, 0, err
		}
	}
	if err := validateTx(ctx, tx, n, h, v); err != nil {
		return h, 0, err
	}
	_, err = tx.Exec(ctx, `UPDATE hosts SET public_key = $1, endpoint = $2, routes = $3, keepalive = $4, tags = $5, pending_routes = $6 WHERE network = $7 AND name = $8`,
		h.PublicKey.String(), h.Endpoint, store.JoinPrefixes(h.Routes), h.Keepalive, strings.Join(h.Tags, ","), store.JoinPrefixes(h.PendingRoutes), network, name)
	if err == nil {
		err = setSettings(ctx, tx, network, h, true)
	}
	if isUnique(err) {
		return h, 0, fmt.Errorf("host %s: %w", name, store.ErrConflict)
	}
	if err != nil {
		return h, 0, err
	}
	if len(c.Addresses) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM addresses WHERE network = $1 AND host = $2`, network, name); err != nil {
			return h, 0, err
		}
		if err := insertAddrs(ctx, tx, network, h); err != nil {
			return h, 0, err
		}
	}
	if err := setHub(ctx, tx, n); err != nil {
		return h, 0, err
	}
	rev, err := bump(ctx, tx, network, store.HostChanged, name)
	if err != nil {
		return h, 0, err
	}
	return h, rev, audit(ctx, tx, network, rev, string(store.HostChanged), name)
}

// RemoveHost implements store.Store.
func (s *Store) RemoveHost(ctx context.Context, network, name string) (uint64, error) {
	var rev uint64
	err := s.write(ctx, func(tx pgx.Tx) error {
		n, err := networkTx(ctx, tx, network, true)
		if err != nil {
			return err
		}
		if n.Hub == name {
			var others int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM hosts WHERE network = $1 AND name <> $2`, network, name).Scan(&others); err != nil {
				return err
			}
			if others > 0 {
				return fmt.Errorf("host %s: %w: it is the hub; make another host the hub first", name, store.ErrConflict)
			}
			n.Hub = ""
			if err := setHub(ctx, tx, n); err != nil {
				return err
			}
		}
		freed, err := hostsTx(ctx, tx, network, `name = $2`, name)
		if err != nil {
			return err
		}
		if len(freed) == 0 {
			return fmt.Errorf("host %s: %w", name, store.ErrNotFound)
		}
		if err := store.LowerFloors(n, floors(ctx, tx, n, name), freed[0].Addresses); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM addresses WHERE network = $1 AND host = $2`, `DELETE FROM hosts WHERE network = $1 AND name = $2`,
			`DELETE FROM host_status WHERE network = $1 AND host = $2`, `DELETE FROM tokens WHERE network = $1 AND host = $2 AND kind = 'agent'`} {
			if _, err := tx.Exec(ctx, q, network, name); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE networks SET hosts = hosts - 1 WHERE name = $1`, network); err != nil {
			return err
		}
		if rev, err = bump(ctx, tx, network, store.HostRemoved, name); err != nil {
			return err
		}
		return audit(ctx, tx, network, rev, string(store.HostRemoved), name)
	})
	return rev, err
}

// Hosts implements store.Store.
func (s *Store) Hosts(ctx context.Context, network string) (store.Network, []store.Host, error) {
	var n store.Network
	var hs []store.Host
	err := s.read(ctx, func(tx pgx.Tx) (err error) {
		if n, err = networkTx(ctx, tx, network, false); err != nil {
			return err
		}
		hs, err = hostsTx(ctx, tx, network, "")
		store.MarkHub(n, hs)
		return err
	})
	return n, hs, err
}

// Changes implements store.Store.
func (s *Store) Changes(ctx context.Context, network string, since uint64, limit int) ([]store.Change, error) {
	var out []store.Change
	err := s.read(ctx, func(tx pgx.Tx) (err error) {
		if _, err := networkTx(ctx, tx, network, false); err != nil {
			return err
		}
		q, args := limited(`SELECT revision, kind, host, time FROM changes WHERE network = $1 AND revision > $2 ORDER BY revision`, limit, network, int64(since))
		out, err = collect(ctx, tx, scanChange, q, args...)
		return err
	})
	return out, err
}

// HostsAndLog implements store.Store: one REPEATABLE READ transaction, one
// snapshot.
func (s *Store) HostsAndLog(ctx context.Context, network string, since uint64, last int) (store.Network, []store.Host, []store.Change, error) {
	var n store.Network
	var hs []store.Host
	var cs []store.Change
	err := s.read(ctx, func(tx pgx.Tx) (err error) {
		if n, err = networkTx(ctx, tx, network, false); err != nil {
			return err
		}
		if hs, err = hostsTx(ctx, tx, network, ""); err != nil {
			return err
		}
		store.MarkHub(n, hs)
		q, args := limited(`SELECT revision, kind, host, time FROM changes WHERE network = $1 AND revision > $2 ORDER BY revision DESC`, last, network, int64(since))
		if cs, err = collect(ctx, tx, scanChange, q, args...); err != nil {
			return err
		}
		slices.Reverse(cs)
		return nil
	})
	return n, hs, cs, err
}

// limited adds a LIMIT to q when limit > 0.
func limited(q string, limit int, args ...any) (string, []any) {
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT $%d", len(args)+1)
		args = append(args, limit)
	}
	return q, args
}

func scanChange(r pgx.Row) (store.Change, error) {
	var c store.Change
	var rev, t int64
	var kind string
	err := r.Scan(&rev, &kind, &c.Host, &t)
	c.Revision, c.Kind, c.Time = uint64(rev), store.ChangeKind(kind), time.Unix(0, t).UTC()
	return c, err
}

// bump increments the network's revision (its row is locked since the start
// of the transaction), logs the change and queues the wake-up sent at commit.
func bump(ctx context.Context, tx pgx.Tx, network string, kind store.ChangeKind, host string) (uint64, error) {
	var rev int64
	err := tx.QueryRow(ctx, `UPDATE networks SET revision = revision + 1 WHERE name = $1 RETURNING revision`, network).Scan(&rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("network %s: %w", network, store.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return uint64(rev), logChange(ctx, tx, network, uint64(rev), kind, host)
}

func logChange(ctx context.Context, tx pgx.Tx, network string, rev uint64, kind store.ChangeKind, host string) error {
	_, err := tx.Exec(ctx, `INSERT INTO changes (network, revision, kind, host, time) VALUES ($1, $2, $3, $4, $5)`,
		network, int64(rev), string(kind), host, time.Now().UnixNano())
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, fmt.Sprintf("%s %d", network, rev))
	return err
}

// audit writes one audit entry in tx, numbered by the counter row (locked to
// commit, so entries are numbered in commit order).
func audit(ctx context.Context, tx pgx.Tx, network string, rev uint64, action, subject string) error {
	_, err := tx.Exec(ctx, `WITH next AS (UPDATE audit_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq)
		INSERT INTO audit (seq, time, actor, network, revision, action, subject) SELECT seq, $1, $2, $3, $4, $5, $6 FROM next`,
		time.Now().UnixNano(), store.ActorOf(ctx), network, int64(rev), action, subject)
	return err
}

func setHub(ctx context.Context, tx pgx.Tx, n store.Network) error {
	_, err := tx.Exec(ctx, `UPDATE networks SET hub = $1 WHERE name = $2`, n.Hub, n.Name)
	return err
}

func insertHost(ctx context.Context, tx pgx.Tx, network string, h store.Host) error {
	_, err := tx.Exec(ctx, `INSERT INTO hosts (network, name, public_key, endpoint, routes, keepalive, tags, pending_routes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		network, h.Name, h.PublicKey.String(), h.Endpoint, store.JoinPrefixes(h.Routes), h.Keepalive, strings.Join(store.EditTags(h.Tags, nil, nil), ","), store.JoinPrefixes(h.PendingRoutes))
	if isUnique(err) {
		return fmt.Errorf("host %s: %w", h.Name, store.ErrConflict)
	}
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE networks SET hosts = hosts + 1 WHERE name = $1`, network); err != nil {
		return err
	}
	if err := setSettings(ctx, tx, network, h, false); err != nil {
		return err
	}
	return insertAddrs(ctx, tx, network, h)
}

// setSettings stores h's Settings; a new host (always false) with none
// keeps the columns' defaults without a statement.
func setSettings(ctx context.Context, tx pgx.Tx, network string, h store.Host, always bool) error {
	st := h.Settings.Store(h.Addresses)
	if !always && st == (store.StoredSettings{}) {
		return nil
	}
	args := st.Args()
	set := store.SettingsUpdate(func(n int) string { return fmt.Sprintf("$%d", n) }, 1)
	_, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE hosts SET %s WHERE network = $%d AND name = $%d`, set, len(args)+1, len(args)+2),
		append(args, network, h.Name)...)
	return err
}

func insertAddrs(ctx context.Context, tx pgx.Tx, network string, h store.Host) error {
	for _, a := range h.Addresses {
		_, err := tx.Exec(ctx, `INSERT INTO addresses (network, addr, host) VALUES ($1, $2, $3)`, network, a.String(), h.Name)
		if isUnique(err) {
			return fmt.Errorf("host %s: address %s: %w", h.Name, a, store.ErrConflict)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func scanNetwork(r pgx.Row) (store.Network, error) {
	var n store.Network
	var subnets string
	var rev int64
	if err := r.Scan(&n.Name, &subnets, &n.Topology, &n.Hub, &rev, &n.Hosts, &n.Policy); err != nil {
		return n, err
	}
	if len(n.Policy) == 0 {
		n.Policy = nil
	}
	n.Revision = uint64(rev)
	var err error
	n.Subnets, err = store.SplitPrefixes(subnets)
	return n, err
}

// networkTx reads a network; lock takes its row until the transaction ends,
// which every change does first.
func networkTx(ctx context.Context, tx pgx.Tx, name string, lock bool) (store.Network, error) {
	q := `SELECT name, subnets, topology, hub, revision, hosts, policy FROM networks WHERE name = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	n, err := scanNetwork(tx.QueryRow(ctx, q, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return n, fmt.Errorf("network %s: %w", name, store.ErrNotFound)
	}
	return n, err
}

// hostsTx reads the hosts of network matching the SQL condition cond ("" for
// all; its parameters from $2), sorted by name, with their addresses.
func hostsTx(ctx context.Context, tx pgx.Tx, network, cond string, args ...any) ([]store.Host, error) {
	where := "h.network = $1"
	if cond != "" {
		where += " AND " + cond
	}
	args = append([]any{network}, args...)
	rows, err := tx.Query(ctx, `SELECT h.name, h.public_key, h.endpoint, h.routes, h.keepalive, h.tags, h.pending_routes, `+store.SettingsColumns+`,
		coalesce((SELECT array_agg(a.addr) FROM addresses a WHERE a.network = h.network AND a.host = h.name), '{}')
		FROM hosts h WHERE `+where+` ORDER BY h.name COLLATE "C"`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var hosts []store.Host
	for rows.Next() {
		var h store.Host
		var key, routes, tags, pending string
		var addrs []string
		var st store.StoredSettings
		if err := rows.Scan(append(append([]any{&h.Name, &key, &h.Endpoint, &routes, &h.Keepalive, &tags, &pending}, st.Dests()...), &addrs)...); err != nil {
			return nil, err
		}
		if h.Settings, err = st.Settings(); err != nil {
			return nil, fmt.Errorf("host %s: %w", h.Name, err)
		}
		h.Tags = store.SplitTags(tags)
		if h.PendingRoutes, err = store.SplitPrefixes(pending); err != nil {
			return nil, err
		}
		if h.PublicKey, err = wgkey.ParseKey(key); err != nil {
			return nil, fmt.Errorf("host %s: stored key: %w", h.Name, err)
		}
		if h.Routes, err = store.SplitPrefixes(routes); err != nil {
			return nil, err
		}
		for _, s := range addrs {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("host %s: stored address: %w", h.Name, err)
			}
			h.Addresses = append(h.Addresses, a)
		}
		slices.SortFunc(h.Addresses, func(a, b netip.Addr) int { return a.Compare(b) })
		hosts = append(hosts, h)
	}
	return hosts, rows.Err()
}
