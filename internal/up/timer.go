package up

import (
	"context"
	"sync"
)

// Timer rolls a pending change back at its deadline unless it is confirmed
// first (its pending file goes). ProcessTimer is the CLI's: a detached process
// that survives the session the change may cut. GoroutineTimer runs in this
// process, for tests and a long-running agent.
type Timer interface {
	// Arm starts the timer of p, whose pending file is in stateDir. It returns the
	// timer's PID, or 0 when it is not a process of its own.
	Arm(p *Pending, stateDir string) (int, error)
	// Disarm stops the timer of p without rolling back: the change stays pending.
	// A confirmed change needs no Disarm (its timer sees the pending file gone).
	Disarm(p *Pending) error
}

// ProcessTimer is the detached TimerCommand process (see spawnTimer).
type ProcessTimer struct{}

// Arm implements Timer.
func (ProcessTimer) Arm(p *Pending, stateDir string) (int, error) { return spawnTimer(p, stateDir) }

// Disarm implements Timer; the process exits by itself once the pending file
// goes, and is not signalled.
func (ProcessTimer) Disarm(*Pending) error { return nil }

// GoroutineTimer runs RunTimer in a goroutine of this process with Options. Its
// goroutines stop on Disarm or Close; Close waits for them.
type GoroutineTimer struct {
	Options SyncOptions

	mu      sync.Mutex // guards cancels
	cancels map[string]context.CancelFunc
	wg      sync.WaitGroup
	// Errs receives RunTimer's errors when not nil.
	Errs chan<- error
}

// Arm implements Timer.
func (g *GoroutineTimer) Arm(p *Pending, stateDir string) (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	g.mu.Lock()
	if g.cancels == nil {
		g.cancels = map[string]context.CancelFunc{}
	}
	g.cancels[p.ID] = cancel
	g.mu.Unlock()
	opts := g.Options
	opts.StateDir = stateDir
	name, id := p.Name, p.ID
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer g.drop(id)
		if err := RunTimer(ctx, name, id, opts); err != nil && g.Errs != nil {
			g.Errs <- err
		}
	}()
	return 0, nil
}

func (g *GoroutineTimer) drop(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.cancels[id]; ok {
		c()
		delete(g.cancels, id)
	}
}

// Disarm implements Timer.
func (g *GoroutineTimer) Disarm(p *Pending) error {
	g.drop(p.ID)
	return nil
}

// Close stops every timer and waits for them.
func (g *GoroutineTimer) Close() error {
	g.mu.Lock()
	for id, c := range g.cancels {
		c()
		delete(g.cancels, id)
	}
	g.mu.Unlock()
	g.wg.Wait()
	return nil
}
