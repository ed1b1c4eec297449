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
	return copyConfigs(t, filepath.Join("..", "..", "internal", "check", "testdata", name), nil)
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

// corpusCopy copies the importer corpus fleet name's configs (see copyConfigs).
func corpusCopy(t *testing.T, name string, edit func(file, src string) string) []string {
	t.Helper()
	return copyConfigs(t, filepath.Join("..", "..", "internal", "importer", "testdata", "corpus", name), edit)
}

// copyConfigs copies the configs in src to a temporary directory with mode
// 0600 (git keeps no modes), changed by edit when not nil, and returns their paths.
func copyConfigs(t *testing.T, src string, edit func(file, src string) string) []string {
	t.Helper()
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
		text := string(b)
		if edit != nil {
			text = edit(filepath.Base(p), text)
		}
		to := filepath.Join(dst, filepath.Base(p))
		if err := os.WriteFile(to, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, to)
	}
	return out
}

// checkCodes runs check -o json and returns its findings.
func checkCodes(t *testing.T, dir string, args ...string) []diag.Diagnostic {
	t.Helper()
	out, errs, code := cli(t, dir, append([]string{"check", "-o", "json"}, args...)...)
	if code == 2 {
		t.Fatalf("check %v: exit 2: %s", args, errs)
	}
	var r []diag.Diagnostic
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, out)
	}
	return r
}

func withCode(ds []diag.Diagnostic, code string) []diag.Diagnostic {
	var out []diag.Diagnostic
	for _, d := range ds {
		if d.Code == code {
			out = append(out, d)
		}
	}
	return out
}

// TestCheckExternalPeerExpected: a peer the spec marks external (a Mullvad or
// Proton server, imported from a client's file) is meant to be outside the set:
// check of the spec and of its rendered configs (wg-quick and wg format) says
// nothing of it, while the client's own file, checked alone, still gets
// peer-not-in-set (nothing there says the peer is external).
func TestCheckExternalPeerExpected(t *testing.T) {
	for _, fleet := range []string{"mullvad", "proton"} {
		files := corpusCopy(t, fleet, nil)
		dir := t.TempDir()
		mustCLI(t, dir, append([]string{"import"}, files...)...)
		if b, _ := os.ReadFile(filepath.Join(dir, "wgnet.yaml")); !strings.Contains(string(b), "external: true") {
			t.Fatalf("%s: import made no external host:\n%s", fleet, b)
		}
		if got := withCode(checkCodes(t, dir), "peer-not-in-set"); len(got) != 0 {
			t.Errorf("%s: check of the spec: %v", fleet, got)
		}
		mustCLI(t, dir, "render", "--out", "q")
		mustCLI(t, dir, "render", "-o", "wg", "--out", "w")
		for _, out := range []string{"q", "w"} {
			rendered, _ := filepath.Glob(filepath.Join(dir, out, "*", "*.conf"))
			if len(rendered) == 0 {
				t.Fatalf("%s: nothing rendered in %s", fleet, out)
			}
			if got := withCode(checkCodes(t, dir, rendered...), "peer-not-in-set"); len(got) != 0 {
				t.Errorf("%s: check of the rendered %s: %v", fleet, out, got)
			}
		}
		if got := withCode(checkCodes(t, dir, files...), "peer-not-in-set"); len(got) != 1 {
			t.Errorf("%s: check of the client's own file: %d peer-not-in-set, want 1", fleet, len(got))
		}
	}
}

// TestCheckWgEasyV6Forwarding: wg-easy's server file turns on no forwarding in
// its hooks (its container gets net.ipv4.ip_forward and
// net.ipv6.conf.all.forwarding from docker's --sysctl flags, outside the
// file), so check's hub-no-forwarding warning for both families is right, and
// says to confirm on the host. Each way a hook can turn both on silences it.
func TestCheckWgEasyV6Forwarding(t *testing.T) {
	dir := t.TempDir()
	got := withCode(checkCodes(t, dir, corpusCopy(t, "wg-easy-v6", nil)...), "hub-no-forwarding")
	if len(got) != 1 || got[0].Severity != diag.Warning || !strings.Contains(got[0].Message, "IPv6") ||
		!strings.Contains(got[0].Message, "sysctl net.ipv6.conf.all.forwarding") {
		t.Fatalf("wg-easy-v6 as it is: %v; want one hub-no-forwarding warning naming IPv6 and how to confirm it", got)
	}
	for _, hook := range []string{
		"sysctl -w net.ipv4.ip_forward=1; sysctl -w net.ipv6.conf.all.forwarding=1",
		"sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
		"sysctl -w net.ipv4.ip_forward=1 && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
		"sysctl -w net/ipv4/ip_forward=1; sysctl -w net/ipv6/conf/all/forwarding=1",
	} {
		files := corpusCopy(t, "wg-easy-v6", func(file, src string) string {
			if file != "server.conf" {
				return src
			}
			return strings.Replace(src, "PreUp = \n", "PreUp = "+hook+"\n", 1)
		})
		if got := withCode(checkCodes(t, dir, files...), "hub-no-forwarding"); len(got) != 0 {
			t.Errorf("PreUp = %s: %v", hook, got)
		}
	}
	// IPv4 alone: the IPv6 half is still missing.
	files := corpusCopy(t, "wg-easy-v6", func(file, src string) string {
		return strings.Replace(src, "PreUp = \n", "PreUp = sysctl -w net.ipv4.ip_forward=1\n", 1)
	})
	if got := withCode(checkCodes(t, dir, files...), "hub-no-forwarding"); len(got) != 1 || !strings.Contains(got[0].Message, "IPv6") ||
		strings.Contains(got[0].Message, "IPv4") {
		t.Errorf("IPv4 forwarding only: %v; want one finding for IPv6 alone", got)
	}
}
