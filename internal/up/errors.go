package up

import "errors"

// Kinds of refusal, for errors.Is. The errors the package returns say what is
// wrong; what to do about it (`wgnet down X` first) is the command's to say.
var (
	// ErrAlreadyUp: up of an interface that wgnet already brought up.
	ErrAlreadyUp = errors.New("already up")
	// ErrExists: up of an interface that exists but is not wgnet's.
	ErrExists = errors.New("interface exists")
	// ErrNotUp: sync or down of an interface that is not there.
	ErrNotUp = errors.New("not up")
	// ErrNotOurs: down of an interface that another tool made.
	ErrNotOurs = errors.New("not brought up by wgnet")
	// ErrNotRunning: wgnet brought the interface up, but it is gone.
	ErrNotRunning = errors.New("not running")
	// ErrIncomplete: an up that did not finish left its state behind.
	ErrIncomplete = errors.New("up did not finish")
	// ErrPending: a change is waiting for confirmation.
	ErrPending = errors.New("a change is waiting for confirmation")
	// ErrOtherNetns: the state record is of an interface in another network
	// namespace (a shared WGNET_STATE_DIR).
	ErrOtherNetns = errors.New("in another network namespace")

	// errLocked: another wgnet holds the interface's lock.
	errLocked = errors.New("locked")
)

// StateError is a refusal because of the state interface Name is in. Its
// message has no advice; Kind says which refusal it is.
type StateError struct {
	Kind error
	Name string
	// Msg is the message, without advice.
	Msg string
	// State is the interface's state file; LogFile its daemon's log, if any.
	State, LogFile string
}

func (e *StateError) Error() string { return e.Msg }
func (e *StateError) Unwrap() error { return e.Kind }
