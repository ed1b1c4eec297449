package device

import (
	"context"
	"log/slog"
	"testing"
)

// countHandler counts the records it is handed at or above its level.
type countHandler struct {
	level slog.Level
	n     int
}

func (h *countHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *countHandler) Handle(context.Context, slog.Record) error    { h.n++; return nil }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *countHandler) WithGroup(string) slog.Handler                { return h }

// TestWgLogger: wireguard-go's verbose messages reach a logger that logs
// debug messages, and are not even formatted for one that does not (a
// fmt.Stringer argument would be called); errors reach both.
func TestWgLogger(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		h := &countHandler{level: level}
		l := wgLogger(slog.New(h))
		formatted := false
		l.Verbosef("%v", stringer(func() string { formatted = true; return "x" }))
		if want := level == slog.LevelDebug; formatted != want || (h.n == 1) != want {
			t.Errorf("level %v: verbose message formatted %v, logged %d; want %v", level, formatted, h.n, want)
		}
		h.n = 0
		l.Errorf("boom")
		if h.n != 1 {
			t.Errorf("level %v: error logged %d times, want 1", level, h.n)
		}
	}
}

type stringer func() string

func (s stringer) String() string { return s() }
