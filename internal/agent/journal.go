package agent

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wgnet/wgnet/internal/api"
	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/trust"
)

// The cache of the last good state is a base and a journal. The base,
// StateFile, is a whole Cache (JSON), written atomically; the journal,
// JournalFile, holds records appended after it, each a big-endian uint32
// length, a big-endian uint32 CRC-32C of the payload, and the payload
// (JSON). The first record names the base it follows (journalHead: the
// CRC-32C and size of StateFile's bytes); each next one is a journalEntry,
// the delta from the state before it and the revision followed. A change of
// peers only appends one record (in a mesh of 1,000 a host added is some
// 300 bytes, not the 300 KB of the whole state); a change of anything else,
// a state whose peers are not sorted by name, or a journal grown past the
// base's size writes a new base and a new journal of its head alone.
//
// Loading replays the valid records onto the base. A torn or corrupt record
// (a crash mid-append) ends the replay, with a log line: the state is the
// last one whose record is whole. A journal that names another base (a
// crash between writing a base and its journal) is ignored.

// JournalFile holds the deltas applied after StateFile (0600, like it).
const JournalFile = "state.journal"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// journalHead is the journal's first record: the base it follows.
type journalHead struct {
	BaseCRC  uint32 `json:"base_crc32c"`
	BaseSize int64  `json:"base_size"`
}

// journalEntry is one state after the base: the delta from the one before.
type journalEntry struct {
	Followed uint64         `json:"followed"`
	Delta    api.AgentDelta `json:"delta"`
}

// cacheFiles is what the cache on disk holds: the state base and journal
// make (nil: unknown, the next write is a base), and their sizes.
type cacheFiles struct {
	st               *held
	baseSize, jrSize int64
}

// record frames payload as a journal record.
func record(payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// records returns the whole, valid records at the start of b and where
// they end (len(b) when nothing follows them).
func records(b []byte) (recs [][]byte, end int) {
	for len(b)-end >= 8 {
		n := int64(binary.BigEndian.Uint32(b[end:]))
		if n > int64(len(b)-end-8) {
			break
		}
		p := b[end+8 : end+8+int(n)]
		if crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(b[end+4:]) {
			break
		}
		recs = append(recs, p)
		end += 8 + int(n)
	}
	return recs, end
}

// cacheLocked writes the last good state and the revision followed: one
// journal record when only peers changed since the state the cache holds,
// else a new base.
func (a *Agent) cacheLocked() error {
	if a.applied == nil {
		return nil
	}
	if d := deltaOf(a.cache.st, a.applied); d != nil {
		p, err := json.Marshal(journalEntry{Followed: a.followed, Delta: *d})
		if err != nil {
			return err
		}
		r := record(p)
		if a.cache.jrSize+int64(len(r)) <= a.cache.baseSize {
			err := appendSync(filepath.Join(a.opts.Dir, JournalFile), r)
			if err == nil {
				a.cache.st, a.cache.jrSize = a.applied, a.cache.jrSize+int64(len(r))
				return nil
			}
			a.opts.Log.Warn("state journal not appended: writing the whole state", "err", err)
		}
	}
	return a.writeBase()
}

// writeBase writes the whole state as the base, then a journal that
// follows it.
func (a *Agent) writeBase() error {
	a.cache = cacheFiles{}
	b, err := marshalCache(Cache{State: *a.applied.Flat(), Followed: a.followed})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := atomicfile.Write(filepath.Join(a.opts.Dir, StateFile), b, 0o600, 0o700); err != nil {
		return err
	}
	p, err := json.Marshal(journalHead{BaseCRC: crc32.Checksum(b, castagnoli), BaseSize: int64(len(b))})
	if err != nil {
		return err
	}
	r := record(p)
	if err := atomicfile.Write(filepath.Join(a.opts.Dir, JournalFile), r, 0o600, 0o700); err != nil {
		return err
	}
	a.cache = cacheFiles{st: a.applied, baseSize: int64(len(b)), jrSize: int64(len(r))}
	return nil
}

// appendSync appends b to the existing file path and syncs it.
func appendSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// deltaOf is the delta from old to st when both hold their peers sorted by
// name (so that api.ApplyDelta makes st again, byte for byte once
// marshalled), with st's head when the heads differ (a route approved: in
// every host's head at once); nil otherwise. Only the peers that differ are
// read (diffPeers).
func deltaOf(old, st *held) *api.AgentDelta {
	if old == nil || old.Peers == nil || st.Peers == nil {
		return nil
	}
	d := &api.AgentDelta{From: old.Revision, Revision: st.Revision, URLs: st.URLs}
	if !sameHead(&old.AgentState, &st.AgentState) {
		head := st.AgentState
		head.Peers, head.Revision, head.URLs = nil, 0, nil
		d.Head = &head
	}
	diffPeers(old.Peers, st.Peers, func(o, p *api.Peer) bool {
		if p == nil {
			d.Removed = append(d.Removed, o.Name)
		} else {
			d.Peers = append(d.Peers, *p)
		}
		return true
	})
	return d
}

// sortedPeers reports whether ps is sorted by name, no name twice.
func sortedPeers(ps []api.Peer) bool {
	for i := 1; i < len(ps); i++ {
		if ps[i-1].Name >= ps[i].Name {
			return false
		}
	}
	return true
}

// LoadCache reads the last good state (nil when there is none): the base
// and the journal's valid records replayed onto it.
func LoadCache(dir string) (*Cache, error) {
	st, followed, _, err := loadCache(dir, slog.New(slog.DiscardHandler))
	if st == nil || err != nil {
		return nil, err
	}
	return &Cache{State: *st.Flat(), Followed: followed}, nil
}

// loadCache is LoadCache, the state held (the journal's records replayed
// sharing the peers they do not name), and what the files hold when the
// next change can be appended to them (a clean journal; zero otherwise).
// What it ignores it says in log.
func loadCache(dir string, log *slog.Logger) (*held, uint64, cacheFiles, error) {
	path := filepath.Join(dir, StateFile)
	b, err := readTrusted(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, cacheFiles{}, nil
	}
	if err != nil {
		return nil, 0, cacheFiles{}, err
	}
	var c Cache
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, 0, cacheFiles{}, fmt.Errorf("%s: %w", path, err)
	}
	st := hold(&c.State)
	jpath := filepath.Join(dir, JournalFile)
	jb, err := readTrusted(jpath)
	if errors.Is(err, fs.ErrNotExist) {
		return st, c.Followed, cacheFiles{}, nil // a cache of a release without the journal
	}
	if err != nil {
		return nil, 0, cacheFiles{}, err
	}
	recs, end := records(jb)
	var head journalHead
	if len(recs) == 0 || json.Unmarshal(recs[0], &head) != nil || head.BaseCRC != crc32.Checksum(b, castagnoli) || head.BaseSize != int64(len(b)) {
		log.Warn("state journal does not follow the cached state: ignored", "file", jpath)
		return st, c.Followed, cacheFiles{}, nil
	}
	for k, p := range recs[1:] {
		var e journalEntry
		err := json.Unmarshal(p, &e)
		var next *held
		if err == nil {
			next, err = st.apply(&e.Delta)
		}
		if err != nil {
			log.Warn("state journal record not applicable: the records from it on are ignored", "file", jpath, "record", k+1, "err", err)
			return st, c.Followed, cacheFiles{}, nil
		}
		st, c.Followed = next, e.Followed
	}
	if end < len(jb) {
		log.Warn("state journal ends in a torn or corrupt record (a crash mid-write?): ignored", "file", jpath, "offset", end, "bytes", len(jb)-end)
		return st, c.Followed, cacheFiles{}, nil
	}
	return st, c.Followed, cacheFiles{st: st, baseSize: int64(len(b)), jrSize: int64(len(jb))}, nil
}

// readTrusted reads a file the agent wrote, refusing one others could have changed.
func readTrusted(path string) ([]byte, error) {
	if err := trust.Path(path); err != nil {
		return nil, err
	}
	return trust.ReadFile(path)
}
