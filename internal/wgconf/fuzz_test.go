package wgconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wgnet/wgnet/internal/diag"
)

// FuzzParse checks that Parse never panics, that every problem has a line in
// the file, that no secret is echoed in a message, and that a file that parses
// renders to one that parses back to the same Config, byte-stable from then on.
// Seeds: the agreement corpus and the rendered goldens.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/agreement/*.conf")
	goldens, _ := filepath.Glob("testdata/render/*.golden")
	for _, path := range append(seeds, goldens...) {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, warns, err := ParseWithWarnings("f.conf", src)
		if cfg == nil {
			t.Fatal("nil Config")
		}
		lines := strings.Count(string(src), "\n") + 1
		problems := append(diag.FromError(err), warns...)
		if err != nil && len(diag.FromError(err)) == 0 {
			t.Fatalf("error without a diag.Failure inside: %v", err)
		}
		secrets := secretValues(src)
		var echoes map[int]bool // computed when a message holds a secret's text
		for _, e := range problems {
			if e.Line < 1 || e.Line > lines {
				t.Errorf("%v: line outside the file (%d lines)", e, lines)
			}
			if s, ok := secrets[e.Line]; ok && strings.Contains(e.Message, s) {
				if echoes == nil {
					echoes = echoed(src)
				}
				if echoes[e.Line] {
					t.Errorf("%v: echoes a secret", e)
				}
			}
		}

		out := cfg.WgQuick()
		_ = cfg.Stripped()
		back, err2 := Parse("rendered.conf", out)
		if err == nil {
			if err2 != nil {
				t.Fatalf("WgQuick() of a valid file does not parse: %v\n%s", err2, out)
			}
			if diff := cmp.Diff(cfg, back, ignorePositions()); diff != "" {
				t.Fatalf("Parse(WgQuick(c)) != c (-want +got):\n%s", diff)
			}
		}
		if err2 == nil {
			if again := back.WgQuick(); string(again) != string(out) {
				t.Fatalf("rendering is not stable:\n%s\nthen\n%s", out, again)
			}
		}
	})
}

// secretValues returns the values of PrivateKey and PresharedKey lines by line
// number: no message about that line may repeat them.
func secretValues(src []byte) map[int]string {
	out := map[int]string{}
	for i, line := range strings.Split(string(src), "\n") {
		line, _, _ = strings.Cut(line, "#")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(removeSpaces(k)) {
		case "privatekey", "presharedkey":
			if v = removeSpaces(v); len(v) >= 8 {
				out[i+1] = v
			}
		}
	}
	return out
}

// echoed returns the lines of src whose message repeats that line's secret
// value: with every letter and digit of the secrets shifted, some message about
// the line must hold the shifted value. A message that holds the value only
// because its fixed text happens to equal it (PresharedKey = [Interface] in an
// [Interface]) does not count. One parse for all lines keeps the fuzz linear.
func echoed(src []byte) map[int]bool {
	secrets := secretValues(src)
	lines := strings.Split(string(src), "\n")
	for n := range secrets {
		value, comment, hasComment := strings.Cut(lines[n-1], "#")
		eq := strings.IndexByte(value, '=')
		shifted := []byte(value)
		for i := eq + 1; i < len(shifted); i++ {
			c := shifted[i]
			switch {
			case c >= 'a' && c <= 'z':
				shifted[i] = 'a' + (c-'a'+1)%26
			case c >= 'A' && c <= 'Z':
				shifted[i] = 'A' + (c-'A'+1)%26
			case c >= '0' && c <= '9':
				shifted[i] = '0' + (c-'0'+1)%10
			}
		}
		lines[n-1] = string(shifted)
		if hasComment {
			lines[n-1] += "#" + comment
		}
	}
	src2 := []byte(strings.Join(lines, "\n"))
	shiftedSecrets := secretValues(src2)
	_, warns, err := ParseWithWarnings("f.conf", src2)
	out := map[int]bool{}
	for _, e := range append(diag.FromError(err), warns...) {
		if s, ok := shiftedSecrets[e.Line]; ok && strings.Contains(e.Message, s) {
			out[e.Line] = true
		}
	}
	return out
}

// TestSecretDetector keeps FuzzParse's secret detector accurate: fixed text
// equal to the value is not an echo; a value repeated in a message is.
func TestSecretDetector(t *testing.T) {
	for _, tt := range []struct {
		src  string
		echo bool
	}{
		{"[Interface]\nPresharedKey = [Interface]\n", false},
		{"[Interface]\nPrivateKey = PrivateKey\n", false},
		{"[Interface]\nPrivateKey = abcdefghij\n", false},
	} {
		_, err := Parse("f.conf", []byte(tt.src))
		if err == nil {
			t.Fatalf("%q parsed", tt.src)
		}
		if got := echoed([]byte(tt.src))[2]; got != tt.echo {
			t.Errorf("echoes(%q) = %v, want %v (%v)", tt.src, got, tt.echo, err)
		}
	}
}
