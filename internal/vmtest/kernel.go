package vmtest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Kernel is a Linux kernel unpacked from a Debian linux-image package (dpkg-deb -x
// into a directory): the image qemu boots and the modules that go with it.
type Kernel struct {
	Image      string // ROOT/boot/vmlinuz-VERSION
	Version    string // uname -r inside the VM
	ModulesDir string // ROOT/lib/modules/VERSION
}

// FindKernel finds the one kernel unpacked under root.
func FindKernel(root string) (Kernel, error) {
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	switch len(images) {
	case 0:
		return Kernel{}, fmt.Errorf("find kernel: no boot/vmlinuz-* under %s", root)
	case 1:
	default:
		return Kernel{}, fmt.Errorf("find kernel: %d kernels under %s, want one", len(images), root)
	}
	v := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	k := Kernel{Image: images[0], Version: v, ModulesDir: filepath.Join(root, "lib", "modules", v)}
	if _, err := os.Stat(k.ModulesDir); err != nil {
		return Kernel{}, fmt.Errorf("find kernel: %w", err)
	}
	return k, nil
}

// moduleName is the kernel's name for a module file or a "depends=" entry: dashes
// and underscores are the same to it.
func moduleName(s string) string {
	s = strings.TrimSuffix(filepath.Base(s), ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// ModuleClosure returns the modules named and everything they depend on, as paths
// relative to ModulesDir, in an order insmod can load them (dependencies first). It
// reads each module's dependencies from its .modinfo section, so it needs neither
// modules.dep (which the package does not ship: depmod writes it at install) nor
// kmod. Soft dependencies ("softdep=", often an alias such as crc32c) are not
// followed: name their modules first. Compressed modules (.ko.xz, .ko.zst) are
// refused.
func (k Kernel) ModuleClosure(names ...string) ([]string, error) {
	index := map[string]string{} // module name -> relative path
	compressed := map[string]bool{}
	err := filepath.WalkDir(k.ModulesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(p, ".ko"):
			rel, err := filepath.Rel(k.ModulesDir, p)
			if err != nil {
				return err
			}
			index[moduleName(p)] = rel
		case strings.HasSuffix(p, ".ko.xz"), strings.HasSuffix(p, ".ko.zst"), strings.HasSuffix(p, ".ko.gz"):
			compressed[moduleName(strings.TrimSuffix(p, filepath.Ext(p)))] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("modules of %s: %w", k.Version, err)
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, from string) error
	visit = func(name, from string) error {
		name = moduleName(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("module %s: dependency cycle through %s", name, from)
		case 2:
			return nil
		}
		rel, ok := index[name]
		if !ok {
			if compressed[name] {
				return fmt.Errorf("module %s: only compressed, which this loader does not unpack", name)
			}
			if from != "" {
				return fmt.Errorf("module %s (needed by %s): not in %s", name, from, k.ModulesDir)
			}
			return fmt.Errorf("module %s: not in %s", name, k.ModulesDir)
		}
		state[name] = 1
		deps, err := moduleDepends(filepath.Join(k.ModulesDir, rel))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, rel)
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// moduleDepends reads the "depends=" entry of a module's .modinfo section (what
// `modinfo -F depends` prints).
func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", path)
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: .modinfo: %w", path, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte("depends="))
		if !ok {
			continue
		}
		if len(v) == 0 {
			return nil, nil
		}
		return strings.Split(string(v), ","), nil
	}
	return nil, nil
}

// SharedLibs returns what the dynamically linked program at path needs to run, as
// ldd(1) reports it: the absolute paths of its shared libraries and of the dynamic
// loader. A static program needs nothing.
func SharedLibs(path string) ([]string, error) {
	out, err := exec.Command("ldd", path).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", path, err, bytes.TrimSpace(out))
	}
	return parseLdd(out)
}

// parseLdd reads ldd's output: "libc.so.6 => /lib/.../libc.so.6 (0x...)" for a
// library, "/lib64/ld-linux-x86-64.so.2 (0x...)" for the loader, and the vDSO,
// which has no file.
func parseLdd(out []byte) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "linux-vdso") || strings.HasPrefix(line, "linux-gate") {
			continue
		}
		if strings.Contains(line, "=> not found") {
			return nil, fmt.Errorf("ldd: %s", line)
		}
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		p, _, _ := strings.Cut(line, " (")
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("ldd: unexpected line %q", sc.Text())
		}
		libs = append(libs, p)
	}
	if len(libs) == 0 {
		return nil, errors.New("ldd: no libraries listed")
	}
	return libs, nil
}
