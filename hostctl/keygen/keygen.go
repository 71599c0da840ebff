// Package keygen makes the keys a profile refers to: the GnuPG encryption
// and signing keys of duplicity profiles (with gpg, in a throwaway
// GNUPGHOME) and the ed25519 identity the appliance logs in to an ssh
// target with. It never overwrites a file: every output is created
// exclusively, secrets with mode 0600.
package keygen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExists is returned when an output file exists already.
var ErrExists = errors.New("exists already (keygen never overwrites a key: move it away first)")

// checkFree fails when any of paths exists, before anything is generated.
func checkFree(paths ...string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s %w", p, ErrExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeExclusive creates p (and its directory, mode 0700) with data and
// mode; it fails if p exists.
func writeExclusive(p string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s %w", p, ErrExists)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(p)
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(p)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return f.Close()
}
