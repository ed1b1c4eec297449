package controller

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/wgnet/wgnet/internal/atomicfile"
)

// backupMagic is the first entry of every backup archive; its content is the
// format's version.
const backupMagic = "wgnet-controller-backup"

// BackupOptions say what Backup copies. Store is the database's file name in
// the data directory (and the archive); Snapshot writes a consistent copy of
// the database to a new file at path (SQLite: VACUUM INTO, which reads one
// snapshot while the controller keeps serving).
type BackupOptions struct {
	DataDir  string
	Store    string
	Snapshot func(ctx context.Context, path string) error
}

// Backup writes to out (0600: it holds the CA's private key; written to a
// temporary file, synced and renamed) a tar archive of the CA and a consistent
// snapshot of the store. The CA files never change once made, so the archive
// is one consistent state. It returns the names archived.
func Backup(ctx context.Context, o BackupOptions, out string) ([]string, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".wgnet-backup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	snap := filepath.Join(tmp, o.Store)
	if err := o.Snapshot(ctx, snap); err != nil {
		return nil, fmt.Errorf("backup: snapshot of the store: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte, mode int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	names := []string{}
	if err := add(backupMagic, []byte("1\n"), 0o600); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name, path string
		mode       int64
	}{{CACertFile, filepath.Join(o.DataDir, CACertFile), 0o644}, {CAKeyFile, filepath.Join(o.DataDir, CAKeyFile), 0o600}, {o.Store, snap, 0o600}} {
		b, err := os.ReadFile(f.path)
		if errors.Is(err, fs.ErrNotExist) && f.name != o.Store {
			continue // a controller serving with --tls-cert has no CA of its own
		}
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		if err := add(f.name, b, f.mode); err != nil {
			return nil, err
		}
		names = append(names, f.name)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return names, atomicfile.Write(out, buf.Bytes(), 0o600, 0o700)
}

// Restore unpacks a backup archive into dataDir, which must be empty or not
// exist yet (a restore never mixes with a controller's state). Only the files
// a backup holds are accepted; it returns their names.
func Restore(archive, dataDir, storeName string) ([]string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	if ents, err := os.ReadDir(dataDir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("restore: %s is not empty: restore into a new data directory", dataDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	modes := map[string]os.FileMode{CACertFile: 0o644, CAKeyFile: 0o600, storeName: 0o600}
	tr := tar.NewReader(f)
	var names []string
	for i := 0; ; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return names, fmt.Errorf("restore %s: %w", archive, err)
		}
		if i == 0 {
			if h.Name != backupMagic {
				return nil, fmt.Errorf("restore %s: not a wgnet controller backup", archive)
			}
			continue
		}
		mode, ok := modes[h.Name]
		if !ok || h.Typeflag != tar.TypeReg {
			return names, fmt.Errorf("restore %s: unexpected entry %q", archive, h.Name)
		}
		delete(modes, h.Name)
		b, err := io.ReadAll(io.LimitReader(tr, 1<<34))
		if err != nil {
			return names, fmt.Errorf("restore %s: %w", archive, err)
		}
		if err := atomicfile.Write(filepath.Join(dataDir, h.Name), b, mode, 0o700); err != nil {
			return names, err
		}
		names = append(names, h.Name)
	}
	if _, missing := modes[storeName]; missing {
		return names, fmt.Errorf("restore %s: no %s in the archive", archive, storeName)
	}
	return names, nil
}
