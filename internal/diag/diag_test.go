package diag

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestString(t *testing.T) {
	for _, tt := range []struct {
		d            Diagnostic
		str, located string
	}{
		{Diagnostic{"s1.conf", 7, Error, "syntax", "bad"}, "s1.conf:7: error: syntax: bad", "s1.conf:7: bad"},
		{Diagnostic{"s1.conf", 0, Warning, "mtu", "big"}, "s1.conf: warning: mtu: big", "s1.conf: big"},
		{Diagnostic{"", 3, Error, "spec-yaml", "x"}, ":3: error: spec-yaml: x", "line 3: x"},
		{Diagnostic{"", 0, Error, "spec-yaml", "x"}, ": error: spec-yaml: x", "x"},
	} {
		if got := tt.d.String(); got != tt.str {
			t.Errorf("String() = %q, want %q", got, tt.str)
		}
		if got := fmt.Sprint(tt.d); got != tt.str {
			t.Errorf("Sprint = %q, want %q", got, tt.str)
		}
		if got := tt.d.Located(); got != tt.located {
			t.Errorf("Located() = %q, want %q", got, tt.located)
		}
		if got := (Failure{tt.d}).Error(); got != tt.located {
			t.Errorf("Error() = %q, want %q", got, tt.located)
		}
	}
}

func TestList(t *testing.T) {
	l := List{
		{"a", 1, Warning, "mtu", "w1"},
		{"a", 2, Error, "syntax", "e1"},
		{"b", 3, Error, "syntax", "e2"},
	}
	if e, w := l.Count(); e != 2 || w != 1 {
		t.Errorf("Count() = %d, %d", e, w)
	}
	if diff := cmp.Diff(List{l[1], l[2]}, l.Errors()); diff != "" {
		t.Errorf("Errors() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(List{l[0]}, l.Warnings()); diff != "" {
		t.Errorf("Warnings() (-want +got):\n%s", diff)
	}
	err := l.Err()
	if got, want := err.Error(), "a:2: e1\nb:3: e2"; got != want {
		t.Errorf("Err() = %q, want %q", got, want)
	}
	var e Failure
	if !errors.As(err, &e) || e.Diagnostic != l[1] {
		t.Errorf("errors.As = %v", e)
	}
	if diff := cmp.Diff(l.Errors(), FromError(fmt.Errorf("wrapped: %w", err))); diff != "" {
		t.Errorf("FromError (-want +got):\n%s", diff)
	}
	if (List{l[0]}).Err() != nil || List(nil).Err() != nil {
		t.Error("Err() of warnings only is not nil")
	}
}

// TestDocs checks that docs/checks.md has a table row for exactly the codes of
// the table, with the same severities.
func TestDocs(t *testing.T) {
	md, err := os.ReadFile("../../docs/checks.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z-]+)` \\| ([a-z]+) \\|").FindAllStringSubmatch(string(md), -1) {
		if _, dup := documented[m[1]]; dup {
			t.Errorf("docs/checks.md: two rows for %s", m[1])
		}
		documented[m[1]] = m[2]
	}
	seen := map[string]bool{}
	for _, c := range Codes() {
		if seen[c.Code] {
			t.Errorf("code %s twice in the table", c.Code)
		}
		seen[c.Code] = true
		if c.Severity != Error && c.Severity != Warning {
			t.Errorf("%s: severity %q", c.Code, c.Severity)
		}
		if c.Summary == "" || c.By == "" {
			t.Errorf("%s: no summary or no package", c.Code)
		}
		switch sev, ok := documented[c.Code]; {
		case !ok:
			t.Errorf("docs/checks.md: no table row for %s", c.Code)
		case sev != string(c.Severity):
			t.Errorf("docs/checks.md: %s is %s, the table says %s", c.Code, sev, c.Severity)
		}
	}
	for code := range documented {
		if !seen[code] {
			t.Errorf("docs/checks.md: %s is not in diag's table", code)
		}
	}
}
