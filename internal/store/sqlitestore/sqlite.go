// Package sqlitestore is the embedded implementation of store.Store: one SQLite
// database file (pure-Go driver modernc.org/sqlite) in write-ahead-log mode with
// synchronous=FULL, so that a committed transaction is on disk before the
// caller hears of it. Every writing transaction starts with BEGIN IMMEDIATE:
// concurrent writers wait for the lock (busy timeout) instead of failing on a
// stale snapshot. Writers of one process also queue on a single connection;
// reads run on a pool of their own and see one committed snapshot each.
// It imports store, ipam (through store) and wgkey only.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/wgnet/wgnet/internal/store"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// BusyTimeout is how long a writer waits for another process's write lock.
const BusyTimeout = 10 * time.Second

const schema = `
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS networks (
	name     TEXT PRIMARY KEY,
	subnets  TEXT NOT NULL,
	topology TEXT NOT NULL,
	hub      TEXT NOT NULL DEFAULT '',
	revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hosts (
	network    TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	public_key TEXT NOT NULL,
	endpoint   TEXT NOT NULL,
	routes     TEXT NOT NULL,
	keepalive  INTEGER NOT NULL,
	PRIMARY KEY (network, name),
	UNIQUE (network, public_key)
);
CREATE TABLE IF NOT EXISTS addresses (
	network TEXT NOT NULL,
	addr    TEXT NOT NULL,
	host    TEXT NOT NULL,
	PRIMARY KEY (network, addr),
	FOREIGN KEY (network, host) REFERENCES hosts(network, name) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS changes (
	network  TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
	revision INTEGER NOT NULL,
	kind     TEXT NOT NULL,
	host     TEXT NOT NULL,
	time     INTEGER NOT NULL,
	PRIMARY KEY (network, revision)
);
CREATE TABLE IF NOT EXISTS tokens (
	hash    BLOB PRIMARY KEY,
	kind    TEXT NOT NULL,
	network TEXT NOT NULL,
	host    TEXT NOT NULL,
	uses    INTEGER NOT NULL,
	expires INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	time     INTEGER NOT NULL,
	actor    TEXT NOT NULL,
	network  TEXT NOT NULL,
	revision INTEGER NOT NULL,
	action   TEXT NOT NULL,
	subject  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alloc_floor (
	network TEXT NOT NULL,
	subnet  TEXT NOT NULL,
	addr    TEXT NOT NULL, -- every allocatable address of subnet below addr is taken
	PRIMARY KEY (network, subnet)
);
CREATE TABLE IF NOT EXISTS host_status (
	network  TEXT NOT NULL,
	host     TEXT NOT NULL,
	time     INTEGER NOT NULL,
	revision INTEGER NOT NULL,
	peers    TEXT NOT NULL,
	PRIMARY KEY (network, host)
);
`

// migrations bring a database of schema version i+1 to i+2 (version 1 is the
// schema of the first controller slice).
var migrations = []string{
	`ALTER TABLE tokens ADD COLUMN routes TEXT NOT NULL DEFAULT '';
	ALTER TABLE networks ADD COLUMN hosts INTEGER NOT NULL DEFAULT 0;
	UPDATE networks SET hosts = (SELECT count(*) FROM hosts WHERE hosts.network = networks.name);
	CREATE UNIQUE INDEX IF NOT EXISTS hosts_name_nocase ON hosts (network, name COLLATE NOCASE);
	CREATE INDEX IF NOT EXISTS hosts_routed ON hosts (network) WHERE routes != '';
	CREATE INDEX IF NOT EXISTS addresses_host ON addresses (network, host);`,
	// 3: the CA shared by the controllers of a database (issue 16).
	`CREATE TABLE IF NOT EXISTS ca (
		id         INTEGER PRIMARY KEY CHECK (id = 1),
		cert       BLOB NOT NULL,
		sealed_key BLOB NOT NULL
	);`,
	// 4: the segmentation policy and hosts' tags (issue 13).
	`ALTER TABLE networks ADD COLUMN policy BLOB NOT NULL DEFAULT x'';
	ALTER TABLE hosts ADD COLUMN tags TEXT NOT NULL DEFAULT '';`,
	// 5: routes a joining host asked for beyond its token's, for an admin to approve.
	`ALTER TABLE hosts ADD COLUMN pending_routes TEXT NOT NULL DEFAULT '';`,
	// 6: a host's own settings (store.Settings, issue 10); the defaults are
	// what every host had before, and compile as they did.
	`ALTER TABLE hosts ADD COLUMN address_bits TEXT NOT NULL DEFAULT '';
	ALTER TABLE hosts ADD COLUMN address_elsewhere INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE hosts ADD COLUMN random_port INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE hosts ADD COLUMN mtu INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE hosts ADD COLUMN dns TEXT NOT NULL DEFAULT '';
	ALTER TABLE hosts ADD COLUMN table_name TEXT NOT NULL DEFAULT '';
	ALTER TABLE hosts ADD COLUMN fwmark INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE hosts ADD COLUMN external INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE hosts ADD COLUMN full_tunnel TEXT NOT NULL DEFAULT '';`,
}

// schemaVersion is the version this build writes.
var schemaVersion = 1 + len(migrations)

// Store is a store.Store on one SQLite file.
type Store struct {
	w    *sql.DB // one connection, BEGIN IMMEDIATE: all writes
	r    *sql.DB // reads
	note *notifier
	// pending are the revisions the writing transaction under way committed
	// (see committed); only the writer touches it, one write at a time.
	pending map[string]uint64
	wmu     sync.Mutex // serialises write, so that pending belongs to one transaction
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the database file at path.
func Open(ctx context.Context, path string) (*Store, error) {
	dsn := func(txlock string) string {
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", txlock)
		return "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn("immediate"))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn("deferred"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{w: w, r: r, note: notifierFor(path)}
	if err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return err
		}
		var v int
		err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			v = 1
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_version VALUES (1)`)
		}
		if err != nil {
			return err
		}
		if v > schemaVersion {
			return fmt.Errorf("schema version %d is newer than this wgnet's %d", v, schemaVersion)
		}
		for ; v < schemaVersion; v++ {
			if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v)
		return err
	}); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return errors.Join(s.w.Close(), s.r.Close()) }

// write runs fn in one BEGIN IMMEDIATE transaction and commits it, then wakes
// the WaitRevision calls of this process with the revisions it committed.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.pending = nil
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.note.publish(s.pending)
	return nil
}

// read runs fn in one read transaction: one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// isConstraint reports a uniqueness or foreign-key violation.
func isConstraint(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// CreateNetwork implements store.Store.
func (s *Store) CreateNetwork(ctx context.Context, n store.Network) (store.Network, error) {
	if err := store.ValidNetwork(n); err != nil {
		return n, err
	}
	n.Revision, n.Hub = 1, ""
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO networks (name, subnets, topology, hub, revision) VALUES (?, ?, ?, '', 1)`,
			n.Name, store.JoinPrefixes(n.Subnets), n.Topology)
		if isConstraint(err) {
			return fmt.Errorf("network %s: %w", n.Name, store.ErrExists)
		}
		if err != nil {
			return err
		}
		if err := logChange(ctx, tx, n.Name, 1, store.NetworkCreated, ""); err != nil {
			return err
		}
		s.committed(n.Name, 1)
		return audit(ctx, tx, n.Name, 1, string(store.NetworkCreated), n.Name)
	})
	return n, err
}

// Network implements store.Store.
func (s *Store) Network(ctx context.Context, name string) (store.Network, error) {
	var n store.Network
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		n, err = networkTx(ctx, tx, name)
		return err
	})
	return n, err
}

// Networks implements store.Store.
func (s *Store) Networks(ctx context.Context) ([]store.Network, error) {
	var out []store.Network
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name, subnets, topology, hub, revision, hosts, policy FROM networks ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			n, err := scanNetwork(rows)
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	return out, err
}

// DeleteNetwork implements store.Store.
func (s *Store) DeleteNetwork(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE network = ?`, name); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM addresses WHERE network = ?`, `DELETE FROM host_status WHERE network = ?`, `DELETE FROM alloc_floor WHERE network = ?`} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM networks WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return fmt.Errorf("network %s: %w", name, store.ErrNotFound)
		}
		s.committed(name, 0)
		return audit(ctx, tx, name, 0, store.NetworkDeleted, name)
	})
}

// AddHost implements store.Store.
func (s *Store) AddHost(ctx context.Context, network string, h store.Host, v store.Validate) (store.Host, uint64, error) {
	var rev uint64
	err := s.write(ctx, func(tx *sql.Tx) (err error) {
		if h, rev, err = addHostTx(ctx, tx, network, h, v); err == nil {
			s.committed(network, rev)
		}
		return err
	})
	return h, rev, err
}

// Enroll implements store.Store: the token's use, the host's addition and its
// agent credential commit together or not at all.
func (s *Store) Enroll(ctx context.Context, hash store.TokenHash, now time.Time, h store.Host, v store.Validate, cred store.TokenHash) (store.Token, store.Host, uint64, error) {
	var t store.Token
	var rev uint64
	err := s.write(ctx, func(tx *sql.Tx) (err error) {
		if t, err = useTokenTx(ctx, tx, hash, now); err != nil {
			return err
		}
		if t.Host != "" && t.Host != h.Name {
			return fmt.Errorf("token: %w: it is for host %s, not %s", store.ErrInvalid, t.Host, h.Name)
		}
		h.Hub = false // a host never makes itself the hub
		if h.Routes, h.PendingRoutes, err = store.SplitRoutes(t, h.Routes); err != nil {
			return err
		}
		adopted, err := adoptTx(ctx, tx, t, h)
		switch {
		case err != nil:
			return err
		case adopted != nil:
			n, err := networkTx(ctx, tx, t.Network)
			if err != nil {
				return err
			}
			h, rev = *adopted, n.Revision
		default:
			if h, rev, err = addHostTx(ctx, tx, t.Network, h, v); err != nil {
				return err
			}
		}
		if cred != (store.TokenHash{}) {
			_, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, network, host, uses, expires, routes) VALUES (?, ?, ?, ?, 0, 0, '')`,
				cred[:], string(store.AgentToken), t.Network, h.Name)
			if isConstraint(err) {
				return fmt.Errorf("agent credential: %w", store.ErrExists)
			}
			if err != nil {
				return err
			}
		}
		s.committed(t.Network, rev)
		if adopted != nil {
			return audit(ctx, tx, t.Network, rev, store.HostAdopted, h.Name+" (join token "+hash.ID()+")")
		}
		return audit(ctx, tx, t.Network, rev, store.HostEnrolled, h.Name+" (join token "+hash.ID()+")")
	})
	return t, h, rev, err
}

// adoptTx returns the stored host a join with token t adopts (store.Adopted),
// nil when the host is new.
func adoptTx(ctx context.Context, tx *sql.Tx, t store.Token, h store.Host) (*store.Host, error) {
	if t.Host == "" {
		return nil, nil
	}
	hs, err := hostsTx(ctx, tx, t.Network, `name = ?`, t.Host)
	if err != nil {
		return nil, err
	}
	return store.Adopted(hs, h)
}

// addHostTx is AddHost inside tx. It reads what the change can conflict
// with, not the whole network: the name, key and addresses by their unique
// indexes (allocation probes up from the subnet's floor), and the hosts
// Validate needs.
func addHostTx(ctx context.Context, tx *sql.Tx, network string, h store.Host, v store.Validate) (store.Host, uint64, error) {
	var rev uint64
	err := func() error {
		n, err := networkTx(ctx, tx, network)
		if err != nil {
			return err
		}
		if err := unique(ctx, tx, network, h.Name, h.PublicKey, true); err != nil {
			return err
		}
		if err := store.Allocate(n, floors(ctx, tx, n, ""), &h); err != nil {
			return err
		}
		switch {
		case h.Hub && n.Topology != "hub":
			return fmt.Errorf("host %s: %w: a hub in a mesh network", h.Name, store.ErrInvalid)
		case h.Hub, n.Topology == "hub" && n.Hub == "":
			n.Hub = h.Name
		}
		h.Hub = n.Hub == h.Name
		n.Hosts++
		if err := validateTx(ctx, tx, n, h, v); err != nil {
			return err
		}
		h.Tags = store.EditTags(h.Tags, nil, nil)
		if err := insertHost(ctx, tx, network, h); err != nil {
			return err
		}
		if rev, err = bump(ctx, tx, network, store.HostAdded, h.Name); err != nil {
			return err
		}
		if err := audit(ctx, tx, network, rev, string(store.HostAdded), h.Name); err != nil {
			return err
		}
		return setHub(ctx, tx, n)
	}()
	return h, rev, err
}

// unique checks that no other host of the network has name (compared
// case-insensitively) or key; the unique indexes enforce it too, this says
// which one.
func unique(ctx context.Context, tx *sql.Tx, network, name string, key wgkey.Key, checkName bool) error {
	var other string
	if checkName {
		err := tx.QueryRowContext(ctx, `SELECT name FROM hosts WHERE network = ? AND name = ? COLLATE NOCASE`, network, name).Scan(&other)
		if err == nil {
			return fmt.Errorf("host %s: %w", name, store.ErrExists)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	err := tx.QueryRowContext(ctx, `SELECT name FROM hosts WHERE network = ? AND public_key = ? AND name != ?`, network, key.String(), name).Scan(&other)
	if err == nil {
		return fmt.Errorf("host %s: public key of %s: %w", name, other, store.ErrConflict)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}

// validateTx hands v the network and h with the hosts h can conflict with
// beyond the unique indexes: the hub and the hosts with routed subnets.
func validateTx(ctx context.Context, tx *sql.Tx, n store.Network, h store.Host, v store.Validate) error {
	if v == nil {
		return nil
	}
	related, err := hostsTx(ctx, tx, n.Name, `(routes != '' OR name = ?) AND name != ?`, n.Hub, h.Name)
	if err != nil {
		return err
	}
	all := sortedHosts(append(related, h))
	store.MarkHub(n, all)
	return v(n, all)
}

// SetHost implements store.Store.
func (s *Store) SetHost(ctx context.Context, network, name string, c store.HostChanges, v store.Validate) (store.Host, uint64, error) {
	var rev uint64
	var h store.Host
	err := s.write(ctx, func(tx *sql.Tx) error {
		n, err := networkTx(ctx, tx, network)
		if err != nil {
			return err
		}
		hs, err := hostsTx(ctx, tx, network, `name = ?`, name)
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("host %s: %w", name, store.ErrNotFound)
		}
		if h, err = c.Apply(&n, floors(ctx, tx, n, name), hs[0]); err != nil {
			return err
		}
		if c.PublicKey != nil {
			if err := unique(ctx, tx, network, name, h.PublicKey, false); err != nil {
				return err
			}
		}
		if err := validateTx(ctx, tx, n, h, v); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE hosts SET public_key = ?, endpoint = ?, routes = ?, keepalive = ?, tags = ?, pending_routes = ? WHERE network = ? AND name = ?`,
			h.PublicKey.String(), h.Endpoint, store.JoinPrefixes(h.Routes), h.Keepalive, strings.Join(h.Tags, ","), store.JoinPrefixes(h.PendingRoutes), network, name)
		if err == nil {
			err = setSettings(ctx, tx, network, h, true)
		}
		if isConstraint(err) {
			return fmt.Errorf("host %s: %w", name, store.ErrConflict)
		}
		if err != nil {
			return err
		}
		if len(c.Addresses) > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM addresses WHERE network = ? AND host = ?`, network, name); err != nil {
				return err
			}
			if err := insertAddrs(ctx, tx, network, h); err != nil {
				return err
			}
		}
		if rev, err = bump(ctx, tx, network, store.HostChanged, name); err != nil {
			return err
		}
		s.committed(network, rev)
		if err := audit(ctx, tx, network, rev, string(store.HostChanged), name); err != nil {
			return err
		}
		return setHub(ctx, tx, n)
	})
	return h, rev, err
}

// RemoveHost implements store.Store.
func (s *Store) RemoveHost(ctx context.Context, network, name string) (uint64, error) {
	var rev uint64
	err := s.write(ctx, func(tx *sql.Tx) error {
		n, err := networkTx(ctx, tx, network)
		if err != nil {
			return err
		}
		if n.Hub == name {
			var others int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM hosts WHERE network = ? AND name != ?`, network, name).Scan(&others); err != nil {
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
		freed, err := hostsTx(ctx, tx, network, `name = ?`, name)
		if err != nil {
			return err
		}
		if len(freed) == 1 {
			if err := store.LowerFloors(n, floors(ctx, tx, n, name), freed[0].Addresses); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM addresses WHERE network = ? AND host = ?`, network, name); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM hosts WHERE network = ? AND name = ?`, network, name)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return fmt.Errorf("host %s: %w", name, store.ErrNotFound)
		}
		for _, q := range []string{`DELETE FROM host_status WHERE network = ? AND host = ?`, `DELETE FROM tokens WHERE network = ? AND host = ? AND kind = 'agent'`} {
			if _, err := tx.ExecContext(ctx, q, network, name); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE networks SET hosts = hosts - 1 WHERE name = ?`, network); err != nil {
			return err
		}
		if rev, err = bump(ctx, tx, network, store.HostRemoved, name); err != nil {
			return err
		}
		s.committed(network, rev)
		return audit(ctx, tx, network, rev, string(store.HostRemoved), name)
	})
	return rev, err
}

// SetPolicy implements store.Store.
func (s *Store) SetPolicy(ctx context.Context, network string, policy []byte, ifRevision uint64) (uint64, error) {
	var rev uint64
	err := s.write(ctx, func(tx *sql.Tx) error {
		n, err := networkTx(ctx, tx, network)
		if err != nil {
			return err
		}
		if ifRevision != 0 && n.Revision != ifRevision {
			return fmt.Errorf("network %s: %w: it is at revision %d, not %d; read the policy again", network, store.ErrConflict, n.Revision, ifRevision)
		}
		if policy == nil {
			policy = []byte{}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE networks SET policy = ? WHERE name = ?`, policy, network); err != nil {
			return err
		}
		if rev, err = bump(ctx, tx, network, store.PolicyChanged, ""); err != nil {
			return err
		}
		s.committed(network, rev)
		return audit(ctx, tx, network, rev, string(store.PolicyChanged), "")
	})
	return rev, err
}

// Hosts implements store.Store.
func (s *Store) Hosts(ctx context.Context, network string) (store.Network, []store.Host, error) {
	var n store.Network
	var hs []store.Host
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		n, hs, err = snapshotTx(ctx, tx, network)
		return err
	})
	return n, hs, err
}

// Changes implements store.Store.
func (s *Store) Changes(ctx context.Context, network string, since uint64, limit int) ([]store.Change, error) {
	var out []store.Change
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		if _, err := networkTx(ctx, tx, network); err != nil {
			return err
		}
		out, err = changesTx(ctx, tx, network, since, limit, false)
		return err
	})
	return out, err
}

// HostsAndLog implements store.Store: one read transaction, one snapshot.
func (s *Store) HostsAndLog(ctx context.Context, network string, since uint64, last int) (store.Network, []store.Host, []store.Change, error) {
	var n store.Network
	var hs []store.Host
	var cs []store.Change
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		if n, hs, err = snapshotTx(ctx, tx, network); err != nil {
			return err
		}
		cs, err = changesTx(ctx, tx, network, since, last, true)
		return err
	})
	return n, hs, cs, err
}

// changesTx reads the log of network after since, oldest first: at most
// limit entries (0: all), the oldest of them, or the newest with newest.
func changesTx(ctx context.Context, tx *sql.Tx, network string, since uint64, limit int, newest bool) ([]store.Change, error) {
	if limit <= 0 {
		limit = -1
	}
	q := `SELECT revision, kind, host, time FROM changes WHERE network = ? AND revision > ? ORDER BY revision LIMIT ?`
	if newest {
		q = `SELECT * FROM (SELECT revision, kind, host, time FROM changes WHERE network = ? AND revision > ? ORDER BY revision DESC LIMIT ?) ORDER BY revision`
	}
	rows, err := tx.QueryContext(ctx, q, network, since, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Change
	for rows.Next() {
		var c store.Change
		var t int64
		if err := rows.Scan(&c.Revision, &c.Kind, &c.Host, &t); err != nil {
			return nil, err
		}
		c.Time = time.Unix(0, t).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// CreateToken implements store.Store.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if t.Network != "" {
			if _, err := networkTx(ctx, tx, t.Network); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, network, host, uses, expires, routes) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.Hash[:], string(t.Kind), t.Network, t.Host, t.Uses, store.UnixNano(t.Expires), store.JoinPrefixes(t.Routes))
		if isConstraint(err) {
			return fmt.Errorf("token: %w", store.ErrExists)
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, t.Network, 0, store.TokenCreated, string(t.Kind)+" "+t.Hash.ID())
	})
}

// FirstAdminToken implements store.Store: BEGIN IMMEDIATE serializes it
// with every other writer of the file.
func (s *Store) FirstAdminToken(ctx context.Context, h store.TokenHash) (bool, error) {
	created := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tokens WHERE kind = ?`, string(store.AdminToken)).Scan(&n); err != nil || n > 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, network, host, uses, expires, routes) VALUES (?, ?, '', '', 0, 0, '')`, h[:], string(store.AdminToken)); err != nil {
			return err
		}
		created = true
		return audit(ctx, tx, "", 0, store.TokenCreated, string(store.AdminToken)+" "+h.ID())
	})
	return created && err == nil, err
}

// RevokeToken implements store.Store.
func (s *Store) RevokeToken(ctx context.Context, h store.TokenHash) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var kind, network string
		err := tx.QueryRowContext(ctx, `SELECT kind, network FROM tokens WHERE hash = ? AND kind IN (?, ?)`,
			h[:], string(store.AdminToken), string(store.EnrollToken)).Scan(&kind, &network)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("token %s: %w", h.ID(), store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if kind == string(store.AdminToken) {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tokens WHERE kind = ?`, string(store.AdminToken)).Scan(&n); err != nil {
				return err
			}
			if n == 1 {
				return fmt.Errorf("token %s: %w: it is the last admin token; create another first", h.ID(), store.ErrInvalid)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE hash = ?`, h[:]); err != nil {
			return err
		}
		return audit(ctx, tx, network, 0, store.TokenRevoked, kind+" "+h.ID())
	})
}

// AdminTokens implements store.Store.
func (s *Store) AdminTokens(ctx context.Context) ([]store.TokenHash, error) {
	var out []store.TokenHash
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT hash FROM tokens WHERE kind = ?`, string(store.AdminToken))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return err
			}
			var h store.TokenHash
			copy(h[:], b)
			out = append(out, h)
		}
		return rows.Err()
	})
	return out, err
}

// LookupToken implements store.Store.
func (s *Store) LookupToken(ctx context.Context, h store.TokenHash) (store.Token, error) {
	t := store.Token{Hash: h}
	err := s.read(ctx, func(tx *sql.Tx) (err error) {
		t, err = tokenTx(ctx, tx, h)
		return err
	})
	return t, err
}

// tokenTx reads the token of hash h in tx (ErrNotFound when there is none).
func tokenTx(ctx context.Context, tx *sql.Tx, h store.TokenHash) (store.Token, error) {
	t := store.Token{Hash: h}
	var kind, routes string
	var exp int64
	err := tx.QueryRowContext(ctx, `SELECT kind, network, host, uses, expires, routes FROM tokens WHERE hash = ?`, h[:]).
		Scan(&kind, &t.Network, &t.Host, &t.Uses, &exp, &routes)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return t, err
	}
	t.Kind = store.TokenKind(kind)
	if exp != 0 {
		t.Expires = time.Unix(0, exp).UTC()
	}
	t.Routes, err = store.SplitPrefixes(routes)
	return t, err
}

// UseToken implements store.Store.
func (s *Store) UseToken(ctx context.Context, h store.TokenHash, now time.Time) (store.Token, error) {
	var t store.Token
	err := s.write(ctx, func(tx *sql.Tx) (err error) {
		t, err = useTokenTx(ctx, tx, h, now)
		return err
	})
	return t, err
}

// useTokenTx checks and consumes one use of an enrollment token in tx.
func useTokenTx(ctx context.Context, tx *sql.Tx, h store.TokenHash, now time.Time) (store.Token, error) {
	t, err := tokenTx(ctx, tx, h)
	switch {
	case err == nil && t.Kind != store.EnrollToken:
		return t, fmt.Errorf("token: %w", store.ErrNotFound)
	case err != nil:
		return t, err
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return t, fmt.Errorf("token: %w", store.ErrTokenExpired)
	case t.Uses <= 0:
		return t, fmt.Errorf("token: %w", store.ErrTokenUsed)
	}
	t.Uses--
	_, err = tx.ExecContext(ctx, `UPDATE tokens SET uses = ? WHERE hash = ?`, t.Uses, h[:])
	return t, err
}

// bump increments the network's revision and logs the change, in tx.
func bump(ctx context.Context, tx *sql.Tx, network string, kind store.ChangeKind, host string) (uint64, error) {
	var rev uint64
	err := tx.QueryRowContext(ctx, `UPDATE networks SET revision = revision + 1 WHERE name = ? RETURNING revision`, network).Scan(&rev)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("network %s: %w", network, store.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return rev, logChange(ctx, tx, network, rev, kind, host)
}

func logChange(ctx context.Context, tx *sql.Tx, network string, rev uint64, kind store.ChangeKind, host string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO changes (network, revision, kind, host, time) VALUES (?, ?, ?, ?, ?)`,
		network, rev, string(kind), host, time.Now().UnixNano())
	return err
}

func setHub(ctx context.Context, tx *sql.Tx, n store.Network) error {
	_, err := tx.ExecContext(ctx, `UPDATE networks SET hub = ? WHERE name = ?`, n.Hub, n.Name)
	return err
}

func insertHost(ctx context.Context, tx *sql.Tx, network string, h store.Host) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO hosts (network, name, public_key, endpoint, routes, keepalive, tags, pending_routes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		network, h.Name, h.PublicKey.String(), h.Endpoint, store.JoinPrefixes(h.Routes), h.Keepalive, strings.Join(store.EditTags(h.Tags, nil, nil), ","), store.JoinPrefixes(h.PendingRoutes))
	if isConstraint(err) {
		return fmt.Errorf("host %s: %w", h.Name, store.ErrConflict)
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE networks SET hosts = hosts + 1 WHERE name = ?`, network); err != nil {
		return err
	}
	if err := setSettings(ctx, tx, network, h, false); err != nil {
		return err
	}
	return insertAddrs(ctx, tx, network, h)
}

// setSettings stores h's Settings; a new host (always false) with none
// keeps the columns' defaults without a statement.
func setSettings(ctx context.Context, tx *sql.Tx, network string, h store.Host, always bool) error {
	st := h.Settings.Store(h.Addresses)
	if !always && st == (store.StoredSettings{}) {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE hosts SET `+store.SettingsUpdate(func(int) string { return "?" }, 1)+` WHERE network = ? AND name = ?`,
		append(st.Args(), network, h.Name)...)
	return err
}

func insertAddrs(ctx context.Context, tx *sql.Tx, network string, h store.Host) error {
	for _, a := range h.Addresses {
		_, err := tx.ExecContext(ctx, `INSERT INTO addresses (network, addr, host) VALUES (?, ?, ?)`, network, a.String(), h.Name)
		if isConstraint(err) {
			return fmt.Errorf("host %s: address %s: %w", h.Name, a, store.ErrConflict)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type scanner interface{ Scan(...any) error }

func scanNetwork(r scanner) (store.Network, error) {
	var n store.Network
	var subnets string
	if err := r.Scan(&n.Name, &subnets, &n.Topology, &n.Hub, &n.Revision, &n.Hosts, &n.Policy); err != nil {
		return n, err
	}
	if len(n.Policy) == 0 {
		n.Policy = nil
	}
	var err error
	n.Subnets, err = store.SplitPrefixes(subnets)
	return n, err
}

func networkTx(ctx context.Context, tx *sql.Tx, name string) (store.Network, error) {
	n, err := scanNetwork(tx.QueryRowContext(ctx, `SELECT name, subnets, topology, hub, revision, hosts, policy FROM networks WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return n, fmt.Errorf("network %s: %w", name, store.ErrNotFound)
	}
	return n, err
}

// snapshotTx reads the network and all its hosts, sorted by name, in tx.
func snapshotTx(ctx context.Context, tx *sql.Tx, network string) (store.Network, []store.Host, error) {
	n, err := networkTx(ctx, tx, network)
	if err != nil {
		return n, nil, err
	}
	hosts, err := hostsTx(ctx, tx, network, "")
	store.MarkHub(n, hosts)
	return n, hosts, err
}

// hostsTx reads the hosts of network matching the SQL condition cond on the
// hosts table ("" for all), sorted by name, with their addresses.
func hostsTx(ctx context.Context, tx *sql.Tx, network, cond string, args ...any) ([]store.Host, error) {
	where := "network = ?"
	if cond != "" {
		where += " AND " + cond
	}
	args = append([]any{network}, args...)
	rows, err := tx.QueryContext(ctx, `SELECT name, public_key, endpoint, routes, keepalive, tags, pending_routes, `+store.SettingsColumns+` FROM hosts WHERE `+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	var hosts []store.Host
	idx := map[string]int{}
	for rows.Next() {
		var h store.Host
		var key, routes, tags, pending string
		var st store.StoredSettings
		if err := rows.Scan(append([]any{&h.Name, &key, &h.Endpoint, &routes, &h.Keepalive, &tags, &pending}, st.Dests()...)...); err != nil {
			rows.Close()
			return nil, err
		}
		if h.Settings, err = st.Settings(); err != nil {
			rows.Close()
			return nil, fmt.Errorf("host %s: %w", h.Name, err)
		}
		h.Tags = store.SplitTags(tags)
		if h.PendingRoutes, err = store.SplitPrefixes(pending); err != nil {
			rows.Close()
			return nil, err
		}
		if h.PublicKey, err = wgkey.ParseKey(key); err != nil {
			rows.Close()
			return nil, fmt.Errorf("host %s: stored key: %w", h.Name, err)
		}
		if h.Routes, err = store.SplitPrefixes(routes); err != nil {
			rows.Close()
			return nil, err
		}
		idx[h.Name] = len(hosts)
		hosts = append(hosts, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	aq := `SELECT host, addr FROM addresses WHERE network = ?`
	aargs := []any{network}
	if cond != "" {
		aq += ` AND host IN (SELECT name FROM hosts WHERE ` + where + `)`
		aargs = append(aargs, args...)
	}
	arows, err := tx.QueryContext(ctx, aq, aargs...)
	if err != nil {
		return nil, err
	}
	defer arows.Close()
	for arows.Next() {
		var host, addr string
		if err := arows.Scan(&host, &addr); err != nil {
			return nil, err
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return nil, fmt.Errorf("host %s: stored address: %w", host, err)
		}
		if i, ok := idx[host]; ok {
			hosts[i].Addresses = append(hosts[i].Addresses, a)
		}
	}
	for i := range hosts {
		slices.SortFunc(hosts[i].Addresses, func(a, b netip.Addr) int { return a.Compare(b) })
	}
	return hosts, arows.Err()
}

// floors is the store.Floors of network n in tx; except is the host whose
// own addresses don't count as taken.
func floors(ctx context.Context, tx *sql.Tx, n store.Network, except string) store.Floors {
	return store.Floors{
		Read: func() (map[string]string, error) {
			var b string
			if err := tx.QueryRowContext(ctx, `SELECT json_group_object(subnet, addr) FROM alloc_floor WHERE network = ?`, n.Name).Scan(&b); err != nil {
				return nil, err
			}
			m := map[string]string{}
			return m, json.Unmarshal([]byte(b), &m)
		},
		Set: func(sub, addr string) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO alloc_floor (network, subnet, addr) VALUES (?, ?, ?)
				ON CONFLICT (network, subnet) DO UPDATE SET addr = excluded.addr`, n.Name, sub, addr)
			return err
		},
		Taken: func(a netip.Addr) (bool, error) {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM addresses WHERE network = ? AND addr = ? AND host != ?`, n.Name, a.String(), except).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return false, nil
			}
			return err == nil, err
		},
	}
}

func sortedHosts(hs []store.Host) []store.Host {
	slices.SortFunc(hs, func(a, b store.Host) int { return strings.Compare(a.Name, b.Name) })
	return hs
}
