package sqlitestore

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"time"
)

// PollInterval is how often a WaitRevision reads the database while it waits,
// to see the changes of another process on the same file (changes of this
// process wake it at once).
var PollInterval = time.Second

// notifier wakes the WaitRevision calls of every Store of one process on one
// database file: a writer publishes each revision it committed, and closes
// the channel the waiters sleep on. While anyone waits, one poller reads every
// network's revision each PollInterval, to see the commits of other processes
// (one query for all the waiters, not one each).
type notifier struct {
	mu      sync.Mutex // guards the fields below
	revs    map[string]uint64
	wake    chan struct{}
	waiters int
	polling bool
}

var (
	notifiersMu sync.Mutex // guards notifiers
	notifiers   = map[string]*notifier{}
)

// notifierFor returns the process's notifier of the database file at path.
func notifierFor(path string) *notifier {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	notifiersMu.Lock()
	defer notifiersMu.Unlock()
	n, ok := notifiers[path]
	if !ok {
		n = &notifier{revs: map[string]uint64{}, wake: make(chan struct{})}
		notifiers[path] = n
	}
	return n
}

// state returns the revision last published for network, whether one was
// (none since the network was deleted, or since this process opened the
// file), and the channel closed at the next publication.
func (n *notifier) state(network string) (uint64, bool, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rev, ok := n.revs[network]
	return rev, ok, n.wake
}

// publish records committed revisions (0: the network was deleted) and
// wakes every waiter.
func (n *notifier) publish(revs map[string]uint64) {
	if len(revs) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for net, rev := range revs {
		if rev == 0 {
			delete(n.revs, net)
		} else if rev > n.revs[net] {
			n.revs[net] = rev
		}
	}
	close(n.wake)
	n.wake = make(chan struct{})
}

// committed notes, inside a writing transaction, that network's revision is
// now rev (0: deleted); write publishes it after the commit. Writes of one
// Store run one at a time (one connection), so pending needs no lock of its own.
func (s *Store) committed(network string, rev uint64) {
	if s.pending == nil {
		s.pending = map[string]uint64{}
	}
	s.pending[network] = rev
}

// WaitRevision implements store.Store. It looks at the revision this process
// last saw published (a commit of its own, or the poller's reading of the
// file), and reads the file only for a network it has seen nothing of; then
// it sleeps until the next publication.
func (s *Store) WaitRevision(ctx context.Context, network string, after uint64) (uint64, error) {
	s.note.enter(s)
	defer s.note.leave()
	for {
		known, ok, wake := s.note.state(network)
		if !ok {
			n, err := s.Network(ctx, network)
			if err != nil {
				return 0, err
			}
			known = n.Revision
		}
		if known > after {
			return known, nil
		}
		select {
		case <-ctx.Done():
			return known, ctx.Err()
		case <-wake:
		}
	}
}

// enter counts a waiter and starts the poller when none runs.
func (n *notifier) enter(s *Store) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.waiters++
	if !n.polling {
		n.polling = true
		go n.poll(s)
	}
}

func (n *notifier) leave() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.waiters--
}

// poll reads every network's revision each PollInterval while anyone waits,
// and publishes what changed (networks gone as deleted). It stops when the
// last waiter has left.
func (n *notifier) poll(s *Store) {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for range t.C {
		n.mu.Lock()
		if n.waiters == 0 {
			n.polling = false
			n.mu.Unlock()
			return
		}
		n.mu.Unlock()
		revs, err := s.revisions()
		if err != nil {
			continue // a closed store: its waiters fail on their own reads
		}
		changed := map[string]uint64{}
		n.mu.Lock()
		for net, rev := range revs {
			if rev > n.revs[net] {
				changed[net] = rev
			}
		}
		for net := range n.revs {
			if _, ok := revs[net]; !ok {
				changed[net] = 0
			}
		}
		n.mu.Unlock()
		n.publish(changed)
	}
}

// revisions reads every network's revision in one query.
func (s *Store) revisions() (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), PollInterval)
	defer cancel()
	out := map[string]uint64{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name, revision FROM networks`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var rev uint64
			if err := rows.Scan(&name, &rev); err != nil {
				return err
			}
			out[name] = rev
		}
		return rows.Err()
	})
	return out, err
}
