package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/diag"
)

// checkCase copies internal/check/testdata/NAME's configs to a temporary
// directory with mode 0600 (git keeps no modes) and returns their paths.
func checkCase(t *testing.T, name string) []string {
	t.Helper()
	src := filepath.Join("..", "..", "internal", "check", "testdata", name)
	paths, err := filepath.Glob(filepath.Join(src, "*.conf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no configs in %s: %v", src, err)
	}
	dst := t.TempDir()
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, filepath.Base(p))
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, to)
	}
	return out
}

func TestRunCheckExit(t *testing.T) {
	tests := []struct {
		name     string
		files    func(t *testing.T) []string
		exit     int
		findings int
		summary  string
	}{
		{"clean", func(t *testing.T) []string { return checkCase(t, "clean-hub") }, exitOK, 0, "0 errors, 0 warnings\n"},
		{"warnings only", func(t *testing.T) []string { return checkCase(t, "warnings-only") }, exitOK, 2, "0 errors, 2 warnings\n"},
		{"errors", func(t *testing.T) []string { return checkCase(t, "syntax") }, exitProblems, 2, "2 errors, 0 warnings\n"},
		// Issue 9, finding 11: two spokes without an Endpoint port and two wrong
		// peer keys on the hub, all in one pass.
		{"article", func(t *testing.T) []string { return checkCase(t, "article") }, exitProblems, 4, "4 errors, 0 warnings\n"},
		{"unreadable", func(t *testing.T) []string {
			return append(checkCase(t, "clean-hub"), filepath.Join(t.TempDir(), "missing.conf"))
		}, exitCantRun, 0, ""},
	}
	for _, tt := range tests {
		for _, format := range []string{"text", "json"} {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				err := runCheck(context.Background(), tt.files(t), "", format, &stdout, &stderr)
				if got := exitCodeFor(err); got != tt.exit {
					t.Fatalf("exit %d (%v), want %d", got, err, tt.exit)
				}
				if tt.exit == exitCantRun {
					if stdout.Len() != 0 {
						t.Errorf("stdout %q, want nothing", stdout.String())
					}
					return
				}
				if stderr.String() != tt.summary {
					t.Errorf("stderr %q, want %q", stderr.String(), tt.summary)
				}
				var n int
				if format == "json" {
					var fs []diag.Diagnostic
					if err := json.Unmarshal(stdout.Bytes(), &fs); err != nil || fs == nil {
						t.Fatalf("stdout is not a JSON array of findings (%v):\n%s", err, stdout.String())
					}
					n = len(fs)
				} else if s := strings.TrimSpace(stdout.String()); s != "" {
					n = len(strings.Split(s, "\n"))
				}
				if n != tt.findings {
					t.Errorf("%d findings, want %d:\n%s", n, tt.findings, stdout.String())
				}
			})
		}
	}
}

// TestCheckSpec lints the example spec and what it compiles to: a valid spec
// compiles to a network without errors.
func TestCheckSpec(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "spec", "testdata", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Without its preshared key, which would need a secrets directory.
	b = bytes.Replace(b, []byte("preshared_keys: [[s1, s2]]"), nil, 1)
	specFile := filepath.Join(dir, "wgnet.yaml")
	if err := os.WriteFile(specFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = runCheck(context.Background(), nil, specFile, "json", &stdout, &stderr)
	var fs []diag.Diagnostic
	if jerr := json.Unmarshal(stdout.Bytes(), &fs); jerr != nil {
		t.Fatalf("stdout: %v (err %v)\n%s", jerr, err, stdout.String())
	}
	if code := exitCodeFor(err); code != exitOK {
		t.Errorf("exit %d (%v), want 0; stderr: %s", code, err, stderr.String())
	}
	for _, f := range fs {
		t.Log(f)
		if f.Severity == diag.Error {
			t.Errorf("error in a valid spec: %v", f)
		}
	}

	// A spec that does not parse: its problems, exit 1.
	if err := os.WriteFile(specFile, []byte("version: 1\nnetwork: Bad Name\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	err = runCheck(context.Background(), nil, specFile, "text", &stdout, &stderr)
	if code := exitCodeFor(err); code != exitProblems {
		t.Errorf("broken spec: exit %d (%v), want 1", code, err)
	}
	if !strings.Contains(stdout.String(), "wgnet.yaml:2: error: ") {
		t.Errorf("broken spec: stdout lacks the spec's line:\n%s", stdout.String())
	}
}
