package lab

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Display shows a lab's progress Events. Live, it keeps one status line that it
// rewrites in place (for a terminal); otherwise it prints plain lines, one per
// step that matters, fit for logs and pipes.
type Display struct {
	w    io.Writer
	live bool

	mu        sync.Mutex // guards the fields below
	up        []string
	sessions  Event
	probes    Event
	lineShown bool
	plainDone map[EventKind]bool
}

// NewDisplay returns a Display writing to w.
func NewDisplay(w io.Writer, live bool) *Display {
	return &Display{w: w, live: live, plainDone: make(map[EventKind]bool)}
}

// Event takes one progress event; pass it as Options.Progress.
func (d *Display) Event(e Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch e.Kind {
	case EventHostUp:
		d.up = append(d.up, e.Host)
		if !d.live {
			fmt.Fprintf(d.w, "up: %s on %s\n", e.Host, e.Text)
		}
	case EventHandshakes:
		d.sessions = e
		if !d.live && e.Total > 0 && (e.Done == e.Total || e.Final) && !d.plainDone[e.Kind] {
			d.plainDone[e.Kind] = true
			fmt.Fprintf(d.w, "handshakes: %d of %d peer entries have a session\n", e.Done, e.Total)
		}
	case EventProbe:
		d.probes = e
		if !d.live && e.Done == e.Total {
			fmt.Fprintf(d.w, "probes: %d done\n", e.Total)
		}
	case EventNote:
		d.clearLocked()
		fmt.Fprintf(d.w, "note: %s\n", e.Text)
	}
	if d.live {
		d.drawLocked()
	}
}

func (d *Display) drawLocked() {
	var parts []string
	if len(d.up) > 0 {
		parts = append(parts, "hosts up: "+strings.Join(d.up, " "))
	}
	if d.sessions.Total > 0 {
		parts = append(parts, fmt.Sprintf("handshakes %d/%d", d.sessions.Done, d.sessions.Total))
	}
	if d.probes.Total > 0 {
		parts = append(parts, fmt.Sprintf("probes %d/%d", d.probes.Done, d.probes.Total))
	}
	line := strings.Join(parts, " · ")
	if len(line) > 120 {
		line = line[:117] + "..."
	}
	fmt.Fprintf(d.w, "\r\x1b[K%s", line)
	d.lineShown = true
}

func (d *Display) clearLocked() {
	if d.live && d.lineShown {
		fmt.Fprint(d.w, "\r\x1b[K")
		d.lineShown = false
	}
}

// Done ends a phase (start, probe): live, the status line stays as its summary
// and the next output starts below it. Counts shown afterwards begin again.
func (d *Display) Done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live && d.lineShown {
		fmt.Fprintln(d.w)
		d.lineShown = false
	}
	d.up, d.sessions, d.probes = nil, Event{}, Event{}
	clear(d.plainDone)
}
