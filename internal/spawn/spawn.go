package spawn

import "time"

// ReadyEnv names the environment variable that tells a child started by Start
// which file descriptor is its ready pipe.
const ReadyEnv = "WGNET_READY_FD"

// Options configure Start.
type Options struct {
	// Argv is the command line; Argv[0] is the executable.
	Argv []string
	// LogFile receives the child's stdout and stderr (appended, created 0600);
	// "" means /dev/null.
	LogFile string
	// NewSession puts the child in a session of its own (setsid: no controlling
	// terminal, so a hang-up of the caller's session does not reach it). Without
	// it the child gets a process group of its own in the caller's session,
	// which keeps it in the caller's scheduler autogroup (see device.Spawn).
	NewSession bool
	// Timeout bounds the wait for "ready"; 0 means 10 seconds.
	Timeout time.Duration
}

// Match says whether a command line (argv) is the process the caller
// started: its subcommand and the token (interface name, timer ID) it was
// given. A recycled PID runs something else and does not match.
type Match func(argv []string) bool
