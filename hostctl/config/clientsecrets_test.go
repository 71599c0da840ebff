package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

// TestPerClientSecrets: a profile's secret files may carry {client}, so
// that every client has its own passphrase; a missing one is reported with
// the client, the file and the key.
func TestPerClientSecrets(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "secrets/p.pass", "secrets/{client}.pass", 1),
		"clients/db.toml": "",
	})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "web.pass"), []byte("web secret\n"), 0o600))
	_, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.Error(t, err)
	var errs config.Errors
	require.ErrorAs(t, err, &errs)
	require.Len(t, errs, 1, "web's passphrase is there: %v", err)
	require.Equal(t, filepath.Join(dir, "profiles", "p.toml"), errs[0].File)
	require.Equal(t, 4, errs[0].Line)
	require.Equal(t, "encryption.passphrase_file", errs[0].Key)
	require.Contains(t, errs[0].Msg, "client db: "+filepath.Join(dir, "secrets", "db.pass")+" does not exist")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "db.pass"), []byte("db secret\n"), 0o600))
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	cls, err := c.SelectClients([]string{"web", "db"})
	require.NoError(t, err)
	for _, rc := range cls {
		p := rc.Profile
		require.Equal(t, filepath.Join(dir, "secrets", rc.Name+".pass"), p.Encryption.PassphraseFile)
		require.Equal(t, filepath.Join(dir, "secrets", rc.Name+".pass"), rc.Secrets.Passphrase, "its job disk's passphrase")
		require.True(t, p.Name == "p" && c.Profiles["p"].Encryption.PassphraseFile == filepath.Join(dir, "secrets", "{client}.pass"),
			"the profile itself keeps the placeholder")
	}
}

func TestPerClientSecretsPlaceholders(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "secrets/p.pass", "secrets/{name}.pass", 1),
	})
	_, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.Error(t, err)
	require.Contains(t, err.Error(), `key "encryption.passphrase_file": "`+filepath.Join(dir, "secrets", "{name}.pass")+`": unknown placeholder {name} (only {client} is replaced)`)
	// A missing per-client file is forgiven where keygen makes it.
	dir = writeTree(t, map[string]string{
		"profiles/p.toml": strings.Replace(baseTree["profiles/p.toml"], "secrets/p.pass", "secrets/{client}.pass", 1),
	})
	c, err := config.LoadAllowMissing(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	require.True(t, c.Profiles["p"].PerClient())
}
