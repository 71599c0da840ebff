package qemutests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// TestTwoDestinations backs one shut-off client up to two destinations
// (profiles = ["local", "second"]: borg and restic, file:// targets) with
// one snapshot and one appliance boot: one report row per destination,
// each repository holds the backup, list and restore --profile read the
// second. Then the second target is down (restic over sftp to a port where
// nothing listens): the first destination still gets its backup, the
// second's row fails with the reason, and the run's exit code is 1.
func TestTwoDestinations(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	needTools(t, "restic")
	ctx := context.Background()
	c := newClient(t, e, "td", "qcow2", smallTree)
	etc := filepath.Join(c.dir, "etc")
	pass := filepath.Join(etc, "secrets", "second.pass")
	require.NoError(t, os.WriteFile(pass, []byte("second secret\n"), 0o600))
	second := func(body string) {
		require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "second.toml"), []byte(body), 0o600))
	}
	restic := filepath.Join(c.dir, "restic")
	second(fmt.Sprintf("backend = \"restic\"\ntarget = \"file://%s/{client}\"\n[encryption]\npassphrase_file = %q\n", restic, pass))
	clientFile := filepath.Join(etc, "clients", "td.toml")
	body, err := os.ReadFile(clientFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(clientFile, append([]byte("profiles = [\"local\", \"second\"]\n"), body...), 0o600))

	rows := func(wantCode int) map[string]string {
		t.Helper()
		code, out, _ := hostctl(t, ctx, "run", "--json", "-c", c.config)
		if code != wantCode {
			dumpJobLog(t, c)
		}
		require.Equal(t, wantCode, code)
		got := map[string]string{}
		for _, r := range parseReports(t, out) {
			got[r.Profile] = r.Status
			if r.Status != job.StatusOK {
				got[r.Profile] += ": " + r.Error
			} else {
				require.NotNil(t, r.Stats, "an ok destination has its statistics")
			}
		}
		return got
	}

	require.Equal(t, map[string]string{"local": job.StatusOK, "second": job.StatusOK}, rows(0))
	require.Len(t, c.archives(t), 1)
	r := resticRepo{repo: filepath.Join(restic, "td"), pass: pass}
	require.Len(t, r.snapshots(t), 1)
	r.run(t, "check")

	code, out, _ := hostctl(t, ctx, "list", "-c", c.config, "td", "--profile", "second", "--json")
	require.Equal(t, 0, code)
	var snaps []job.Snapshot
	require.NoError(t, json.Unmarshal([]byte(out), &snaps))
	require.Len(t, snaps, 1)
	require.Equal(t, job.KindSnapshot, snaps[0].Kind, "the restic repository's snapshot, not borg's archive")
	require.Regexp(t, `^[0-9a-f]{64}$`, snaps[0].Archive, "a restic snapshot id (borg's archives are named td-…)")
	dst := filepath.Join(t.TempDir(), "restored")
	code, _, _ = hostctl(t, ctx, "restore", "-c", c.config, "td", "--profile", "second", "--to-dir", dst)
	require.Equal(t, 0, code)
	c.requireTree(t, dst)

	ssh := startSSHD(t)
	second(fmt.Sprintf(`backend = "restic"
target = "sftp://root@%s:%d%s/{client}"
[encryption]
passphrase_file = %q
[ssh]
identity_file = %q
known_hosts = %q
`, guestHost, freePort(t), ssh.root+"/restic", pass, ssh.identity, ssh.knownHosts))
	got := rows(1)
	require.Equal(t, job.StatusOK, got["local"], "the first destination does not depend on the second")
	require.Regexp(t, `^failed: .*target unreachable`, got["second"])
	require.Len(t, c.archives(t), 2)
	c.requireNothingLeft(t)
}
