package up

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/device"
	"github.com/wgnet/wgnet/internal/spawn"
)

// A change made with a confirmation deadline (`wgnet up --confirm` or `wgnet sync
// --confirm`, like `netplan try` or Junos `commit confirmed`) goes like this:
//
//  1. The interface as it is (read back from the system: keys, peers with the
//     endpoints they roamed to, addresses, routes, sysctls, firewall) and the state
//     file as it is are saved in StateDir/NAME.pending (0600).
//  2. A timer process is started: this executable again (TimerCommand), in a new
//     session, so that it survives the terminal or SSH session the change may cut.
//  3. The change is applied; the deadline is set to now + DURATION.
//  4. `wgnet confirm NAME` removes the pending file; the timer, which polls it,
//     exits. Otherwise,
//     at the deadline, the timer restores the saved interface and state file (for
//     up: takes the interface down) and removes the pending file.
//
// While a change is pending, Sync and TryUp refuse another one. Every step takes
// the interface's lock (StateDir/NAME.lock), so a confirmation and a rollback
// never run at once.

// TimerCommand is the hidden subcommand that runs RunTimer:
// `wgnet _confirm-timer --state-dir DIR --id ID NAME`.
const TimerCommand = "_confirm-timer"

// Confirm makes a change provisional.
type Confirm struct {
	// Within is how long `wgnet confirm NAME` has to keep the change; 0 means no
	// confirmation is asked for.
	Within time.Duration
	// Spawn starts the detached process that runs RunTimer for p and returns its
	// PID; nil means this executable as TimerCommand, in a new session, logging to
	// StateDir/NAME.confirm.log. A PID of 0 means no process (tests).
	//
	// Deprecated: set Timer.
	Spawn func(p *Pending, stateDir string) (int, error)
	// Timer runs the rollback at the deadline; nil means Spawn, else
	// ProcessTimer.
	Timer Timer
}

// Pending is a change waiting for confirmation.
type Pending struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	// ID names the timer process, so that a timer never acts on a later change.
	ID string `json:"id"`
	// Command is "up" or "sync": a pending up is rolled back by taking the
	// interface down, a pending sync by restoring what it changed.
	Command  string    `json:"command"`
	Created  time.Time `json:"created"`
	Deadline time.Time `json:"deadline"`
	TimerPID int       `json:"timer_pid,omitempty"`
	// Armed is set once the timer runs. A change that is not armed when the next
	// command takes the lock was cut short, and nothing would roll it back.
	Armed bool `json:"armed,omitempty"`
	// RollbackError is set when the timer tried to roll back and failed; the
	// pending file then stays, for `wgnet confirm --rollback` to try again.
	RollbackError string `json:"rollback_error,omitempty"`
}

// pendingFile is what StateDir/NAME.pending holds.
type pendingFile struct {
	Pending
	// Previous is the interface before a sync (nil for up).
	Previous *snapshot `json:"previous,omitempty"`
	// PreviousState is the state file before the change; nil when there was none.
	PreviousState *State `json:"previous_state,omitempty"`
	// Started identifies the interface the change was made to (its state's
	// Started), set once the change is made: an interface taken down and brought
	// up again since is another one, and is left alone.
	Started time.Time `json:"interface_started,omitzero"`
}

// ErrNoPending is returned (wrapped) when no change is waiting for confirmation.
var ErrNoPending = errors.New("no change waiting for confirmation")

const pendingVersion = 1

func pendingPath(dir, name string) string { return filepath.Join(dir, name+".pending") }

// TimerLog is the log file of the timer of interface name.
func TimerLog(dir, name string) string { return filepath.Join(dir, name+".confirm.log") }

func (pf *pendingFile) save(dir string) error {
	b, err := json.MarshalIndent(pf, "", "  ")
	if err != nil {
		return fmt.Errorf("pending change of %s: %w", pf.Name, err)
	}
	return atomicfile.Write(pendingPath(dir, pf.Name), append(b, '\n'), 0o600, 0o700)
}

func loadPendingFile(dir, name string) (*pendingFile, error) {
	b, err := os.ReadFile(pendingPath(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, ErrNoPending)
	}
	if err != nil {
		return nil, err
	}
	var pf pendingFile
	if err := json.Unmarshal(b, &pf); err != nil {
		return nil, fmt.Errorf("%s: %w", pendingPath(dir, name), err)
	}
	if pf.Version != pendingVersion || pf.Name != name {
		return nil, fmt.Errorf("%s: version %d for %q, this wgnet reads version %d", pendingPath(dir, name), pf.Version, pf.Name, pendingVersion)
	}
	return &pf, nil
}

// LoadPending returns the change of interface name waiting for confirmation, or
// an error wrapping ErrNoPending. dir "" means NetnsStateDir().
func LoadPending(dir, name string) (*Pending, error) {
	if dir == "" {
		dir = NetnsStateDir()
	}
	pf, err := loadPendingFile(dir, name)
	if err != nil {
		return nil, err
	}
	return &pf.Pending, nil
}

// pendingGrace is how long past its deadline a change may stay pending before
// the next command stops waiting for its timer: a live timer takes the lock
// within a poll of the deadline.
const pendingGrace = 5 * time.Second

// orphaned says why nothing will settle pf by itself (its timer never started,
// is gone, or let the deadline pass), or "" when its timer will.
func (pf *pendingFile) orphaned(now time.Time) string {
	switch {
	case !pf.Armed:
		return "the command that made it stopped before its timer started"
	case pf.TimerPID != 0 && !timerAlive(pf.TimerPID, pf.ID):
		return fmt.Sprintf("its timer (pid %d) is not running", pf.TimerPID)
	case now.After(pf.Deadline.Add(pendingGrace)):
		return fmt.Sprintf("its deadline %s passed without a rollback", pf.Deadline.Local().Format(time.TimeOnly))
	}
	return ""
}

// recoverPending settles a change of name left pending with nothing to settle
// it (see orphaned): it rolls it back, as its timer would have, and says so.
// A change whose timer still runs, or whose rollback failed before, is refused
// with a StateError of kind ErrPending. The caller holds the interface's lock.
func recoverPending(ctx context.Context, opts *SyncOptions, name string) error {
	dir := opts.StateDir
	pf, err := loadPendingFile(dir, name)
	if errors.Is(err, ErrNoPending) {
		return nil
	}
	if err != nil {
		return err
	}
	refuse := func(msg string, a ...any) error {
		return &StateError{Kind: ErrPending, Name: name, State: pendingPath(dir, name), LogFile: TimerLog(dir, name), Msg: fmt.Sprintf(msg, a...)}
	}
	if pf.RollbackError != "" {
		return refuse("%s: a change by `wgnet %s` is waiting for confirmation: rolling it back failed: %s", name, pf.Command, pf.RollbackError)
	}
	why := pf.orphaned(time.Now())
	if why == "" {
		return refuse("%s: a change by `wgnet %s` at %s is waiting for confirmation; it is rolled back at %s unless confirmed",
			name, pf.Command, pf.Created.Local().Format(time.TimeOnly), pf.Deadline.Local().Format(time.TimeOnly))
	}
	opts.logf("%s: the change by `wgnet %s` at %s was not confirmed and %s: rolling it back now", name, pf.Command, pf.Created.Local().Format(time.TimeOnly), why)
	if err := rollbackLocked(ctx, opts, pf); err != nil {
		return refuse("%s: a change by `wgnet %s` is waiting for confirmation (%s): %v", name, pf.Command, why, err)
	}
	return nil
}

// crashEnv names a step at which the process kills itself (SIGKILL, no
// cleanup), for tests of what the next command makes of a change cut short:
// WGNET_TEST_CRASH_AT=pending-saved stops a --confirm change right after its
// pending file is written and before its timer starts. Only tests set it.
const crashEnv = "WGNET_TEST_CRASH_AT"

// crashAt kills this process when crashEnv names step.
func crashAt(step string) {
	if os.Getenv(crashEnv) != step {
		return
	}
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
		select {} // until the signal lands
	}
}

// startPending saves the state to go back to and starts the timer. The deadline
// is provisional (now + Within) until armPending: if the process making the change
// dies half-way, the timer still rolls back.
func startPending(opts *SyncOptions, command, name string, prev *snapshot, prevState *State) (*pendingFile, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	if err := dropOutcome(opts.StateDir, name); err != nil {
		return nil, err
	}
	now := time.Now()
	pf := &pendingFile{
		Pending: Pending{
			Version:  pendingVersion,
			Name:     name,
			ID:       hex.EncodeToString(id[:]),
			Command:  command,
			Created:  now.UTC().Truncate(time.Second),
			Deadline: now.Add(opts.Confirm.Within).UTC(),
		},
		Previous:      prev,
		PreviousState: prevState,
	}
	dir := opts.StateDir
	if err := pf.save(dir); err != nil {
		return nil, err
	}
	crashAt("pending-saved")
	var pid int
	var err error
	switch {
	case opts.Confirm.Timer != nil:
		pid, err = opts.Confirm.Timer.Arm(&pf.Pending, dir)
	case opts.Confirm.Spawn != nil:
		pid, err = opts.Confirm.Spawn(&pf.Pending, dir)
	default:
		pid, err = ProcessTimer{}.Arm(&pf.Pending, dir)
	}
	if err != nil {
		_ = os.Remove(pendingPath(dir, name))
		return nil, fmt.Errorf("%s: start the confirmation timer: %w", name, err)
	}
	pf.TimerPID, pf.Armed = pid, true
	if err := pf.save(dir); err != nil {
		_ = os.Remove(pendingPath(dir, name)) // the timer sees it gone and exits
		return nil, err
	}
	opts.logf("%s: the change is undone at the deadline unless `wgnet confirm %s` runs (timer pid %d, log %s)", name, name, pid, TimerLog(dir, name))
	return pf, nil
}

// armPending starts the confirmation window now that the change is made to the
// interface whose state is st.
func armPending(opts *SyncOptions, pf *pendingFile, st *State) error {
	pf.Deadline = time.Now().Add(opts.Confirm.Within).UTC()
	pf.Started = st.Started
	return pf.save(opts.StateDir)
}

// sameInterface reports whether the interface is still the one pf's change was
// made to (when the change got that far).
func sameInterface(opts *SyncOptions, pf *pendingFile) (bool, error) {
	if pf.Started.IsZero() {
		return true, nil // the process making the change died half-way
	}
	cur, err := LoadState(opts.StateDir, pf.Name)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return cur.Started.Equal(pf.Started), nil
}

// cancelPending drops a pending change: kept, or failed and undone. The timer
// sees its pending file gone within a poll and exits.
func cancelPending(opts *SyncOptions, pf *pendingFile) error {
	if err := os.Remove(pendingPath(opts.StateDir, pf.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return dropOutcome(opts.StateDir, pf.Name)
}

// lockPending takes interface name's lock and reads the change waiting for
// confirmation; the caller runs unlock when done.
func lockPending(dir, name string) (unlock func(), pf *pendingFile, err error) {
	unlock, err = lockInterface(dir, name)
	if err != nil {
		return nil, nil, err
	}
	if pf, err = loadPendingFile(dir, name); err != nil {
		unlock()
		return nil, nil, err
	}
	return unlock, pf, nil
}

// ConfirmChange keeps the change of interface name that is waiting for
// confirmation: the pending file goes, and the timer exits.
func ConfirmChange(name string, opts SyncOptions) (*Pending, error) {
	opts.defaults()
	unlock, pf, err := lockPending(opts.StateDir, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if why := pf.orphaned(time.Now()); why != "" {
		opts.logf("%s: the change by `wgnet %s` at %s was waiting for confirmation, but %s; keeping it", name, pf.Command, pf.Created.Local().Format(time.TimeOnly), why)
	}
	if err := cancelPending(&opts, pf); err != nil {
		return nil, err
	}
	return &pf.Pending, nil
}

// Rollback undoes the change of interface name that is waiting for confirmation,
// now: what the timer does at the deadline.
func Rollback(ctx context.Context, name string, opts SyncOptions) (*Pending, error) {
	opts.defaults()
	unlock, pf, err := lockPending(opts.StateDir, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := rollbackLocked(ctx, &opts, pf); err != nil {
		return &pf.Pending, err
	}
	return &pf.Pending, nil
}

// rollbackLocked undoes pf's change; the caller holds the interface's lock. On
// success the pending file goes; on failure it stays, with the error in it.
func rollbackLocked(ctx context.Context, opts *SyncOptions, pf *pendingFile) error {
	name, dir := pf.Name, opts.StateDir
	same, err := sameInterface(opts, pf)
	if err != nil {
		return fmt.Errorf("roll back %s: %w", name, err)
	}
	if !same {
		opts.logf("%s was taken down (or down and up again) since the change by `wgnet %s`; nothing to roll back", name, pf.Command)
		if err := os.Remove(pendingPath(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	switch pf.Command {
	case "up":
		if _, serr := LoadState(dir, name); errors.Is(serr, os.ErrNotExist) {
			opts.logf("%s is not up; nothing to undo", name)
			break
		}
		opts.logf("rolling back `wgnet up %s`: taking it down", name)
		err = downLocked(ctx, name, &opts.Options)
	case "sync":
		err = rollbackSync(opts, pf)
	default:
		err = fmt.Errorf("unknown command %q", pf.Command)
	}
	if err != nil {
		pf.RollbackError = err.Error()
		if serr := pf.save(dir); serr != nil {
			err = errors.Join(err, serr)
		}
		return fmt.Errorf("roll back %s: %w", name, err)
	}
	if err := os.Remove(pendingPath(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return saveOutcome(dir, name, Outcome{Kind: OutcomeRolledBack, Command: pf.Command, At: time.Now().UTC().Truncate(time.Second)})
}

func rollbackSync(opts *SyncOptions, pf *pendingFile) error {
	name, dir := pf.Name, opts.StateDir
	if pf.Previous == nil {
		return errors.New("the pending file has no saved interface")
	}
	opts.logf("rolling back `wgnet sync %s`: restoring the interface as it was at %s", name, pf.Created.Local().Format(time.TimeOnly))
	cur, err := LoadState(dir, name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var names map[string]string
	if cur != nil {
		names = cur.Peers
	}
	sc := newScope(name, pf.Previous.target(name), cur)
	kept, err := restoreSnapshot(opts, name, pf.Previous, sc, names)
	if err != nil {
		if errors.Is(err, device.ErrNotFound) {
			opts.logf("%s is gone; nothing to restore", name)
			return removeState(dir, name)
		}
		return err
	}
	if pf.PreviousState == nil {
		return removeState(dir, name)
	}
	// The record from before the change, but for what the rollback leaves
	// set (src_valid_mark), which down then reports as it would after up.
	keepAlso(pf.PreviousState, kept)
	return pf.PreviousState.save(dir)
}

// RunTimer is the body of the timer process of a pending change: it waits for the
// deadline, then rolls the change back, unless the change is confirmed first (its
// pending file goes, or names another timer). It re-reads the deadline as it
// goes, so the process making the change can extend it. When ctx ends first
// (SIGTERM) it exits and the change stays pending.
func RunTimer(ctx context.Context, name, id string, opts SyncOptions) error {
	opts.defaults()
	if err := spawn.Ready(); err != nil {
		// The process that started the timer died before it read "ready" (EPIPE):
		// the change it was making is still pending, and this timer is all that
		// can undo it.
		opts.logf("%s: timer %s: %v; running on", name, id, err)
	}
	dir := opts.StateDir
	mine := func(pf *pendingFile) bool { return pf.ID == id && pf.RollbackError == "" }
	for {
		pf, err := loadPendingFile(dir, name)
		if errors.Is(err, ErrNoPending) || (err == nil && !mine(pf)) {
			opts.logf("%s: the change was confirmed (or undone); timer %s exits", name, id)
			return nil
		}
		if err != nil {
			return err
		}
		if wait := time.Until(pf.Deadline); wait > 0 {
			select {
			case <-ctx.Done():
				opts.logf("%s: timer %s stopped before the deadline; the change stays pending", name, id)
				return nil
			case <-time.After(min(wait, 250*time.Millisecond)):
			}
			continue
		}
		unlock, err := lockInterface(dir, name)
		if err != nil {
			return err
		}
		pf, err = loadPendingFile(dir, name)
		if err != nil || !mine(pf) || time.Until(pf.Deadline) > 0 {
			unlock()
			continue
		}
		opts.logf("%s: not confirmed by %s: rolling back", name, pf.Deadline.Local().Format(time.TimeOnly))
		err = rollbackLocked(context.WithoutCancel(ctx), &opts, pf)
		unlock()
		if err != nil {
			return err
		}
		opts.logf("%s: rolled back", name)
		return nil
	}
}

// TryUp is Up with a way back: unless ConfirmChange runs within opts.Confirm.Within,
// a detached timer takes the interface down again.
func TryUp(ctx context.Context, req Request, opts SyncOptions) (*State, *Pending, error) {
	opts.defaults()
	if opts.Confirm.Within <= 0 {
		return nil, nil, errors.New("TryUp needs a confirmation time")
	}
	unlock, err := lockForChange(ctx, &opts, req.Name)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	st, pend, _, err := tryUpLocked(ctx, req, &opts)
	return st, pend, err
}

// tryUpLocked is TryUp with the lock held and no change pending.
func tryUpLocked(ctx context.Context, req Request, opts *SyncOptions) (*State, *Pending, *Plan, error) {
	if _, err := makePlan(ctx, req, &opts.Options); err != nil {
		return nil, nil, nil, err
	}
	pf, err := startPending(opts, "up", req.Name, nil, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	st, plan, err := upLocked(ctx, req, opts)
	if err != nil {
		if cerr := cancelPending(opts, pf); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, nil, nil, err
	}
	if err := armPending(opts, pf, st); err != nil {
		return st, &pf.Pending, plan, err
	}
	return st, &pf.Pending, plan, nil
}
