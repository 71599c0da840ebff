package keygen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
)

// GPGOptions say which keys to make or take and where their parts go.
type GPGOptions struct {
	// UID names new keys: "<UID> encryption" and "<UID> signing".
	UID string
	// EncryptKey and SignKey name existing keys (fingerprints) to use
	// instead of new ones; they are looked up in Import and FromHome.
	EncryptKey, SignKey string
	// Import are key files (armored or binary) read first.
	Import []string
	// FromHome is an existing GnuPG home to take EncryptKey/SignKey from
	// (read only: the keys are exported from it).
	FromHome string

	// PublicOut receives the recipient's public key, SignOut the signing
	// key's secret part: the two files the profile's key_files name (they
	// may be the same file). RecipientSecretOut receives the recipient's
	// secret key, which restores need and which belongs off this host.
	PublicOut, SignOut, RecipientSecretOut string
}

// GPGKeys is what GPG made or took.
type GPGKeys struct {
	Encrypt, Sign string // fingerprints
	// Written lists the files written; RecipientSecretOut is missing from
	// it when the recipient's secret key was not available (only its
	// public key was given).
	Written []string
}

// GPG makes (or takes) an encryption and a signing key in a throwaway
// GNUPGHOME and exports their parts to the files in o, none of which may
// exist. The keys get no passphrase: the appliance signs unattended.
func GPG(ctx context.Context, o GPGOptions) (*GPGKeys, error) {
	if o.PublicOut == "" || o.SignOut == "" {
		return nil, fmt.Errorf("keygen gpg: the output files for the public and the signing key are required")
	}
	if err := checkFree(o.PublicOut, o.SignOut, o.RecipientSecretOut); err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "hostctl-gpg-")
	if err != nil {
		return nil, err
	}
	g := &gnupg{home: home}
	defer g.close()

	for _, f := range o.Import {
		if _, err := g.run(ctx, nil, "--import", f); err != nil {
			return nil, fmt.Errorf("import %s: %w", f, err)
		}
	}
	if o.FromHome != "" {
		for _, k := range []string{o.EncryptKey, o.SignKey} {
			if k == "" {
				continue
			}
			// The secret part if there is one, else the public key.
			data, err := execx.Output(ctx, "gpg", "--homedir", o.FromHome, "--batch", "--pinentry-mode", "loopback", "--armor", "--export-secret-keys", k)
			if err != nil || len(data) == 0 {
				data, err = execx.Output(ctx, "gpg", "--homedir", o.FromHome, "--batch", "--armor", "--export", k)
			}
			if err != nil {
				return nil, fmt.Errorf("export %s from %s: %w", k, o.FromHome, err)
			}
			if len(data) == 0 {
				return nil, fmt.Errorf("key %s is not in %s", k, o.FromHome)
			}
			if _, err := g.run(ctx, data, "--import"); err != nil {
				return nil, fmt.Errorf("import %s: %w", k, err)
			}
		}
	}

	keys := &GPGKeys{}
	uid := o.UID
	if uid == "" {
		uid = "hostctl backup"
	}
	if keys.Encrypt, err = g.key(ctx, o.EncryptKey, uid+" encryption", "encr"); err != nil {
		return nil, err
	}
	if keys.Sign, err = g.key(ctx, o.SignKey, uid+" signing", "sign"); err != nil {
		return nil, err
	}
	if keys.Encrypt == keys.Sign {
		return nil, fmt.Errorf("the encryption and the signing key are the same key %s: use two keys", keys.Encrypt)
	}

	pub, err := g.run(ctx, nil, "--armor", "--export", keys.Encrypt)
	if err != nil {
		return nil, err
	}
	signSecret, err := g.run(ctx, nil, "--armor", "--export-secret-keys", keys.Sign)
	if err != nil || len(signSecret) == 0 {
		return nil, fmt.Errorf("the signing key %s has no secret part here: the appliance needs it to sign: %v", keys.Sign, err)
	}
	outs := []struct {
		path string
		data []byte
	}{{o.PublicOut, pub}, {o.SignOut, signSecret}}
	if o.PublicOut == o.SignOut {
		outs = outs[:1]
		outs[0].data = append(append([]byte{}, pub...), signSecret...)
	}
	if o.RecipientSecretOut != "" {
		if sec, err := g.run(ctx, nil, "--armor", "--export-secret-keys", keys.Encrypt); err == nil && len(sec) > 0 {
			outs = append(outs, struct {
				path string
				data []byte
			}{o.RecipientSecretOut, sec})
		}
	}
	for _, f := range outs {
		if err := writeExclusive(f.path, f.data, 0o600); err != nil {
			return keys, err
		}
		keys.Written = append(keys.Written, f.path)
	}
	return keys, nil
}

// gnupg runs gpg on a throwaway home.
type gnupg struct{ home string }

func (g *gnupg) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	argv := append([]string{"gpg", "--homedir", g.home, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)
	var in *bytes.Reader
	c := execx.Cmd{Argv: argv}
	if stdin != nil {
		in = bytes.NewReader(stdin)
		c.In = in
	}
	return execx.Run(ctx, c)
}

// close stops the agent gpg started for the home and removes it.
func (g *gnupg) close() {
	_, _ = execx.Output(context.Background(), "gpgconf", "--homedir", g.home, "--kill", "all")
	os.RemoveAll(g.home)
}

// key returns the fingerprint of existing (which must be in the keyring
// and able to do usage), or of a new key for usage ("encr" or "sign").
func (g *gnupg) key(ctx context.Context, existing, uid, usage string) (string, error) {
	if existing != "" {
		out, err := g.run(ctx, nil, "--with-colons", "--fingerprint", "--list-keys", existing)
		if err != nil {
			return "", fmt.Errorf("key %s: not found among the imported keys: %w", existing, err)
		}
		fpr, caps := colonsKey(out)
		want := map[string]string{"encr": "E", "sign": "S"}[usage]
		if !strings.Contains(caps, want) {
			return "", fmt.Errorf("key %s cannot be used to %s (capabilities %q)", existing, map[string]string{"encr": "encrypt", "sign": "sign"}[usage], caps)
		}
		return fpr, nil
	}
	var out []byte
	var err error
	if usage == "encr" {
		// An ed25519 primary (certify only) with a cv25519 encryption subkey.
		out, err = g.run(ctx, nil, "--status-fd", "1", "--quick-gen-key", uid, "ed25519", "cert", "never")
	} else {
		out, err = g.run(ctx, nil, "--status-fd", "1", "--quick-gen-key", uid, "ed25519", "sign", "never")
	}
	if err != nil {
		return "", fmt.Errorf("generate the %s key: %w", usage, err)
	}
	fpr := createdKey(out)
	if fpr == "" {
		return "", fmt.Errorf("generate the %s key: gpg reported no KEY_CREATED", usage)
	}
	if usage == "encr" {
		if _, err := g.run(ctx, nil, "--quick-add-key", fpr, "cv25519", "encr", "never"); err != nil {
			return "", fmt.Errorf("add the encryption subkey: %w", err)
		}
	}
	return fpr, nil
}

// createdKey finds "[GNUPG:] KEY_CREATED P|B FPR" in gpg's status output.
func createdKey(status []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 4 && f[0] == "[GNUPG:]" && f[1] == "KEY_CREATED" {
			return f[3]
		}
	}
	return ""
}

// colonsKey returns the primary key's fingerprint and its overall
// capabilities (field 12 of the pub record: upper case for the whole key,
// subkeys included) from gpg --with-colons output.
func colonsKey(out []byte) (fpr, caps string) {
	inPub := false
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, ":")
		switch {
		case f[0] == "pub" && caps == "":
			if len(f) > 11 {
				caps = f[11]
			}
			inPub = true
		case f[0] == "fpr" && inPub && fpr == "" && len(f) > 9:
			fpr = f[9]
		case f[0] == "sub":
			inPub = false
		}
	}
	return fpr, caps
}
