package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// clientTree is a configuration whose profile names per-client secret
// files, with the clients web and db and none of their secrets yet.
func clientTree(t *testing.T, profile string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"hostctl.toml":     "default_profile = \"p\"\nstate_dir = \"state\"\n",
		"profiles/p.toml":  profile,
		"clients/web.toml": "",
		"clients/db.toml":  "",
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return filepath.Join(dir, "hostctl.toml")
}

// TestKeygenPassphrasePerClient: keygen passphrase makes one passphrase
// per client of a {client} profile, keeps the ones there, and check then
// accepts the configuration; before, check names the client, the file
// and the key that is missing.
func TestKeygenPassphrasePerClient(t *testing.T) {
	cfg := clientTree(t, "backend = \"borg\"\ntarget = \"file:///srv/backup/{client}\"\n[encryption]\npassphrase_file = \"secrets/p-{client}.passphrase\"\n")
	dir := filepath.Dir(cfg)
	code, _, stderr := runMain(t, "check", "--offline", "-c", cfg)
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, `profiles/p.toml:4: key "encryption.passphrase_file": client db: `+filepath.Join(dir, "secrets", "p-db.passphrase")+" does not exist")
	require.Contains(t, stderr, "client web: "+filepath.Join(dir, "secrets", "p-web.passphrase")+" does not exist")

	require.NoError(t, os.MkdirAll(filepath.Join(dir, "secrets"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "p-web.passphrase"), []byte("kept\n"), 0o600))
	code, out, stderr := runMain(t, "keygen", "passphrase", "p", "-c", cfg)
	require.Equal(t, ExitOK, code, stderr)
	require.Contains(t, out, "kept   "+filepath.Join(dir, "secrets", "p-web.passphrase"))
	require.Contains(t, out, "wrote  "+filepath.Join(dir, "secrets", "p-db.passphrase"))
	web, _ := os.ReadFile(filepath.Join(dir, "secrets", "p-web.passphrase"))
	require.Equal(t, "kept\n", string(web), "never overwritten")
	fi, err := os.Stat(filepath.Join(dir, "secrets", "p-db.passphrase"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	code, out, stderr = runMain(t, "check", "--offline", "-c", cfg)
	require.Equal(t, ExitOK, code, stderr)
	require.Contains(t, out, "passphrase file "+filepath.Join(dir, "secrets", "p-db.passphrase"), "check shows each client's own file")
}

func TestKeygenSSHPerClient(t *testing.T) {
	cfg := clientTree(t, "backend = \"borg\"\ntarget = \"ssh://backup@nas/srv/{client}\"\nencryption.mode = \"none\"\n[ssh]\nidentity_file = \"secrets/{client}_ed25519\"\nknown_hosts = \"secrets/nas.known_hosts\"\n")
	dir := filepath.Dir(cfg)
	code, out, stderr := runMain(t, "keygen", "ssh", "p", "-c", cfg)
	require.Equal(t, ExitOK, code, stderr)
	for _, c := range []string{"db", "web"} {
		require.Contains(t, out, "wrote  "+filepath.Join(dir, "secrets", c+"_ed25519.pub"))
	}
	a, _ := os.ReadFile(filepath.Join(dir, "secrets", "web_ed25519.pub"))
	b, _ := os.ReadFile(filepath.Join(dir, "secrets", "db_ed25519.pub"))
	require.NotEqual(t, a, b, "a key per client")
	code, out, _ = runMain(t, "keygen", "ssh", "p", "-c", cfg)
	require.Equal(t, ExitOK, code)
	require.Equal(t, 2, strings.Count(out, "kept "), out)
}

func TestKeygenGPGRefusesClientKeys(t *testing.T) {
	cfg := clientTree(t, "backend = \"duplicity\"\ntarget = \"file:///srv/{client}\"\n[encryption]\nmode = \"gpg\"\nencrypt_keys = [\"X\"]\nkey_files = [\"secrets/{client}.asc\"]\n")
	code, _, stderr := runMain(t, "keygen", "gpg", "p", "-c", cfg)
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, "keygen gpg makes one key pair per profile")
}

// check --connect checks each client's own keys when the profile's secret
// files carry {client}.
func TestCheckConnectPerClientKeys(t *testing.T) {
	target := t.TempDir()
	cfg := clientTree(t, "backend = \"borg\"\ntarget = \"file://"+target+"/{client}\"\n[encryption]\npassphrase_file = \"secrets/p-{client}.passphrase\"\n")
	dir := filepath.Dir(cfg)
	code, _, stderr := runMain(t, "keygen", "passphrase", "p", "-c", cfg)
	require.Equal(t, ExitOK, code, stderr)
	// The clients' domains do not exist: those rows fail, the keys' pass.
	_, out, _ := runMain(t, "check", "--offline", "--connect", "-c", cfg)
	for _, c := range []string{"db", "web"} {
		require.Regexp(t, `profile p \(client `+c+`\)\s+keys\s+OK\s+`+regexp.QuoteMeta(filepath.Join(dir, "secrets", "p-"+c+".passphrase")), out)
	}
}
