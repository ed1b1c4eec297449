package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"

	"github.com/wgnet/wgnet/internal/compile"
	"github.com/wgnet/wgnet/internal/intent"
	"github.com/wgnet/wgnet/internal/spec"
	"github.com/wgnet/wgnet/internal/wgkey"
)

// network is a loaded spec, its secrets and its compiled configs.
type network struct {
	path    string
	spec    *spec.Spec
	secrets spec.Secrets
	hosts   []intent.Host
}

// loadSpecNetwork loads the spec in file and its secrets and compiles them.
// Warnings go to stderr; they never stop the command.
func loadSpecNetwork(file string, stderr io.Writer) (*network, error) {
	l, err := lockToRead(file)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	s, err := spec.Load(file)
	if err != nil {
		return nil, err
	}
	sec, warns, err := spec.LoadSecrets(spec.SecretsDir(file))
	for _, w := range warns {
		fmt.Fprintln(stderr, "wgnet: warning:", w.Message)
	}
	if err != nil {
		return nil, err
	}
	hcs, err := compile.Compile(s, sec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &network{path: file, spec: s, secrets: sec, hosts: hcs}, nil
}

// lockToRead takes the lock of the spec file at path shared (spec.LockSpec), for
// a command that reads the spec and its secrets: it then never sees keys an edit
// has written but not yet recorded in the spec. A spec that does not exist is not
// locked, so that no lock file is left where there is no spec; reading it then
// fails as it would have.
func lockToRead(path string) (*spec.Lock, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return &spec.Lock{}, nil
	}
	return spec.LockSpec(path, false)
}

// loadSpecShared loads the spec in file under its shared lock.
func loadSpecShared(file string) (*spec.Spec, error) {
	l, err := lockToRead(file)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	return spec.Load(file)
}

// host returns the compiled config of the host called name.
func (n *network) host(name string) (*intent.Host, error) {
	for i := range n.hosts {
		if n.hosts[i].Name == name {
			return &n.hosts[i], nil
		}
	}
	return nil, fmt.Errorf("%s: no host called %q", n.path, name)
}

// editSpec runs edit on the spec in file under its lock (spec.Edit): generates
// the keys the result needs and saves it; nothing is written unless the edited
// spec is valid.
func editSpec(file string, edit func(d *spec.Document) error) error {
	return spec.Edit(file, edit)
}

// parseKeyFile checks a --private-key-file value: a path that lands in a root
// shell hook must be data (wgkey.ValidPath).
func parseKeyFile(s string) (string, error) {
	if s != "" && !wgkey.ValidPath(s) {
		return "", usageError{fmt.Errorf("--private-key-file %q: must be %s", s, wgkey.PathRule)}
	}
	return s, nil
}

func parsePrefixes(flag string, in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("--%s %q: not a CIDR prefix like 10.0.4.0/24", flag, s)}
		}
		if p != p.Masked() {
			return nil, usageError{fmt.Errorf("--%s %q: host bits set; did you mean %s?", flag, s, p.Masked())}
		}
		out = append(out, p)
	}
	return out, nil
}

func parseAddrs(flag string, in []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range in {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("--%s %q: not an IP address", flag, s)}
		}
		out = append(out, a)
	}
	return out, nil
}

// stderrOf is where commands write warnings.
var stderrOf io.Writer = os.Stderr
