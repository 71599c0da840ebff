package probe

import (
	"context"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/execx"
)

// CheckKeys checks the profile's keys without any network: the gpg key
// files hold the recipients (able to encrypt) and the signing key's secret
// part; the ssh identity parses. The configuration was validated already
// (files exist, mode 0600).
func CheckKeys(ctx context.Context, p *config.Profile) []Result {
	var out []Result
	e := p.Encryption
	switch e.Mode {
	case "repokey":
		out = append(out, Result{Check: "keys", Item: e.PassphraseFile, Detail: "passphrase file"})
	case "gpg":
		out = append(out, checkGPG(ctx, e))
	}
	if p.SSH.IdentityFile != "" {
		r := Result{Check: "keys", Item: p.SSH.IdentityFile}
		if _, s, err := identityAuth(p.SSH.IdentityFile); err != nil {
			r.Err = err
		} else {
			r.Detail = "ssh identity " + s.PublicKey().Type() + " " + ssh.FingerprintSHA256(s.PublicKey())
		}
		out = append(out, r)
	}
	return out
}

// gpgKey is one key of a key file, from gpg --show-keys --with-colons.
type gpgKey struct {
	fprs   []string // the primary key's and its subkeys' fingerprints
	caps   string   // usable capabilities of the whole key (E, S, C)
	secret bool
}

func checkGPG(ctx context.Context, e config.Encryption) Result {
	r := Result{Check: "keys", Item: strings.Join(e.KeyFiles, ", ")}
	home, err := os.MkdirTemp("", "hostctl-gpgcheck-")
	if err != nil {
		r.Err = err
		return r
	}
	defer os.RemoveAll(home)
	var keys []gpgKey
	for _, f := range e.KeyFiles {
		out, err := execx.Output(ctx, "gpg", "--homedir", home, "--batch", "--with-colons", "--show-keys", f)
		if err != nil {
			r.Err = fmt.Errorf("%s: %w", f, err)
			return r
		}
		keys = append(keys, parseShowKeys(string(out))...)
	}
	find := func(id string) *gpgKey {
		id = strings.ToUpper(strings.TrimPrefix(id, "0x"))
		for i := range keys {
			for _, f := range keys[i].fprs {
				if strings.HasSuffix(f, id) {
					return &keys[i]
				}
			}
		}
		return nil
	}
	var probs []string
	for _, id := range e.EncryptKeys {
		switch k := find(id); {
		case k == nil:
			probs = append(probs, fmt.Sprintf("recipient %s is in none of the key files", id))
		case !strings.Contains(k.caps, "E"):
			probs = append(probs, fmt.Sprintf("recipient %s cannot encrypt", id))
		}
	}
	if e.SignKey != "" {
		switch k := find(e.SignKey); {
		case k == nil:
			probs = append(probs, fmt.Sprintf("signing key %s is in none of the key files", e.SignKey))
		case !k.secret:
			probs = append(probs, fmt.Sprintf("signing key %s: only its public part is there; the appliance needs the secret key to sign", e.SignKey))
		case !strings.Contains(k.caps, "S"):
			probs = append(probs, fmt.Sprintf("signing key %s cannot sign", e.SignKey))
		}
	}
	if len(probs) > 0 {
		r.Err = fmt.Errorf("%s", strings.Join(probs, "; "))
		return r
	}
	r.Detail = fmt.Sprintf("gpg: %d recipient(s) can encrypt", len(e.EncryptKeys))
	if e.SignKey != "" {
		r.Detail += ", the signing key's secret part is there"
	}
	return r
}

func parseShowKeys(out string) []gpgKey {
	var keys []gpgKey
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, ":")
		switch f[0] {
		case "pub", "sec":
			k := gpgKey{secret: f[0] == "sec"}
			if len(f) > 11 {
				k.caps = f[11]
			}
			keys = append(keys, k)
		case "fpr":
			if len(keys) > 0 && len(f) > 9 {
				keys[len(keys)-1].fprs = append(keys[len(keys)-1].fprs, f[9])
			}
		}
	}
	return keys
}
