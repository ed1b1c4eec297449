package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/wgnet/wgnet/internal/atomicfile"
	"github.com/wgnet/wgnet/internal/diag"
	"github.com/wgnet/wgnet/internal/trust"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// The secrets directory sits beside the spec and holds what the spec must never
// hold: HOST.key, a host's private key, and A+B.psk, the preshared key of the
// pair A, B (A < B). Each file is the key in base64 and a newline, as `wg genkey`
// writes it, mode 0600, in a directory of mode 0700.
const (
	keySuffix = ".key"
	pskSuffix = ".psk"
	// maxKeyFile bounds what is read of a key file: a key is 45 bytes.
	maxKeyFile = 1024
)

// SecretsDir returns the secrets directory of the spec file specPath: the spec's
// name without its extension plus ".secrets", beside it (wgnet.yaml →
// wgnet.secrets).
func SecretsDir(specPath string) string {
	dir, base := filepath.Split(specPath)
	name := strings.TrimSuffix(base, filepath.Ext(base))
	if name == "" {
		name = base
	}
	return filepath.Join(dir, name+".secrets")
}

// KeyFile returns the path of host's private key file in dir.
func KeyFile(dir, host string) string { return filepath.Join(dir, host+keySuffix) }

// PSKFile returns the path of the pair's preshared key file in dir (names sorted).
func PSKFile(dir string, p Pair) string {
	p = p.Key()
	return filepath.Join(dir, p[0]+"+"+p[1]+pskSuffix)
}

// LoadSecrets reads the secrets directory dir. A missing directory is empty
// secrets, not an error. Warnings say what is unsafe but usable, as wg(8) does:
// a key file or the directory readable by others, a file that is not a key. The
// error joins every key file that can't be used; it never quotes a key. Each
// warning names dir as its file and has code CodeSecretsMode.
func LoadSecrets(dir string) (Secrets, diag.List, error) {
	sec := Secrets{PrivateKeys: map[string]wgkey.Private{}, PresharedKeys: map[Pair]wgkey.Key{}}
	if err := trust.Path(dir); err != nil {
		return sec, nil, fmt.Errorf("read secrets: %w", err)
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return sec, nil, nil
	}
	if err != nil {
		return sec, nil, fmt.Errorf("read secrets: %w", err)
	}
	if !fi.IsDir() {
		return sec, nil, fmt.Errorf("read secrets: %s is not a directory", dir)
	}
	var warns diag.List
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		warns = append(warns, secretsWarning(dir, "secrets directory %s is %s accessible (mode %04o); run: chmod 700 %s", dir, who(m), m, dir))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return sec, warns, fmt.Errorf("read secrets: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		if strings.HasPrefix(name, ".") {
			continue // atomicfile's temporary files, editor droppings
		}
		regular := e.Type().IsRegular()
		if e.Type()&fs.ModeSymlink != 0 && (strings.HasSuffix(name, keySuffix) || strings.HasSuffix(name, pskSuffix)) {
			// A link could lead anywhere, to a key someone else controls.
			errs = append(errs, fmt.Errorf("read secrets: %s: is a symbolic link, which wgnet does not follow; put the key itself there", path))
			continue
		}
		switch {
		case strings.HasSuffix(name, keySuffix) && regular:
			host := strings.TrimSuffix(name, keySuffix)
			if !ValidName(host) {
				warns = append(warns, secretsWarning(dir, "%s: %q is not a host name; file ignored", path, host))
				continue
			}
			b, w, err := readKeyFile(dir, path)
			warns = append(warns, w...)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			k, err := wgkey.ParsePrivate(string(b))
			if err != nil || k.IsZero() {
				errs = append(errs, fmt.Errorf("%s: not a private key (want the 44 base64 characters `wg genkey` writes)", path))
				continue
			}
			sec.PrivateKeys[host] = k
		case strings.HasSuffix(name, pskSuffix) && regular:
			a, b, ok := strings.Cut(strings.TrimSuffix(name, pskSuffix), "+")
			if !ok || !ValidName(a) || !ValidName(b) || a == b {
				warns = append(warns, secretsWarning(dir, "%s: not named HOST1+HOST2.psk; file ignored", path))
				continue
			}
			p := Pair{a, b}.Key()
			if _, dup := sec.PresharedKeys[p]; dup {
				errs = append(errs, fmt.Errorf("%s: a second preshared key for %s and %s", path, p[0], p[1]))
				continue
			}
			raw, w, err := readKeyFile(dir, path)
			warns = append(warns, w...)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			k, err := wgkey.ParseKey(string(raw))
			if err != nil || k.IsZero() {
				errs = append(errs, fmt.Errorf("%s: not a preshared key (want the 44 base64 characters `wg genpsk` writes)", path))
				continue
			}
			sec.PresharedKeys[p] = k
		default:
			warns = append(warns, secretsWarning(dir, "%s: not a HOST.key or A+B.psk file; ignored", path))
		}
	}
	return sec, warns, errors.Join(errs...)
}

// secretsWarning is a warning about the secrets directory dir.
func secretsWarning(dir, format string, args ...any) diag.Diagnostic {
	return diag.Diagnostic{File: dir, Severity: diag.Warning, Code: CodeSecretsMode, Message: fmt.Sprintf(format, args...)}
}

// readKeyFile reads a small key file of the secrets directory dir, which must
// be yours (trust.Open), and warns when others can read it.
func readKeyFile(dir, path string) ([]byte, diag.List, error) {
	f, err := trust.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read secrets: %w", err)
	}
	defer f.Close()
	var warns diag.List
	if fi, err := f.Stat(); err == nil {
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			warns = append(warns, secretsWarning(dir, "key file %s is %s accessible (mode %04o); run: chmod 600 %s", path, who(m), m, path))
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, warns, fmt.Errorf("read secrets: %w", err)
	}
	return b, warns, nil
}

// who names the widest class that has any access in mode m.
func who(m fs.FileMode) string {
	if m&0o007 != 0 {
		return "world"
	}
	return "group"
}

// WritePrivateKey writes host's private key to dir/HOST.key (0600, directory
// 0700), replacing any key there.
func WritePrivateKey(dir, host string, k wgkey.Private) error {
	if !ValidName(host) {
		return fmt.Errorf("write private key: %q is not a host name", host)
	}
	if k.IsZero() {
		return fmt.Errorf("write private key of %s: the key is zero", host)
	}
	if err := trust.Path(dir); err != nil {
		return fmt.Errorf("write private key of %s: %w", host, err)
	}
	return atomicfile.Write(KeyFile(dir, host), []byte(k.Base64()+"\n"), 0o600, 0o700)
}

// WritePSK writes the preshared key of p to dir/A+B.psk (A < B; 0600, directory
// 0700), replacing any key there.
func WritePSK(dir string, p Pair, k wgkey.Key) error {
	if !ValidName(p[0]) || !ValidName(p[1]) || p[0] == p[1] {
		return fmt.Errorf("write preshared key: [%q, %q] is not a pair of host names", p[0], p[1])
	}
	if k.IsZero() {
		return fmt.Errorf("write preshared key of %s+%s: the key is zero", p[0], p[1])
	}
	if err := trust.Path(dir); err != nil {
		return fmt.Errorf("write preshared key of %s+%s: %w", p[0], p[1], err)
	}
	return atomicfile.Write(PSKFile(dir, p), []byte(k.String()+"\n"), 0o600, 0o700)
}

// RemoveHostSecrets deletes host's private key and every preshared key that
// names it. What is not there is not an error.
func RemoveHostSecrets(dir, host string) error {
	if !ValidName(host) {
		return fmt.Errorf("remove secrets: %q is not a host name", host)
	}
	var errs []error
	if err := os.Remove(KeyFile(dir, host)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		a, b, ok := strings.Cut(strings.TrimSuffix(e.Name(), pskSuffix), "+")
		if ok && strings.HasSuffix(e.Name(), pskSuffix) && (a == host || b == host) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove secrets of %s: %w", host, err)
	}
	return nil
}

// EnsureKeys makes the secrets directory dir complete for s, and s complete for
// it. A host with neither a public_key nor a private key gets a new private key
// (written to dir) and its public key set in s. A host whose private key is in
// dir gets its public key set in s if it had none; a public_key that doesn't
// match that private key is an error. A host with a public_key and no private
// key keeps its own (on the host, private_key_file). Every preshared pair of s
// without a key gets a new one. The spec stores every public key so that it is
// complete and can be committed without the secrets.
func EnsureKeys(s *Spec, dir string) error {
	sec, _, err := LoadSecrets(dir)
	if err != nil {
		return fmt.Errorf("ensure keys: %w", err)
	}
	var errs []error
	for i := range s.Hosts {
		h := &s.Hosts[i]
		priv, has := sec.PrivateKeys[h.Name]
		switch {
		case has && h.PublicKey.IsZero():
			h.PublicKey = priv.Public()
		case has && h.PublicKey != priv.Public():
			errs = append(errs, fmt.Errorf("host %s: public_key does not match the private key in %s", h.Name, KeyFile(dir, h.Name)))
		case !has && h.PublicKey.IsZero():
			k, err := wgkey.GeneratePrivate()
			if err == nil {
				err = WritePrivateKey(dir, h.Name, k)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			h.PublicKey = k.Public()
		}
	}
	for _, p := range s.PresharedKeys {
		if _, ok := sec.PresharedKeys[p.Key()]; ok {
			continue
		}
		k, err := wgkey.GeneratePSK()
		if err == nil {
			err = WritePSK(dir, p, k)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sec.PresharedKeys[p.Key()] = k
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ensure keys: %w", err)
	}
	return nil
}

// EnsureKeys runs EnsureKeys on the document's spec and records the public keys
// it derived or generated in the document. Call Validate first: keys are written
// to dir at once, the spec only by Save.
func (d *Document) EnsureKeys(dir string) error {
	s, err := d.Spec()
	if err != nil {
		return err
	}
	before := make([]wgkey.Key, len(s.Hosts))
	for i, h := range s.Hosts {
		before[i] = h.PublicKey
	}
	err = EnsureKeys(s, dir)
	for i := range s.Hosts {
		if k := s.Hosts[i].PublicKey; k != before[i] {
			if serr := d.SetHost(s.Hosts[i].Name, HostChanges{PublicKey: &k}); serr != nil {
				err = errors.Join(err, serr)
			}
		}
	}
	return err
}

// CheckSecrets checks the spec against its secrets: every host has a key, public
// keys match private ones, every preshared pair has a key. Keys in the secrets
// that the spec does not use are warnings.
func (s *Spec) CheckSecrets(sec Secrets) (errs, warns diag.List) {
	ps := &problems{src: &s.Source}
	names := map[string]bool{}
	for i := range s.Hosts {
		h := &s.Hosts[i]
		names[h.Name] = true
		f := index("hosts", i) + ".public_key"
		priv, has := sec.PrivateKeys[h.Name]
		switch {
		case !has && h.PublicKey.IsZero():
			ps.errorf(f, CodeKeyMissing, "host %s has no public_key and no private key %s%s in the secrets directory", h.Name, h.Name, keySuffix)
		case has && !h.PublicKey.IsZero() && priv.Public() != h.PublicKey:
			ps.errorf(f, CodeKeyMismatch, "host %s: public_key is not the public key of %s%s in the secrets directory (it is %s)", h.Name, h.Name, keySuffix, priv.Public())
		}
	}
	listed := map[Pair]bool{}
	for i, p := range s.PresharedKeys {
		listed[p.Key()] = true
		if _, ok := sec.PresharedKeys[p.Key()]; !ok {
			ps.errorf(index("preshared_keys", i), CodePSKMissing, "[%s, %s]: no preshared key %s+%s%s in the secrets directory", p[0], p[1], p.Key()[0], p.Key()[1], pskSuffix)
		}
	}
	var unused []string
	for h := range sec.PrivateKeys {
		if !names[h] {
			unused = append(unused, h+keySuffix)
		}
	}
	for p := range sec.PresharedKeys {
		if !listed[p] {
			unused = append(unused, p[0]+"+"+p[1]+pskSuffix)
		}
	}
	sort.Strings(unused)
	for _, f := range unused {
		ps.warnf("", CodeSecretUnused, "%s in the secrets directory is not used by the spec", f)
	}
	sortProblems(ps.errs)
	sortProblems(ps.warns)
	return list(ps.errs), list(ps.warns)
}

// retireKeys moves aside the private key in dir of each host whose public_key an
// edit set to another key: the host keeps its own key now. The returned function
// finishes the job: saved=true deletes the old keys, saved=false puts them back.
func (d *Document) retireKeys(dir string) (func(saved bool) error, error) {
	s, err := d.Spec()
	if err != nil {
		return nil, err
	}
	var moved []string
	restore := func(saved bool) error {
		var errs []error
		for _, path := range moved {
			aside := retiredPath(path)
			if saved {
				errs = append(errs, os.Remove(aside))
			} else {
				errs = append(errs, os.Rename(aside, path))
			}
		}
		return errors.Join(errs...)
	}
	for _, name := range d.setKeys {
		h, ok := s.HostByName(name)
		if !ok {
			continue
		}
		path := KeyFile(dir, name)
		b, _, err := readKeyFile(dir, path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, errors.Join(err, restore(false))
		}
		if k, err := wgkey.ParsePrivate(string(b)); err == nil && k.Public() == h.PublicKey {
			continue
		}
		if err := os.Rename(path, retiredPath(path)); err != nil {
			return nil, errors.Join(fmt.Errorf("retire the key of %s: %w", name, err), restore(false))
		}
		moved = append(moved, path)
	}
	return restore, nil
}

func retiredPath(keyFile string) string {
	return filepath.Join(filepath.Dir(keyFile), "."+filepath.Base(keyFile)+".retired")
}
