package sqlitestore

import (
	"context"
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
// the channel the waiters sleep on.
type notifier struct {
	mu   sync.Mutex // guards the fields below
	revs map[string]uint64
	wake chan struct{}
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

// WaitRevision implements store.Store.
func (s *Store) WaitRevision(ctx context.Context, network string, after uint64) (uint64, error) {
	var seen uint64
	poll := time.NewTimer(0) // read the file first
	defer poll.Stop()
	for {
		known, _, wake := s.note.state(network)
		if known > after {
			return known, nil
		}
		select {
		case <-ctx.Done():
			return seen, ctx.Err()
		case <-wake:
			if _, ok, _ := s.note.state(network); ok {
				continue // a revision of the network: compared above
			}
			// deleted, or a network this process knew nothing of: read the file
		case <-poll.C:
		}
		n, err := s.Network(ctx, network)
		if err != nil {
			return seen, err
		}
		seen = n.Revision
		if seen > after {
			return seen, nil
		}
		poll.Reset(PollInterval)
	}
}
