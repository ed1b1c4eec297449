package up

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wgnet/wgnet/internal/atomicfile"
)

// Outcome is what became of the last change made with a confirmation deadline
// that left nothing waiting for `wgnet confirm`: it changed nothing, or it was
// rolled back (by its timer, by `confirm --rollback`, or by the next command
// after its timer died). It is kept in StateDir/NAME.outcome so that a confirm
// after it can tell "nothing to confirm" from "too late", which fleet scripts
// that always confirm need. A new change, a confirm and down remove it.
type Outcome struct {
	Kind    string    `json:"kind"`    // OutcomeNoChange or OutcomeRolledBack
	Command string    `json:"command"` // "up" or "sync"
	At      time.Time `json:"at"`
}

// Kinds of Outcome.
const (
	OutcomeNoChange   = "no-change"
	OutcomeRolledBack = "rolled-back"
)

func outcomePath(dir, name string) string { return filepath.Join(dir, name+".outcome") }

// saveOutcome records o as the last outcome of interface name.
func saveOutcome(dir, name string, o Outcome) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return atomicfile.Write(outcomePath(dir, name), append(b, '\n'), 0o600, 0o700)
}

// dropOutcome forgets the last outcome of interface name.
func dropOutcome(dir, name string) error {
	if err := os.Remove(outcomePath(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// LastOutcome returns the last outcome of interface name (see Outcome), or an
// error wrapping os.ErrNotExist when there is none. dir "" means
// NetnsStateDir().
func LastOutcome(dir, name string) (*Outcome, error) {
	if dir == "" {
		dir = NetnsStateDir()
	}
	b, err := readStateFile(dir, outcomePath(dir, name))
	if err != nil {
		return nil, fmt.Errorf("last outcome of %s: %w", name, err)
	}
	var o Outcome
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("%s: %w", outcomePath(dir, name), err)
	}
	return &o, nil
}
