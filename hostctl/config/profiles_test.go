package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

// TestShippedProfiles loads every example profile in profiles/ with the
// secret files it names present (0600): the examples must stay valid.
func TestShippedProfiles(t *testing.T) {
	shipped, err := filepath.Glob(filepath.Join("..", "..", "profiles", "*.toml"))
	require.NoError(t, err)
	require.NotEmpty(t, shipped)
	secrets := []string{"local-borg-web.passphrase", "sftp-restic-web.passphrase", "s3-restic-web.passphrase", "nas_ed25519", "nas.known_hosts",
		"backup-recipient.asc", "backup-sign.asc", "s3.access", "s3.secret",
		"append-only-borg-web.passphrase", "nas-borg_ed25519", "nas-borg-prune_ed25519",
		"append-only-rest-web.passphrase", "rest-web.password", "rest-web.prune-password", "rest-server.pem"}
	for _, p := range shipped {
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			dir := writeTree(t, map[string]string{"profiles/" + name: string(data)})
			for _, s := range secrets {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", s), []byte("x\n"), 0o600))
			}
			_, err = config.Load(filepath.Join(dir, "hostctl.toml"))
			require.NoError(t, err)
		})
	}
}
