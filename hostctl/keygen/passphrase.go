package keygen

import (
	"crypto/rand"
	"encoding/base64"
)

// Passphrase writes a new random repository passphrase (32 bytes from the
// system's CSPRNG, base64, one line) to path, mode 0600, creating its
// directory (0700). path must not exist.
func Passphrase(path string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return writeExclusive(path, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600)
}

// Password writes a new random password (32 bytes, unpadded URL-safe
// base64: it may stand in a URL as it is, as in restic's
// rest:https://user:password@host/) to path, mode 0600, failing if path
// exists.
func Password(path string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return writeExclusive(path, []byte(base64.RawURLEncoding.EncodeToString(b)+"\n"), 0o600)
}
