package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// TestJobSecretsPerClient: with {client} in the profile's secret paths
// every client's job disk carries its own passphrase and key files, never
// another client's.
func TestJobSecretsPerClient(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	require.NoError(t, os.MkdirAll(secrets, 0o700))
	for _, c := range []string{"web", "db"} {
		require.NoError(t, os.WriteFile(filepath.Join(secrets, c+".pass"), []byte(c+" passphrase\n"), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(secrets, c+".id"), []byte(c+" identity\n"), 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(secrets, "known_hosts"), []byte("nas ssh-ed25519 AAAA\n"), 0o600))
	p := &config.Profile{Name: "p", Backend: "borg", Target: "ssh://backup@nas/srv/{client}",
		Encryption: config.Encryption{Mode: "repokey", PassphraseFile: filepath.Join(secrets, "{client}.pass")},
		SSH:        config.SSH{IdentityFile: filepath.Join(secrets, "{client}.id"), KnownHosts: filepath.Join(secrets, "known_hosts")}}
	cfg := &config.Config{Host: config.Host{StateDir: filepath.Join(dir, "state")},
		Profiles: map[string]*config.Profile{"p": p}, Clients: map[string]*config.Client{}}
	for _, c := range []string{"web", "db"} {
		cfg.Clients[c] = &config.Client{Name: c, Domain: c, Profile: "p"}
	}
	r := New(cfg, Deps{}, WithRunID("20261125T000000Z"))
	for _, c := range []string{"web", "db"} {
		aj, err := r.newJob(resolve(t, cfg, cfg.Clients[c]), backupTable(&job.Backup{}))
		require.NoError(t, err)
		require.Equal(t, c+" passphrase\n", string(aj.secrets[secretPassphrase]), "client %s", c)
		require.Equal(t, c+" identity\n", string(aj.secrets[job.SecretFile(target.SSHIdentity)]), "client %s", c)
		require.Equal(t, "nas ssh-ed25519 AAAA\n", string(aj.secrets[job.SecretFile(target.SSHKnownHosts)]))
	}
}

// TestGPGKeysForOneJob: --gpg-key adds a key file to that job's keyring
// after the profile's own; a profile that does not use gpg refuses it.
func TestGPGKeysForOneJob(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(data), 0o600))
		return p
	}
	pub, sign, secret := write("pub.asc", "PUBLIC"), write("sign.asc", "SIGN"), write("secret.asc", "RECIPIENT SECRET")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "web"), 0o700)) // the repository
	p := &config.Profile{Name: "p", Backend: "duplicity", Target: "file://" + dir + "/{client}",
		Encryption: config.Encryption{Mode: "gpg", EncryptKeys: []string{"A"}, KeyFiles: []string{pub, sign}}}
	cfg := &config.Config{Host: config.Host{StateDir: filepath.Join(dir, "state")},
		Profiles: map[string]*config.Profile{"p": p}, Clients: map[string]*config.Client{"web": {Name: "web", Domain: "web", Profile: "p"}}}
	r := New(cfg, Deps{}, WithRunID("20261125T000000Z"))
	c := resolve(t, cfg, cfg.Clients["web"])
	aj, err := r.newJob(c, verifyTable(&job.Verify{}), withGPGKeys(c, []string{secret}))
	require.NoError(t, err)
	require.Equal(t, []string{secretGPGKey + "0", secretGPGKey + "1", secretGPGKey + "2"}, aj.job.Repo.GPG.KeyFiles)
	require.Equal(t, "RECIPIENT SECRET", string(aj.secrets[secretGPGKey+"2"]))

	c.Profile.Encryption = config.Encryption{Mode: "none"}
	c.Profile.Backend = "borg"
	_, err = r.newJob(c, verifyTable(&job.Verify{}), withGPGKeys(c, []string{secret}))
	require.ErrorContains(t, err, "does not encrypt with gpg")
}

// TestAppendOnlyBackupJob: a backup job of an append-only profile carries
// no retention (its key can only add) and never the maintenance key, whose
// only use is pruning.
func TestAppendOnlyBackupJob(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	require.NoError(t, os.MkdirAll(secrets, 0o700))
	files := map[string]string{"pass": "passphrase\n", "id": "backup identity\n", "maint": "MAINTENANCE identity\n", "known_hosts": "nas ssh-ed25519 AAAA\n"}
	for f, data := range files {
		require.NoError(t, os.WriteFile(filepath.Join(secrets, f), []byte(data), 0o600))
	}
	p := &config.Profile{Name: "p", Backend: "borg", Target: "ssh://backup@nas/srv/{client}", AppendOnly: true,
		Encryption:  config.Encryption{Mode: "repokey", PassphraseFile: filepath.Join(secrets, "pass")},
		Retention:   config.Retention{KeepLast: 3, KeepDaily: 7},
		SSH:         config.SSH{IdentityFile: filepath.Join(secrets, "id"), KnownHosts: filepath.Join(secrets, "known_hosts")},
		Maintenance: config.Maintenance{IdentityFile: filepath.Join(secrets, "maint")}}
	cfg := &config.Config{Host: config.Host{StateDir: filepath.Join(dir, "state")},
		Profiles: map[string]*config.Profile{"p": p}, Clients: map[string]*config.Client{"web": {Name: "web", Domain: "web", Profile: "p"}}}
	r := New(cfg, Deps{}, WithRunID("20261125T000000Z"))
	aj, err := r.newJob(resolve(t, cfg, cfg.Clients["web"]), backupTable(&job.Backup{}))
	require.NoError(t, err)
	require.True(t, aj.job.Repo.Retention.Empty(), "retention: %+v", aj.job.Repo.Retention)
	require.Equal(t, "backup identity\n", string(aj.secrets[job.SecretFile(target.SSHIdentity)]))
	for name, data := range aj.secrets {
		require.NotContains(t, string(data), "MAINTENANCE", "job disk file %s", name)
	}
}
