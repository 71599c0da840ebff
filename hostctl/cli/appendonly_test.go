package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAppendOnlyProfile: keygen ssh makes the backup key and the
// maintenance key, and check says that backup jobs never apply the
// profile's retention.
func TestAppendOnlyProfile(t *testing.T) {
	cfg := clientTree(t, `backend = "borg"
target = "ssh://backup@nas/srv/backup/{client}"
append_only = true
[encryption]
passphrase_file = "secrets/p.pass"
[retention]
keep_daily = 7
[ssh]
identity_file = "secrets/nas_ed25519"
known_hosts = "secrets/nas.known_hosts"
[maintenance]
identity_file = "secrets/nas-prune_ed25519"
`)
	dir := filepath.Dir(cfg)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "secrets"), 0o700))
	for _, f := range []string{"p.pass", "nas.known_hosts"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", f), []byte("x\n"), 0o600))
	}
	code, out, stderr := runMain(t, "keygen", "ssh", "p", "-c", cfg)
	require.Equal(t, ExitOK, code, stderr)
	for _, k := range []string{"nas_ed25519", "nas-prune_ed25519"} {
		require.Contains(t, out, "wrote  "+filepath.Join(dir, "secrets", k+".pub"))
	}
	a, _ := os.ReadFile(filepath.Join(dir, "secrets", "nas_ed25519.pub"))
	b, _ := os.ReadFile(filepath.Join(dir, "secrets", "nas-prune_ed25519.pub"))
	require.NotEqual(t, string(a), string(b), "two keys")

	code, out, stderr = runMain(t, "check", "--offline", "-c", cfg)
	require.Equal(t, ExitOK, code, stderr)
	require.Contains(t, out, "target:      ssh://backup@nas/srv/backup/web (append-only: its key runs only borg serve --append-only on this repository; hostctl prune deletes with "+filepath.Join(dir, "secrets", "nas-prune_ed25519")+")")
	require.Contains(t, out, "borg prune --log-json --list --glob-archives 'web-*' --keep-daily 7")
	require.Contains(t, out, "(never run by backup jobs: the target is append-only; hostctl prune runs it with "+filepath.Join(dir, "secrets", "nas-prune_ed25519"))

}

// TestPruneRefusesOtherProfiles: hostctl prune names why a client it is
// asked for cannot be pruned (its backups prune themselves), and without
// clients it has nothing to do.
func TestPruneRefusesOtherProfiles(t *testing.T) {
	cfg := clientTree(t, "backend = \"borg\"\ntarget = \"file:///srv/backup/{client}\"\nencryption.mode = \"none\"\n[retention]\nkeep_daily = 7\n")
	code, _, stderr := runMain(t, "prune", "web", "-c", cfg)
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, "prune web: profile p is not append-only: its backup jobs apply its retention")
	code, out, stderr := runMain(t, "prune", "-c", cfg)
	require.Equal(t, ExitOK, code, stderr)
	require.Contains(t, out, "no client to prune")
}
