package backend

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// TestConformanceBreakLock: a backend killed while it held its lock
// leaves it in the repository, and to the next appliance (another host
// id, another hostname) it looks like a live one; a borg killed while it
// wrote its cache leaves it unreadable. With the real tools, each makes
// the next job fail; BreakLock removes them and the job then works. A
// repository that does not exist has no lock to break.
func TestConformanceBreakLock(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lockAsOtherHost takes the repository's lock as another host
		// would and is killed while it holds it.
		lockAsOtherHost func(t *testing.T, repo, cacheDir string)
		// blocked is the operation the stale lock stops.
		blocked func(b Backend, req Request) error
		want    string
	}{
		{"borg", func(t *testing.T, repo, cacheDir string) {
			cmd := exec.Command("borg", "with-lock", repo, "sh", "-c", "kill -9 $PPID")
			cmd.Env = append(os.Environ(), "BORG_HOST_ID=hostctl-appliance-of-an-earlier-boot", "BORG_PASSPHRASE=pw",
				"BORG_BASE_DIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "borg with-lock should have been killed: %s", out)
			// What a borg killed while it wrote its cache left (seen).
			configs, err := filepath.Glob(filepath.Join(cacheDir, "borg", "web", ".cache", "borg", "*", "config"))
			require.NoError(t, err)
			require.Len(t, configs, 1)
			require.NoError(t, os.WriteFile(configs[0], nil, 0o600))
		}, func(b Backend, req Request) error {
			req.Job.Backup = &job.Backup{Archive: "web-2", Time: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
			_, err := b.Backup(context.Background(), req)
			return err
		}, "Failed to create/acquire the lock"}, // first the lock; after break-lock alone, "…/config does not look like a Borg cache"
		{"restic", func(t *testing.T, repo, _ string) {
			// Another hostname (a UTS namespace): restic's own stale check
			// only trusts locks of its own host. restic writes a lock as
			// ID-tmp-XXX and renames it to ID: killed before the rename,
			// it leaves a file the next restic does not take for a lock
			// (seen under load). Wait for the renamed lock.
			cmd := exec.Command("unshare", "--uts", "sh", "-c", `hostname other-appliance
mkfifo "$2/in"
restic -r "$1" backup --stdin --stdin-filename x < "$2/in" >/dev/null 2>&1 &
pid=$!
exec 3> "$2/in"
for i in $(seq 300); do ls "$1/locks" | grep -qx '[0-9a-f]\{64\}' && break; sleep 0.1; done
kill -9 $pid`, "sh", repo, t.TempDir())
			cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=pw", "RESTIC_CACHE_DIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			locks, err := os.ReadDir(filepath.Join(repo, "locks"))
			require.NoError(t, err)
			require.NotEmpty(t, locks, "the killed restic's lock")
		}, func(b Backend, req Request) error {
			return b.Retain(context.Background(), req) // forget takes an exclusive lock
		}, "the `unlock` command can be used to remove stale locks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.NeedTool(t, tc.name, "run qemu-tests/setup-host.sh")
			testutil.NeedTool(t, "unshare", "util-linux")
			dir := t.TempDir()
			d := testDirs(t, dir)
			b, sink, req := testRepo(t, dir, d, job.Repo{Backend: tc.name, Encryption: "repokey", Retention: job.Retention{KeepLast: 1}})
			ctx := context.Background()
			require.NoError(t, b.BreakLock(ctx, req), "no repository yet")
			req.Job.Backup = &job.Backup{Archive: "web-1", Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
			_, err := b.Backup(ctx, req)
			require.NoError(t, err, "log:\n%s", sink)

			tc.lockAsOtherHost(t, req.Repo, d.Cache)
			err = tc.blocked(b, req)
			require.Error(t, err, "the stale lock should block: log:\n%s", sink)
			require.True(t, strings.Contains(err.Error(), tc.want), "%v", err)

			require.NoError(t, b.BreakLock(ctx, req), "log:\n%s", sink)
			require.NoError(t, tc.blocked(b, req), "after BreakLock: log:\n%s", sink)
			snaps, err := b.Snapshots(ctx, req)
			require.NoError(t, err)
			require.NotEmpty(t, snaps)
		})
	}
}
