package qemutests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// TestHonestOutcomes plays the unlucky operator and the broken disk: a
// backup that is not complete is never "ok", and retention never acts on
// it. Two good backups are dated a year back, and then the profile's
// max_age (1D) is shorter than their age, so a retention run after any of
// the bad backups would remove them all.
//   - backup.source names a path the client's filesystem does not have:
//     the job fails naming the path, and the good archives are all there.
//   - a file whose blocks cannot be read (its extent tree block is zeroed
//     in the image: an I/O error even for root): the job ends "warning",
//     hostctl exits 5, the report names the file, and nothing is pruned.
//   - the next ok backup is followed by retention, which keeps it.
func TestHonestOutcomes(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	needTools(t, "debugfs")
	ctx := context.Background()
	c := newClient(t, e, "honest", "raw", smallTree)
	const unreadable = "data/unreadable.bin"
	require.NoError(t, testutil.FragmentedFile(filepath.Join(c.tree, unreadable), 12))
	require.NoError(t, fixture.MakeClientDisk(ctx, c.tree, c.disk, "raw", 64))
	require.NoError(t, testutil.CorruptExtentTree(ctx, c.disk, unreadable))

	etc := filepath.Dir(c.config)
	clientFile := func(source, exclude []string) {
		q := func(ss []string) string {
			var out []string
			for _, s := range ss {
				out = append(out, fmt.Sprintf("%q", s))
			}
			return "[" + strings.Join(out, ", ") + "]"
		}
		require.NoError(t, os.WriteFile(filepath.Join(etc, "clients", c.name+".toml"), []byte(fmt.Sprintf(
			"domain = %q\n\n[backup]\nsource = %s\nexclude = %s\n", c.domain, q(source), q(exclude))), 0o600))
	}
	pass := filepath.Join(etc, "secrets", "borg.pass")
	profile := func(retention string) {
		require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "local.toml"), []byte(fmt.Sprintf(`backend = "borg"
target = "file://%s/{client}"
[encryption]
mode = "repokey"
passphrase_file = %q
%s`, filepath.Dir(c.repo), pass, retention)), 0o600))
	}

	// Two good backups, dated a year ago, kept (no retention yet).
	profile("")
	clientFile([]string{"/"}, []string{fixture.Excluded, "/" + unreadable})
	for _, at := range []string{"2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z"} {
		code, _, _ := hostctl(t, ctx, "run", "-c", c.config, "--backup-time", at)
		if code != 0 {
			dumpJobLog(t, c)
		}
		require.Equal(t, 0, code, "a good backup")
	}
	good := c.archives(t)
	require.Len(t, good, 2)
	// From now on a retention run would remove both: borg's --keep-within
	// counts from now.
	profile("[retention]\nmax_age = \"1D\"\n")

	t.Run("missing-source", func(t *testing.T) {
		clientFile([]string{"/etc", "/srv/no-such-dir"}, []string{fixture.Excluded})
		code, out, _ := hostctl(t, ctx, "run", "--json", "-c", c.config)
		t.Logf("archives after the run: %v", c.archives(t))
		require.Equal(t, 1, code, "a source that does not exist fails the run")
		reps := parseReports(t, out)
		require.Len(t, reps, 1)
		require.Equal(t, "failed", reps[0].Status)
		require.Contains(t, reps[0].Error, "/srv/no-such-dir", "the reason names the path")
		require.Equal(t, good, c.archives(t), "no retention after a failed backup: the good archives are all there")
		c.requireNothingLeft(t)
	})

	t.Run("unreadable-file", func(t *testing.T) {
		clientFile([]string{"/"}, []string{fixture.Excluded})
		code, out, _ := hostctl(t, ctx, "run", "--json", "-c", c.config)
		t.Logf("archives after the run: %v", c.archives(t))
		require.Equal(t, 5, code, "a backup with warnings exits 5")
		reps := parseReports(t, out)
		require.Len(t, reps, 1)
		require.Equal(t, "warning", reps[0].Status)
		require.Contains(t, out, unreadable, "the report names the file it could not read")
		got := c.archives(t)
		require.Len(t, got, 3, "the archive was written, and nothing pruned: %v", got)
		require.Equal(t, good, got[:2])
		c.requireNothingLeft(t)

		code, status, _ := hostctl(t, ctx, "status", "-c", c.config)
		require.Equal(t, 5, code, "hostctl status of a run with a warning")
		require.Contains(t, status, "warning")
		require.Contains(t, status, unreadable)
	})

	t.Run("ok-then-retention", func(t *testing.T) {
		// An ok backup again: now retention runs. borg prune
		// --keep-within 24H keeps today's two archives, --keep-last 1
		// (max_age alone) the newest of the others, and removes the
		// oldest.
		clientFile([]string{"/"}, []string{fixture.Excluded, "/" + unreadable})
		code, out, _ := hostctl(t, ctx, "run", "--json", "-c", c.config)
		got := c.archives(t)
		t.Logf("archives after the run: %v", got)
		require.Equal(t, 0, code)
		reps := parseReports(t, out)
		require.Len(t, reps, 1)
		require.Equal(t, "ok", reps[0].Status)
		require.Contains(t, got, reps[0].Archive, "the newest backup survives its retention")
		require.NotContains(t, got, good[0], "retention ran after the ok backup")
		require.Len(t, got, 3, "today's two and the newest before them (--keep-last 1 counts after --keep-within)")
		require.Contains(t, got, good[1])
		c.requireNothingLeft(t)
	})
}
