package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/config/configtest"
)

// twoDestinations is the example configuration with web backed up to
// local-borg and to a second borg repository, "nas".
func twoDestinations(t *testing.T) string {
	t.Helper()
	path := configtest.Example(t)
	dir := filepath.Dir(path)
	local, err := os.ReadFile(filepath.Join(dir, "profiles", "local-borg.toml"))
	require.NoError(t, err)
	nas := strings.Replace(string(local), `target = "file:///srv/backup/{client}"`, `target = "file:///srv/nas/{client}"`, 1)
	require.NotEqual(t, string(local), nas)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "profiles", "nas.toml"), []byte(nas), 0o644))
	web := filepath.Join(dir, "clients", "web.toml")
	body, err := os.ReadFile(web)
	require.NoError(t, err)
	body = []byte(strings.Replace(string(body), "\nprofile = \"local-borg\"\n", "\nprofiles = [\"local-borg\", \"nas\"]\n", 1))
	require.NoError(t, os.WriteFile(web, body, 0o644))
	return path
}

// --profile picks each client's destination by name; no --profile is the
// first; a name the client does not have is refused.
func TestDestinationsByProfile(t *testing.T) {
	cfg, err := config.Load(twoDestinations(t))
	require.NoError(t, err)
	cls, err := cfg.SelectClients([]string{"web"})
	require.NoError(t, err)
	for _, tc := range []struct{ profile, want string }{{"", "/srv/backup/web"}, {"local-borg", "/srv/backup/web"}, {"nas", "/srv/nas/web"}} {
		got, err := destinations(cls, tc.profile)
		require.NoError(t, err, tc.profile)
		require.Len(t, got, 1)
		assert.Equal(t, tc.want, got[0].Target.Path, "--profile %q", tc.profile)
	}
	_, err = destinations(cls, "offsite")
	var ue *UsageError
	require.ErrorAs(t, err, &ue)
	assert.EqualError(t, err, `client web has no destination with profile "offsite" (its profiles: local-borg, nas)`)
}

// list, restore and verify refuse a --profile the client does not have
// before they take the lock or boot anything, naming the client's profiles.
func TestProfileFlagUnknown(t *testing.T) {
	path := twoDestinations(t)
	for _, args := range [][]string{
		{"list", "web"},
		{"restore", "web", "--to-dir", filepath.Join(t.TempDir(), "r")},
		{"verify", "web"},
	} {
		code, _, stderr := runMain(t, append(args, "--profile", "offsite", "--config", path)...)
		assert.Equal(t, ExitUsage, code, args)
		assert.Contains(t, stderr, `client web has no destination with profile "offsite" (its profiles: local-borg, nas)`, args)
	}
}

// check shows each of a client's destinations with its own profile,
// target and secrets, in the order of its profiles.
func TestCheckDestinations(t *testing.T) {
	code, out, stderr := runMain(t, "check", "--offline", "--config", twoDestinations(t), "web")
	require.Equal(t, 0, code, stderr)
	first := strings.Index(out, "destination: 1 of 2")
	second := strings.Index(out, "destination: 2 of 2")
	require.Positive(t, first, out)
	require.Greater(t, second, first, out)
	one, two := out[first:second], out[second:]
	assert.Contains(t, one, "--profile local-borg")
	assert.Contains(t, one, "target:      file:///srv/backup/web")
	assert.Contains(t, one, "secrets/local-borg-web.passphrase")
	assert.Contains(t, two, "--profile nas")
	assert.Contains(t, two, "target:      file:///srv/nas/web")
	assert.Equal(t, 1, strings.Count(out, "file:///srv/nas/web"), "the second target only in its own block")
	assert.NotContains(t, out, "default_profile", "the client names its profiles")
}

// prune prunes only a client's append-only destinations, each as its own
// row; a client with none is refused with the reason per profile.
func TestPrunableDestinations(t *testing.T) {
	path := configtest.Example(t)
	web := filepath.Join(filepath.Dir(path), "clients", "web.toml")
	body, err := os.ReadFile(web)
	require.NoError(t, err)
	write := func(profiles string) []*config.Resolved {
		b := strings.Replace(string(body), "\nprofile = \"local-borg\"\n", "\nprofiles = "+profiles+"\n", 1)
		require.NoError(t, os.WriteFile(web, []byte(b), 0o644))
		cfg, err := config.Load(path)
		require.NoError(t, err)
		cls, err := cfg.SelectClients([]string{"web"})
		require.NoError(t, err)
		return cls
	}
	cls := write(`["local-borg", "append-only-borg"]`)
	ds, why := prunableDestinations(cls[0])
	require.Empty(t, why)
	require.Len(t, ds, 1)
	assert.Equal(t, "append-only-borg", ds[0].Profile.Name)
	assert.Equal(t, 1, ds[0].Index)
	assert.Equal(t, "web (append-only-borg)", destName(ds[0]))

	cls = write(`["local-borg", "sftp-restic"]`)
	ds, why = prunableDestinations(cls[0])
	assert.Empty(t, ds)
	assert.Equal(t, "profile local-borg is not append-only: its backup jobs apply its retention; profile sftp-restic is not append-only: its backup jobs apply its retention", why)
}
