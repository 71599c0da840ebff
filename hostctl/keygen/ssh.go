package keygen

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// SSHKey is a new ssh identity as written.
type SSHKey struct {
	Path, PubPath string
	Fingerprint   string // SHA256:…, as ssh-keygen -l shows it
	AuthorizedKey string // the .pub line, for authorized_keys
}

// SSH writes a new ed25519 private key in OpenSSH format to path (0600) and
// its public half to path.pub (0644). Neither may exist.
func SSH(path, comment string) (*SSHKey, error) {
	pubPath := path + ".pub"
	if err := checkFree(path, pubPath); err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("encode ssh key: %w", err)
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	line := AuthorizedKeyLine(spub, comment)
	if err := writeExclusive(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	if err := writeExclusive(pubPath, []byte(line), 0o644); err != nil {
		return nil, err
	}
	return &SSHKey{Path: path, PubPath: pubPath, Fingerprint: ssh.FingerprintSHA256(spub), AuthorizedKey: line}, nil
}

// AuthorizedKeyLine is "TYPE BASE64 COMMENT\n".
func AuthorizedKeyLine(k ssh.PublicKey, comment string) string {
	line := string(ssh.MarshalAuthorizedKey(k)) // ends in \n
	if comment != "" {
		line = line[:len(line)-1] + " " + comment + "\n"
	}
	return line
}
