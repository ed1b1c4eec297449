//go:build !unix

package up

import (
	"errors"
	"time"
)

var errNoTimer = errors.New("changes with a confirmation deadline need a Unix system")

func lockInterface(dir, name string) (func(), error) { return func() {}, nil }

func lockWithin(dir, name string, wait time.Duration) (func(), error) { return func() {}, nil }

func spawnTimer(p *Pending, stateDir string) (int, error) { return 0, errNoTimer }

func timerAlive(pid int, id string) bool { return false }
