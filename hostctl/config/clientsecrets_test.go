package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
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

// A rest:// profile with a user, a password and a maintenance password per
// client: each client's job disk carries its own password and the CA, and
// never the maintenance password.
func TestPerClientRESTSecrets(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"profiles/p.toml": "backend = \"restic\"\ntarget = \"rest://{client}@nas:8000/{client}\"\nappend_only = true\n" +
			"[encryption]\npassphrase_file = \"secrets/p.pass\"\n[retention]\nkeep_last = 3\n" +
			"[rest]\npassword_file = \"secrets/{client}.rest\"\nca_file = \"secrets/ca.pem\"\n" +
			"[maintenance]\npassword_file = \"secrets/{client}.rest-prune\"\nport = 8001\n",
		"clients/db.toml": "",
	})
	for _, f := range []string{"web.rest", "db.rest", "web.rest-prune", "db.rest-prune", "ca.pem"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", f), []byte(f+"\n"), 0o600))
	}
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	cls, err := c.SelectClients([]string{"web", "db"})
	require.NoError(t, err)
	for _, rc := range cls {
		require.Equal(t, target.Target{Scheme: target.REST, User: rc.Name, Host: "nas", Port: 8000, Path: "/" + rc.Name}, rc.Target)
		require.Equal(t, map[target.Secret]string{
			target.RESTPassword: filepath.Join(dir, "secrets", rc.Name+".rest"),
			target.RESTCA:       filepath.Join(dir, "secrets", "ca.pem"),
		}, rc.Secrets.Target, "the job disk: its own password, the CA, no maintenance password")
		require.Equal(t, filepath.Join(dir, "secrets", rc.Name+".rest-prune"), rc.Profile.Maintenance.PasswordFile)
		require.Equal(t, 8001, rc.Profile.Maintenance.Port)
	}
}
