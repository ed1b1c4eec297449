package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// removeFiles deletes what join wrote in dir: the state (base and journal), the config (with the
// credential) and the private key when it is the one join made there.
func removeFiles(dir, keyFile string) error {
	var errs []error
	for _, f := range []string{StateFile, JournalFile, UnresolvedFile, ConfigFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if keyFile == filepath.Join(dir, KeyFile) {
		if err := os.Remove(keyFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
