//go:build !linux

package spawn

import (
	"errors"
	"time"
)

var errUnsupported = errors.New("spawn: background processes need Linux")

// Start is not supported here.
func Start(Options) (int, error) { return 0, errUnsupported }

// Ready does nothing here.
func Ready() error { return nil }

// Alive is always false here.
func Alive(int, Match) bool { return false }

// Stop is not supported here.
func Stop(int, Match, time.Duration) error { return errUnsupported }

// WritePIDFile is not supported here.
func WritePIDFile(string, int) error { return errUnsupported }

// ReadPIDFile is not supported here.
func ReadPIDFile(string) (int, error) { return 0, errUnsupported }
