package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfirmNothingPending is issue 10: confirm with nothing waiting exits 0
// when the last change with --confirm changed nothing, and 1 with the time when
// it was rolled back.
func TestConfirmNothingPending(t *testing.T) {
	for _, tc := range []struct {
		name, outcome string // "" = no record
		rollback      bool
		exit1         bool
		want          string
	}{
		{"no change", `{"kind":"no-change","command":"sync","at":"2026-01-02T03:04:05Z"}`, false, false, "nothing to confirm"},
		{"rolled back", `{"kind":"rolled-back","command":"sync","at":"2026-01-02T03:04:05Z"}`, false, true, "rolled back at 2026-01-02"},
		{"rolled back, --rollback", `{"kind":"rolled-back","command":"up","at":"2026-01-02T03:04:05Z"}`, true, false, "rolled back at 2026-01-02"},
		{"nothing known", "", false, true, "no change is waiting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TZ", "UTC")
			dir := t.TempDir()
			if tc.outcome != "" {
				if err := os.WriteFile(filepath.Join(dir, "wg0.outcome"), []byte(tc.outcome), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var stderr bytes.Buffer
			err := nothingPending(&stderr, dir, "wg0", tc.rollback)
			var pe *problemError
			if got := errors.As(err, &pe); got != tc.exit1 || (err != nil && !got) {
				t.Fatalf("err = %v, want exit 1: %v", err, tc.exit1)
			}
			msg := stderr.String()
			if err != nil {
				msg = err.Error()
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("said %q, want %q in it", msg, tc.want)
			}
		})
	}
}
