package vmtest

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInitramfsExtracts writes an archive and unpacks it with cpio(1), an
// implementation this package did not write, as the kernel would.
func TestInitramfsExtracts(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("needs cpio(1) to unpack the archive")
	}
	dir := t.TempDir()
	host := filepath.Join(dir, "host.bin")
	hostData := bytes.Repeat([]byte("0123456789"), 1001) // not a multiple of 4
	if err := os.WriteFile(host, hostData, 0o600); err != nil {
		t.Fatal(err)
	}
	var r Initramfs
	r.File("init", 0o755, []byte("#!/bin/sh\n"))
	r.File("/etc/wgnet-vm/modules", 0o644, []byte("a.ko\nb.ko\n"))
	r.File("empty", 0o600, nil)
	r.HostFile("usr/local/bin/prog", host, 0o755)
	r.Symlink("bin/sh", "busybox")
	r.Dir("proc", 0o555)
	r.File("x/../odd", 0o644, []byte("1")) // cleaned to "odd"

	var buf bytes.Buffer
	n, err := r.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n%4 != 0 {
		t.Errorf("WriteTo = %d bytes, buffer has %d; want them equal and a multiple of 4", n, buf.Len())
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cpio, "-id", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = out, &buf
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v: %s", err, o)
	}

	type file struct {
		Mode   fs.FileMode
		Data   string
		Target string
	}
	got := map[string]file{}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == out {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		f := file{Mode: fi.Mode()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			f.Mode = fs.ModeSymlink
			f.Target, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			f.Data = string(b)
		}
		got[rel] = f
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dir755 := fs.ModeDir | 0o755
	want := map[string]file{
		"init":                 {Mode: 0o755, Data: "#!/bin/sh\n"},
		"etc":                  {Mode: dir755},
		"etc/wgnet-vm":         {Mode: dir755},
		"etc/wgnet-vm/modules": {Mode: 0o644, Data: "a.ko\nb.ko\n"},
		"empty":                {Mode: 0o600},
		"usr":                  {Mode: dir755},
		"usr/local":            {Mode: dir755},
		"usr/local/bin":        {Mode: dir755},
		"usr/local/bin/prog":   {Mode: 0o755, Data: string(hostData)},
		"bin":                  {Mode: dir755},
		"bin/sh":               {Mode: fs.ModeSymlink, Target: "busybox"},
		"proc":                 {Mode: fs.ModeDir | 0o555},
		"odd":                  {Mode: 0o644, Data: "1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unpacked archive (-want +got):\n%s", diff)
	}
	if !r.Has("usr/local") || !r.Has("/bin/sh") || r.Has("nope") {
		t.Errorf("Has: usr/local %v, /bin/sh %v, nope %v; want true, true, false", r.Has("usr/local"), r.Has("/bin/sh"), r.Has("nope"))
	}
}

func TestInitramfsMissingHostFile(t *testing.T) {
	var r Initramfs
	r.HostFile("bin/x", filepath.Join(t.TempDir(), "missing"), 0o755)
	if _, err := r.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "bin/x") {
		t.Errorf("WriteTo with a missing host file = %v, want an error naming bin/x", err)
	}
}

func TestParseConsole(t *testing.T) {
	tests := []struct {
		name    string
		console string
		want    Result
		wantErr string
	}{
		{
			name: "two runs",
			console: "[    0.1] booting\r\nWGNET-VM: kernel 6.1\r\nWGNET-VM-BEGIN one\r\n=== RUN   TestX\r\n--- PASS: TestX (0.01s)\r\n" +
				"WGNET-VM-END one rc=0\r\nWGNET-VM-BEGIN two\r\n[    3.2] a kernel message\r\nWGNET-VM-END two rc=1\r\nWGNET-VM-DONE rc=1\r\n[    4.0] reboot: Power down\r\n",
			want: Result{
				Runs: []Run{
					{Name: "one", RC: 0, Output: "=== RUN   TestX\n--- PASS: TestX (0.01s)\n"},
					{Name: "two", RC: 1, Output: "[    3.2] a kernel message\n"},
				},
				Done: true, RC: 1,
			},
		},
		{
			name:    "run never ended",
			console: "WGNET-VM-BEGIN one\nsome output\n[    9.9] Kernel panic - not syncing\n",
			wantErr: "one began and never ended",
		},
		{
			name:    "init never finished",
			console: "WGNET-VM-BEGIN one\nWGNET-VM-END one rc=0\n",
			wantErr: "never finished",
		},
		{
			name:    "no init at all",
			console: "[    2.2] Kernel panic - not syncing: No working init found.\n",
			wantErr: "never finished",
		},
		{
			name:    "malformed end",
			console: "WGNET-VM-BEGIN one\nWGNET-VM-END one rc=\n",
			wantErr: "malformed marker",
		},
		{
			name:    "end of another run",
			console: "WGNET-VM-BEGIN one\nWGNET-VM-END two rc=0\n",
			wantErr: "without its BEGIN",
		},
		{
			name:    "nested begin",
			console: "WGNET-VM-BEGIN one\nWGNET-VM-BEGIN two\n",
			wantErr: "began before one ended",
		},
		{
			name:    "malformed done",
			console: "WGNET-VM-DONE rc=x\n",
			wantErr: "malformed marker",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConsole([]byte(tt.console))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("ParseConsole: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("ParseConsole error = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.wantErr != "" {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseConsole (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLdd(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []string
		wantErr string
	}{
		{
			name: "iproute2 ip",
			out: "\tlinux-vdso.so.1 (0x00007ffd)\n" +
				"\tlibbpf.so.1 => /lib/x86_64-linux-gnu/libbpf.so.1 (0x00007fe8)\n" +
				"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fe8)\n" +
				"\t/lib64/ld-linux-x86-64.so.2 (0x00007fe8)\n",
			want: []string{"/lib/x86_64-linux-gnu/libbpf.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"},
		},
		{
			name:    "missing library",
			out:     "\tlibfoo.so.1 => not found\n",
			wantErr: "not found",
		},
		{
			name:    "nothing listed",
			out:     "\tlinux-vdso.so.1 (0x00007ffd)\n",
			wantErr: "no libraries",
		},
		{
			name:    "relative path",
			out:     "\tlibc.so.6 => libc.so.6 (0x1)\n",
			wantErr: "unexpected line",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLdd([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseLdd error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseLdd (-want +got):\n%s", diff)
			}
		})
	}
}

// TestModuleClosure resolves the WireGuard module's dependencies in the kernel
// that tests/qemu/fetch.sh unpacked, and checks the order against kmod's
// modinfo(8), which reads the same .modinfo with code this package did not write.
func TestModuleClosure(t *testing.T) {
	k, err := FindKernel(filepath.Join(cacheDir(), "root"))
	if err != nil {
		t.Skipf("no Debian kernel unpacked (tests/qemu/fetch.sh): %v", err)
	}
	modinfo, err := exec.LookPath("modinfo")
	if err != nil {
		t.Skip("needs kmod's modinfo")
	}
	mods, err := k.ModuleClosure("wireguard", "veth")
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = moduleName(m)
	}
	for _, must := range []string{"wireguard", "veth", "udp_tunnel", "ip6_udp_tunnel", "libchacha20poly1305", "libcurve25519_generic"} {
		if !slices.Contains(names, must) {
			t.Errorf("closure %v lacks %s", names, must)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
		t.Errorf("closure lists a module twice: %v", names)
	}
	for i, m := range mods {
		out, err := exec.Command(modinfo, "-F", "depends", filepath.Join(k.ModulesDir, m)).Output()
		if err != nil {
			t.Fatalf("modinfo %s: %v", m, err)
		}
		for _, d := range strings.Split(strings.TrimSpace(string(out)), ",") {
			if d == "" {
				continue
			}
			j := slices.Index(names, moduleName(d))
			if j < 0 || j > i {
				t.Errorf("%s depends on %s, which is loaded at %d, after it (%d): %v", names[i], d, j, i, names)
			}
		}
	}
	if _, err := k.ModuleClosure("no_such_module"); err == nil {
		t.Error("ModuleClosure(no_such_module) = nil error")
	}
}

// TestWatchBuffer: a watched text is found when the console delivers it in
// pieces, and only once it is whole; an empty text is never seen.
func TestWatchBuffer(t *testing.T) {
	var w watchBuffer
	ack, never := w.watch("WGNET-ACK n=301 "), w.watch("")
	for _, p := range []string{"WGNET-ACK n=300 host=a\n", "WGNET-A", "CK n=30", "1", " host=b\n"} {
		select {
		case <-ack:
			t.Fatalf("seen before %q was written", p)
		default:
		}
		w.Write([]byte(p))
	}
	select {
	case <-ack:
	default:
		t.Fatalf("not seen in %q", w.bytes())
	}
	select {
	case <-never:
		t.Fatal("an empty watch was closed")
	default:
	}
}
