package runner

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// TestJobDiskOnRunDir: the job disk, which carries the client's secrets,
// is made on the run dir (a tmpfs), never under the state dir, and removed
// with its directory after the job; the appliance's result and log are
// kept in the job's directory under the state dir.
func TestJobDiskOnRunDir(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	var img string
	j.hv.onStart = func(x string) error {
		img = applianceDisk(t, x)
		require.NoError(t, writeResult(img, okStats, job.Done{Status: job.StatusOK}.Record()))
		delete(j.hv.live, domainName(x))
		return nil
	}
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, StatusOK, rep.Status, rep.Error)
	require.Equal(t, filepath.Join(j.r.Cfg.Host.RunDir, j.r.RunID, "web", "job.img"), img)
	require.False(t, strings.HasPrefix(img, j.r.Cfg.Host.StateDir+"/"), "job disk %s under the state dir", img)
	require.NoDirExists(t, filepath.Join(j.r.Cfg.Host.RunDir, j.r.RunID), "the job's directory on the run dir is removed")
	require.FileExists(t, filepath.Join(j.r.jobDir("web"), job.FileResult), "the result is kept with the job's logs")
	j.requireNothingLeft(t)
}

// TestKilledJobDiskRemovedByNextRun: the job disk and its directory a
// killed hostctl left on the run dir are removed by the next run.
func TestKilledJobDiskRemovedByNextRun(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	var crashed, img string
	j.hv.onStart = func(x string) error {
		img = applianceDisk(t, x)
		crashed = crashLedger(t, j.l)
		delete(j.hv.live, domainName(x)) // powers off (without a result)
		return nil
	}
	j.r.Backup(context.Background(), j.c)
	// What the killed run left on the run dir.
	require.NoError(t, os.MkdirAll(filepath.Dir(img), 0o700))
	require.NoError(t, os.WriteFile(img, []byte("secrets"), 0o600))
	l, err := ledger.Open(crashed)
	require.NoError(t, err)
	_, err = Reconcile(context.Background(), newFakeHV(), j.lm, l, io.Discard)
	require.NoError(t, err)
	require.NoFileExists(t, img)
	require.NoDirExists(t, filepath.Join(j.r.Cfg.Host.RunDir, j.r.RunID))
	left, _ := l.List()
	require.Empty(t, left)
}

// TestBackupRefusedWhenStateDirFull: below min_free_space in the state
// dir, a job is refused before its hooks and its snapshot.
func TestBackupRefusedWhenStateDirFull(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	j.r.Cfg.Host.MinFreeSpace = config.Size(1 << 60)
	marker := filepath.Join(j.dir, "pre-ran")
	j.c.Hooks = config.Hooks{PreSnapshot: "touch " + marker, Transport: config.TransportLocal}
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "the state dir "+j.r.Cfg.Host.StateDir+" has ")
	require.Contains(t, rep.Error, "less than min_free_space (1.0 EiB): no snapshot taken")
	require.Empty(t, j.lm.calls, "no LVM snapshot")
	require.NotContains(t, j.hv.calls, "snapshot web")
	require.NoFileExists(t, marker, "no hook ran")
	j.requireNothingLeft(t)

	j.r.Cfg.Host.MinFreeSpace = 1 << 20 // there is a MiB free
	rep = j.r.Backup(context.Background(), j.c)
	require.NotContains(t, rep.Error, "min_free_space")
}

// TestInMemory cross-checks InMemory with stat(1)'s filesystem type, for
// directories that exist and one that does not (its parent's filesystem).
func TestInMemory(t *testing.T) {
	stat, err := exec.LookPath("stat")
	require.NoError(t, err)
	for _, dir := range []string{"/dev/shm", "/run", "/proc", t.TempDir()} {
		out, err := exec.Command(stat, "-f", "-c", "%T", dir).Output()
		if err != nil {
			continue // not on this machine
		}
		want := strings.TrimSpace(string(out)) == "tmpfs" || strings.TrimSpace(string(out)) == "ramfs"
		got, err := InMemory(dir)
		require.NoError(t, err, dir)
		require.Equal(t, want, got, "%s is %s", dir, out)
		got, err = InMemory(filepath.Join(dir, "not", "yet"))
		require.NoError(t, err, dir)
		require.Equal(t, want, got, "below %s", dir)
	}
}
