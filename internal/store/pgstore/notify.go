package pgstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Reread is how often the follower reads every network's revision even
// without a notification: a safety net for a wake-up lost on the way (a
// proxy that drops notifications); a missed NOTIFY costs at most this delay.
var Reread = 10 * time.Second

// follower follows the change log of every network for one Store: on a
// dedicated connection, outside the pool and any transaction, it LISTENs on
// Channel; a notification ("NETWORK REVISION", "NETWORK 0" for a deleted
// network) is only a wake-up: the follower then reads the network's change
// log from the last revision it knows, and on every (re)connection it reads
// every network's revision, so a notification missed while disconnected loses
// nothing. Each time it learns a revision it wakes the waiters.
type follower struct {
	cfg *pgx.ConnConfig

	mu        sync.Mutex // guards the fields below
	revs      map[string]uint64
	wake      chan struct{}
	listening chan struct{} // closed once the first LISTEN is in place
	reconnect int           // connections made (the first one included)
	err       error         // the last connection error, nil while listening

	cancel context.CancelFunc
	done   chan struct{}
}

func newFollower(cfg *pgxpool.Config) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cfg: cfg.ConnConfig.Copy(), revs: map[string]uint64{}, wake: make(chan struct{}),
		listening: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go f.run(ctx)
	return f
}

func (f *follower) close() {
	f.cancel()
	<-f.done
}

// state returns the revision known for network, whether one is, and the
// channel closed at the next thing learnt.
func (f *follower) state(network string) (uint64, bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rev, ok := f.revs[network]
	return rev, ok, f.wake
}

// learn records revisions (0: the network is gone); all replaces what is
// known (a read of every network). It wakes every waiter.
func (f *follower) learn(revs map[string]uint64, all bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if all {
		f.revs = map[string]uint64{}
	}
	for n, rev := range revs {
		if rev == 0 {
			delete(f.revs, n)
		} else if rev > f.revs[n] {
			f.revs[n] = rev
		}
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *follower) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// Listening reports whether the follower's connection is up, and how many
// connections it has made.
func (f *follower) status() (bool, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err == nil && f.reconnect > 0, f.reconnect, f.err
}

func (f *follower) run(ctx context.Context) {
	defer close(f.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := f.session(ctx)
		if ctx.Err() != nil {
			return
		}
		f.setErr(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session is one connection: LISTEN, read everything, then follow.
func (f *follower) session(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, f.cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+Channel); err != nil {
		return err
	}
	f.mu.Lock()
	f.reconnect++
	f.err = nil
	f.mu.Unlock()
	// Everything committed before LISTEN is read here, everything after it
	// is notified: nothing falls between.
	if err := f.readAll(ctx, conn); err != nil {
		return err
	}
	f.mu.Lock()
	select {
	case <-f.listening:
	default:
		close(f.listening)
	}
	f.mu.Unlock()
	for {
		wctx, cancel := context.WithTimeout(ctx, Reread)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if err := f.readChanges(ctx, conn, n.Payload); err != nil {
				return err
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			if err := f.readAll(ctx, conn); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// readAll reads every network's revision.
func (f *follower) readAll(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT name, revision FROM networks`)
	if err != nil {
		return err
	}
	revs := map[string]uint64{}
	var name string
	var rev int64
	_, err = pgx.ForEachRow(rows, []any{&name, &rev}, func() error {
		revs[name] = uint64(rev)
		return nil
	})
	if err != nil {
		return err
	}
	f.learn(revs, true)
	return nil
}

// readChanges reads the change log of the network a notification names,
// after the last revision known: the payload's revision is only a hint.
func (f *follower) readChanges(ctx context.Context, conn *pgx.Conn, payload string) error {
	network, hint, ok := strings.Cut(payload, " ")
	if !ok {
		return nil
	}
	if r, err := strconv.ParseUint(hint, 10, 64); err == nil && r == 0 {
		f.learn(map[string]uint64{network: 0}, false)
		return nil
	}
	known, _, _ := f.state(network)
	var rev *int64
	err := conn.QueryRow(ctx, `SELECT max(revision) FROM changes WHERE network = $1 AND revision > $2`, network, int64(known)).Scan(&rev)
	if err != nil {
		return err
	}
	if rev != nil {
		f.learn(map[string]uint64{network: uint64(*rev)}, false)
	}
	return nil
}

// WaitRevision implements store.Store with LISTEN/NOTIFY: a waiter holds no
// connection; it reads the network once (after the follower listens, so no
// commit falls between) and then sleeps until the follower learns something.
func (s *Store) WaitRevision(ctx context.Context, network string, after uint64) (uint64, error) {
	f := s.follow
	select {
	case <-f.listening:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	var seen uint64
	read := true
	for {
		known, ok, wake := f.state(network)
		if known > after {
			return known, nil
		}
		if read || !ok {
			// First time, or a network the follower does not know (new to
			// it, or deleted): the database says.
			n, err := s.Network(ctx, network)
			if err != nil {
				return seen, err
			}
			if seen = n.Revision; seen > after {
				return seen, nil
			}
			read = false
		}
		select {
		case <-ctx.Done():
			return seen, ctx.Err()
		case <-wake:
		}
	}
}

// Following reports whether the store's change follower is connected and
// listening, how many connections it has made, and its last error.
func (s *Store) Following() (bool, int, error) { return s.follow.status() }
