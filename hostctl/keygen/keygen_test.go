package keygen

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

func TestSSH(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secrets", "id")
	k, err := SSH(p, "hostctl@test")
	require.NoError(t, err)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	s, err := ssh.ParsePrivateKey(data)
	require.NoError(t, err)
	require.Equal(t, ssh.FingerprintSHA256(s.PublicKey()), k.Fingerprint)
	pub, err := os.ReadFile(p + ".pub")
	require.NoError(t, err)
	pk, comment, _, _, err := ssh.ParseAuthorizedKey(pub)
	require.NoError(t, err)
	require.Equal(t, "hostctl@test", comment)
	require.Equal(t, s.PublicKey().Marshal(), pk.Marshal())

	_, err = SSH(p, "again")
	require.ErrorIs(t, err, ErrExists)
	again, _ := os.ReadFile(p)
	require.Equal(t, data, again, "never overwritten")
}

func needGPG(t *testing.T) {
	t.Helper()
	testutil.NeedTool(t, "gpg", "gnupg")
}

func TestGPGNewKeys(t *testing.T) {
	needGPG(t)
	dir := t.TempDir()
	o := GPGOptions{UID: "test", PublicOut: filepath.Join(dir, "pub.asc"), SignOut: filepath.Join(dir, "sign.asc"), RecipientSecretOut: filepath.Join(dir, "secret.asc")}
	k, err := GPG(context.Background(), o)
	require.NoError(t, err)
	require.Len(t, k.Encrypt, 40)
	require.Len(t, k.Sign, 40)
	require.NotEqual(t, k.Encrypt, k.Sign)
	require.Equal(t, []string{o.PublicOut, o.SignOut, o.RecipientSecretOut}, k.Written)
	for _, f := range k.Written {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
	pub, _ := os.ReadFile(o.PublicOut)
	require.Contains(t, string(pub), "BEGIN PGP PUBLIC KEY BLOCK")
	require.NotContains(t, string(pub), "PRIVATE")
	sign, _ := os.ReadFile(o.SignOut)
	require.Contains(t, string(sign), "BEGIN PGP PRIVATE KEY BLOCK")

	// A second run stops before making anything.
	_, err = GPG(context.Background(), o)
	require.ErrorIs(t, err, ErrExists)

	// Existing keys, taken from files: the same fingerprints come out.
	dir2 := t.TempDir()
	k2, err := GPG(context.Background(), GPGOptions{
		EncryptKey: k.Encrypt, SignKey: k.Sign, Import: []string{o.RecipientSecretOut, o.SignOut},
		PublicOut: filepath.Join(dir2, "both.asc"), SignOut: filepath.Join(dir2, "both.asc"),
	})
	require.NoError(t, err)
	require.Equal(t, k.Encrypt, k2.Encrypt)
	require.Equal(t, k.Sign, k2.Sign)
	require.Equal(t, []string{filepath.Join(dir2, "both.asc")}, k2.Written)

	// Existing keys, taken from a GnuPG home (which is only read).
	home := t.TempDir()
	out, err := exec.Command("gpg", "--homedir", home, "--batch", "--import", o.RecipientSecretOut, o.SignOut).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	dir3 := t.TempDir()
	k3, err := GPG(context.Background(), GPGOptions{
		EncryptKey: k.Encrypt, SignKey: k.Sign, FromHome: home,
		PublicOut: filepath.Join(dir3, "pub.asc"), SignOut: filepath.Join(dir3, "sign.asc"), RecipientSecretOut: filepath.Join(dir3, "secret.asc"),
	})
	require.NoError(t, err)
	require.Equal(t, k.Encrypt, k3.Encrypt)
	require.Equal(t, k.Sign, k3.Sign)
	require.Len(t, k3.Written, 3)

	// A public-only key cannot sign for the appliance.
	_, err = GPG(context.Background(), GPGOptions{
		SignKey: k.Encrypt, Import: []string{o.PublicOut},
		PublicOut: filepath.Join(dir2, "p.asc"), SignOut: filepath.Join(dir2, "s.asc"),
	})
	require.Error(t, err)
}

func TestPassphrase(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secrets", "web.passphrase")
	require.NoError(t, Passphrase(p))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	a, _ := os.ReadFile(p)
	require.Len(t, a, 45, "32 bytes, base64, newline")
	require.ErrorIs(t, Passphrase(p), ErrExists, "never overwritten")
	q := p + "2"
	require.NoError(t, Passphrase(q))
	b, _ := os.ReadFile(q)
	require.NotEqual(t, a, b)
}
