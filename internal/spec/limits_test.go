package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wgnet/wgnet/internal/diag"
)

// TestReadSourceTooBig: a spec over MaxSize is refused with its size before it
// is read (a sparse file: reading it whole would take 65 MiB).
func TestReadSourceTooBig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wgnet.yaml")
	must(t, os.WriteFile(path, []byte("version: 1\n"), 0o644))
	must(t, os.Truncate(path, MaxSize+1))
	for _, read := range []func(string) ([]byte, error){ReadSource, ReadFile} {
		_, err := read(path)
		if err == nil || !strings.Contains(err.Error(), "67108865 bytes, over the 64 MiB") {
			t.Errorf("read %d-byte spec: %v, want it refused with its size", MaxSize+1, err)
		}
	}
	if _, err := Load(path); err == nil {
		t.Error("Load of an oversized spec succeeded")
	}
	must(t, os.Truncate(path, MaxSize))
	if src, err := ReadSource(path); err != nil || len(src) != MaxSize {
		t.Errorf("ReadSource of exactly MaxSize: %d bytes, %v", len(src), err)
	}
}

// TestReadSourceNoSize: a source without a size (a device) is cut off one byte
// past the limit instead of being read until memory runs out.
func TestReadSourceNoSize(t *testing.T) {
	_, err := ReadSource("/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "over the 64 MiB") {
		t.Errorf("ReadSource(/dev/zero) = %v, want it refused", err)
	}
}

// TestLongValueClipped: a huge value is never echoed whole in a problem.
func TestLongValueClipped(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	for _, src := range []string{
		header + "interface: " + long + "\n",         // validation: %q of the value
		header + "listen_port: " + long + "\n",       // decoding: a scalar of the wrong type
		header + long + ": 1\n",                      // an unknown key, echoed as the field
		header + "hosts:\n  - name: " + long + "é\n", // a name, %q and %s, clipped on a rune
		header + "hosts:\n  - name: a\n    hooks: {post_up: [\"" + long + "\\n\"]}\n",
	} {
		_, errs, warns := Check("wgnet.yaml", []byte(src))
		if len(errs) == 0 {
			t.Errorf("%.40q...: no error", src)
		}
		for _, p := range append(errs, warns...) {
			if len(p.Message) > 1000 {
				t.Errorf("%s: message of %d bytes: a value echoed whole", p.Code, len(p.Message))
			}
			if !strings.Contains(p.Message, "…(") && strings.Contains(p.Message, "xxx") {
				t.Errorf("%s: %.300s: clipped without saying so", p.Code, p.Message)
			}
		}
	}
}

// TestEditBrokenSpecSaysWhere: an edit of a spec that already has an error
// reports that error at its file and line, not as a bare message.
func TestEditBrokenSpecSaysWhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wgnet.yaml")
	src := header + "hosts:\n  - name: s1\n    endpoint: 1.2.3.4\n    address: [192.168.100.1]\n"
	must(t, os.WriteFile(path, []byte(src), 0o644))
	err := Edit(path, func(d *Document) error {
		_, err := d.AddHost(Host{Name: "s2"})
		return err
	})
	var p diag.Failure
	if !errors.As(err, &p) || p.File != path || p.Line != 7 || p.Code != CodeEndpoint {
		t.Fatalf("edit of a broken spec: %v (%+v), want %s:7: %s", err, p, path, CodeEndpoint)
	}
	// An edit that fixes the error saves.
	must(t, Edit(path, func(d *Document) error {
		ep := "1.2.3.4:51820"
		return d.SetHost("s1", HostChanges{Endpoint: &ep})
	}))
}
