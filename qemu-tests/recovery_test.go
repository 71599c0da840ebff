package qemutests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// TestRestoreListVerify runs, for borg, restic and duplicity in turn on
// one shut-off Small client: two backups at set times, the second followed
// by the verify that verify_every = 2 schedules (restic: of a sample of 3
// files, verify_sample = 3); list (kinds, sizes);
// a file-level restore of two paths from the first backup chosen by
// --time; and (borg, restic) a verify of a repository corrupted on the
// host, which must fail and say why. At the end the verify scratch space on the cache
// volume is gone and nothing is left behind.
func TestRestoreListVerify(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	needTools(t, "restic", "duplicity", "debugfs")
	ctx := context.Background()
	c := newClient(t, e, "rv", "qcow2", smallTree)
	etc := filepath.Join(c.dir, "etc")
	clientFile := filepath.Join(etc, "clients", "rv.toml")
	body, err := os.ReadFile(clientFile)
	require.NoError(t, err)
	schedule := func(keys string) {
		require.NoError(t, os.WriteFile(clientFile, append([]byte(keys), body...), 0o600))
	}
	pass := filepath.Join(etc, "secrets", "borg.pass")

	for _, backend := range []string{"borg", "restic", "duplicity"} {
		t.Run(backend, func(t *testing.T) {
			start := time.Now()
			sample := 0
			if backend == "restic" { // one scheduled verify of a random sample
				sample = 3
			}
			schedule(fmt.Sprintf("verify_every = 2\nverify_sample = %d\n", sample))
			target := filepath.Join(c.dir, backend)
			require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "local.toml"), []byte(fmt.Sprintf(`backend = %q
target = "file://%s/{client}"
[encryption]
mode = "repokey"
passphrase_file = %q
`, backend, target, pass)), 0o600))

			// Two backups; the second one's run verifies (verify_every = 2).
			var reports []*report.Job
			for _, at := range []string{"2026-03-01T10:00:00Z", "2026-03-02T10:00:00Z"} {
				code, out, _ := hostctl(t, ctx, "run", "-c", c.config, "--json", "--backup-time", at)
				if code != 0 {
					dumpJobLog(t, c)
				}
				require.Equal(t, 0, code)
				reports = nil
				require.NoError(t, json.Unmarshal([]byte(out), &reports))
			}
			require.Len(t, reports, 2, "backup + scheduled verify")
			v := reports[1]
			require.Equal(t, report.ModeVerify, v.Mode)
			require.Equal(t, job.StatusOK, v.Status, v.Error)
			require.NotNil(t, v.Stats)
			if sample > 0 {
				require.Equal(t, int64(sample), v.Stats.Files, "verify_sample files compared")
				require.NotNil(t, v.Verify)
				require.Contains(t, v.Verify.Method, "3 file(s) chosen at random")
			} else {
				require.GreaterOrEqual(t, v.Stats.Files, int64(15), "every item of the tree compared")
				require.Greater(t, v.Stats.OriginalSize, int64(3<<20), "the big file's bytes compared")
			}

			// list: two backups, their kinds and sizes.
			code, out, _ := hostctl(t, ctx, "list", "-c", c.config, "rv", "--json")
			require.Equal(t, 0, code)
			var snaps []job.Snapshot
			require.NoError(t, json.Unmarshal([]byte(out), &snaps))
			require.Len(t, snaps, 2)
			require.Equal(t, "2026-03-01", snaps[0].Time.UTC().Format(time.DateOnly))
			require.Equal(t, "2026-03-02", snaps[1].Time.UTC().Format(time.DateOnly))
			for _, sn := range snaps {
				require.True(t, sn.VM, "%s: every backend stores a VM record beside each backup", sn.Archive)
			}
			switch backend {
			case "duplicity":
				require.Equal(t, []string{job.KindFull, job.KindIncr}, []string{snaps[0].Kind, snaps[1].Kind})
				require.Greater(t, snaps[0].DedupSize, int64(1<<20), "the full backup's volumes hold the big file")
				require.Greater(t, snaps[1].DedupSize, int64(0))
				require.Less(t, snaps[1].DedupSize, snaps[0].DedupSize, "an unchanged incremental is small")
			default:
				require.Equal(t, []string{job.KindSnapshot, job.KindSnapshot}, []string{snaps[0].Kind, snaps[1].Kind})
				require.Greater(t, snaps[0].OriginalSize, int64(3<<20), "the backup holds the big file")
				require.Equal(t, snaps[0].OriginalSize, snaps[1].OriginalSize, "the same tree twice")
			}

			// File-level restore of the first backup, chosen by time.
			dst := filepath.Join(t.TempDir(), "files")
			code, out, _ = hostctl(t, ctx, "restore", "-c", c.config, "rv", "--to-dir", dst,
				"--time", "2026-03-01T12:00:00Z", "--path", "etc/hostname", "--path", "/data/with space")
			require.Equal(t, 0, code)
			require.Contains(t, out, "backup "+snaps[0].Archive+" ", "--time picked the first backup")
			got, err := fixture.Scan(dst)
			require.NoError(t, err)
			var paths []string
			for p := range got {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			require.Equal(t, []string{"data", "data/with space", "data/with space/file name.txt", "etc", "etc/hostname"}, paths)
			want := c.want(t)
			for _, p := range []string{"etc/hostname", "data/with space/file name.txt"} {
				g, w := got[p], want[p]
				g.HardlinkGroup, w.HardlinkGroup = "", ""
				require.Equal(t, w, g, p)
			}
			if backend == "restic" { // restores nothing, silently, for a path it does not have
				code, _, stderr := hostctl(t, ctx, "restore", "-c", c.config, "rv", "--to-dir", filepath.Join(t.TempDir(), "none"), "--path", "etc/nosuch")
				require.Equal(t, 1, code)
				require.Contains(t, stderr, "not in backup", "a path not in the backup is named")
				require.Contains(t, stderr, "etc/nosuch")
			}

			if backend == "duplicity" {
				// Its verify of a corrupted volume fails in gpg as restore
				// does; borg and restic show the detection, at a boot less.
				t.Logf("%s took %s", backend, time.Since(start).Round(time.Second))
				return
			}
			// A corrupted repository fails the verify, with the reason.
			corrupt(t, filepath.Join(target, "rv"))
			code, out, stderr := hostctl(t, ctx, "verify", "-c", c.config, "rv", "--json")
			require.Equal(t, 1, code, "a verify of a corrupted repository fails")
			reports = nil
			require.NoError(t, json.Unmarshal([]byte(out), &reports))
			require.Len(t, reports, 1)
			require.Equal(t, job.StatusFailed, reports[0].Status)
			require.Contains(t, reports[0].Error, "verify failed")
			require.Contains(t, reports[0].Error, "repository data damaged", "the reason, in the operator's words")
			t.Logf("%s: corrupted repository: %s", backend, reports[0].Error)
			require.Contains(t, stderr, "report: ", "reported like a run")
			t.Logf("%s took %s", backend, time.Since(start).Round(time.Second))
		})
	}
	requireNoScratch(t, c)
	c.requireNothingLeft(t)
}

// corrupt flips bytes in the middle of the largest data file of a
// repository: the one holding the big file's data.
func corrupt(t *testing.T, repo string) {
	t.Helper()
	var largest string
	var size int64
	filepath.WalkDir(repo, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if fi, err := d.Info(); err == nil && fi.Size() > size {
			largest, size = p, fi.Size()
		}
		return nil
	})
	require.NotEmpty(t, largest)
	f, err := os.OpenFile(largest, os.O_RDWR, 0)
	if os.IsPermission(err) {
		require.NoError(t, os.Chmod(largest, 0o600))
		f, err = os.OpenFile(largest, os.O_RDWR, 0)
	}
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt([]byte(strings.Repeat("\xde\xad\xbe\xef", 1024)), size/2)
	require.NoError(t, err)
	t.Logf("corrupted %s (%d bytes) at %d", largest, size, size/2)
}

// requireNoScratch reads the cache volume's filesystem on the host: the
// verify scratch directory must be gone.
func requireNoScratch(t *testing.T, c *client) {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "cache.raw")
	out, err := exec.Command("qemu-img", "convert", "-O", "raw", filepath.Join(c.stateDir, "caches", c.name+".qcow2"), raw).CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("debugfs", "-R", "ls -p /verify", raw).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// ls -p: /inode/mode/uid/gid/name/size/
		f := strings.Split(l, "/")
		if len(f) > 5 && f[5] != "." && f[5] != ".." && f[5] != "" {
			t.Fatalf("verify scratch left on the cache volume: %s", l)
		}
	}
	require.Contains(t, string(out), "/.", "the verify directory exists: verifies ran")
}
