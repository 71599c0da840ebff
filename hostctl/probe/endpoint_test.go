package probe

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/keygen"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

func TestEndpointFor(t *testing.T) {
	for _, c := range []struct {
		url, name, dial, user string
	}{
		{"sftp://backup@10.0.2.2:2222/srv/x", "[10.0.2.2]:2222", "127.0.0.1:2222", "backup"},
		{"sftp://nas.example.net/srv/x", "nas.example.net", "nas.example.net:22", "root"},
		{"ssh://b@nas:22/srv", "nas", "nas:22", "b"},
	} {
		u, err := target.Parse(c.url)
		require.NoError(t, err)
		e := EndpointFor(u, "10.0.2.2")
		require.Equal(t, c.name, e.Name, c.url)
		require.Equal(t, c.dial, e.Dial, c.url)
		require.Equal(t, c.user, e.User, c.url)
	}
}

// TestPinnedHostKey: a key pinned the way target setup pins it is
// accepted under the target's name, on port 22 (which known_hosts names
// without a port) as on another; another key is refused as a change.
// (Port 22 failed in knownhosts' SplitHostPort until the README's setup
// ran against a server on port 22.)
func TestPinnedHostKey(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	key, err := ssh.NewPublicKey(priv.Public())
	require.NoError(t, err)
	_, other, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	otherKey, err := ssh.NewPublicKey(other.Public())
	require.NoError(t, err)
	for _, url := range []string{"sftp://backup@10.0.2.2/srv/x", "sftp://backup@10.0.2.2:2222/srv/x", "ssh://b@nas.example.net:22/srv"} {
		u, err := target.Parse(url)
		require.NoError(t, err)
		e := EndpointFor(u, "10.0.2.2")
		kh := filepath.Join(t.TempDir(), "known_hosts")
		require.NoError(t, appendKnownHost(kh, e.Name, key))
		cb, err := pinnedHostKey(e, kh)
		require.NoError(t, err)
		remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
		require.NoError(t, cb(e.Dial, remote, key), url)
		err = cb(e.Dial, remote, otherKey)
		require.ErrorContains(t, err, "the host key of "+e.Name+" changed", url)
	}
}

func TestKnownHostsHas(t *testing.T) {
	data := []byte("# comment\n[10.0.2.2]:2222 ssh-ed25519 AAAA\nnas,192.0.2.1 ssh-rsa AAAA\n@revoked old ssh-rsa AAAA\n")
	require.True(t, knownHostsHas(data, "[10.0.2.2]:2222"))
	require.True(t, knownHostsHas(data, "192.0.2.1"))
	require.True(t, knownHostsHas(data, "old"))
	require.False(t, knownHostsHas(data, "10.0.2.2"))
}

func TestDirChecks(t *testing.T) {
	root := t.TempDir()
	rows := dirChecks(localFS{}, "borg", "c", filepath.Join(root, "missing", "c"))
	require.Len(t, rows, 2)
	require.NoError(t, rows[0].Err)
	require.Contains(t, rows[0].Detail, "does not exist yet")
	require.Contains(t, rows[1].Detail, "first backup")

	borg := filepath.Join(root, "borg")
	require.NoError(t, os.MkdirAll(filepath.Join(borg, "data"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(borg, "config"), nil, 0o600))
	rows = dirChecks(localFS{}, "borg", "c", borg)
	require.NoError(t, rows[1].Err)
	require.Equal(t, "borg repository", rows[1].Detail)
	rows = dirChecks(localFS{}, "restic", "c", borg)
	require.Error(t, rows[1].Err, "a borg repository is no restic repository")

	ro := filepath.Join(root, "ro")
	require.NoError(t, os.Mkdir(ro, 0o500))
	if os.Geteuid() != 0 { // root writes anywhere
		rows = dirChecks(localFS{}, "borg", "c", ro)
		require.Error(t, rows[0].Err)
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		require.NotContains(t, e.Name(), ".hostctl-check", "the test file is removed")
	}
}

func TestCheckKeysGPG(t *testing.T) {
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg is not installed")
	}
	dir := t.TempDir()
	o := keygen.GPGOptions{PublicOut: filepath.Join(dir, "pub.asc"), SignOut: filepath.Join(dir, "sign.asc")}
	k, err := keygen.GPG(context.Background(), o)
	require.NoError(t, err)
	enc := config.Encryption{Mode: "gpg", EncryptKeys: []string{k.Encrypt}, SignKey: k.Sign, KeyFiles: []string{o.PublicOut, o.SignOut}}
	r := checkGPG(context.Background(), enc)
	require.NoError(t, r.Err)
	require.Contains(t, r.Detail, "secret part")

	// The signing key given as public only; the recipient missing.
	enc.KeyFiles = []string{o.PublicOut}
	r = checkGPG(context.Background(), enc)
	require.ErrorContains(t, r.Err, "signing key "+k.Sign+" is in none of the key files")
	enc.EncryptKeys = []string{"0123456789ABCDEF0123456789ABCDEF01234567"}
	r = checkGPG(context.Background(), enc)
	require.ErrorContains(t, r.Err, "recipient 0123456789ABCDEF0123456789ABCDEF01234567 is in none")
	// The signing key named as recipient: it cannot encrypt.
	enc = config.Encryption{Mode: "gpg", EncryptKeys: []string{k.Sign}, KeyFiles: []string{o.SignOut}}
	r = checkGPG(context.Background(), enc)
	require.ErrorContains(t, r.Err, "cannot encrypt")
}
