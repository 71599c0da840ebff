package jobdisk

import (
	"strings"

	"os"
	"os/exec"
	"path/filepath"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// backupJob is a job Marshal accepts.
func backupJob() *job.Job {
	return &job.Job{Version: job.Version, Mode: job.ModeBackup, Client: "web", RunID: "r1",
		Repo:   &job.Repo{Backend: "borg", Target: target.Target{Scheme: target.File, Path: "/srv/backup/web"}, Encryption: "none"},
		Backup: &job.Backup{Archive: "web-r1"}}
}

func TestCreateIsValidFAT32(t *testing.T) {
	p := filepath.Join(t.TempDir(), "job.img")
	j := backupJob()
	require.NoError(t, Create(p, j, map[string][]byte{"secret-passphrase": []byte("s3cret\n")}))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, int64(Size), fi.Size())
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	fsck := testutil.NeedTool(t, "fsck.vfat", "dosfstools")
	out, err := exec.Command(fsck, "-n", p).CombinedOutput()
	require.NoError(t, err, "fsck.vfat -n: %s", out)

	require.Error(t, Create(p, j, nil), "a job disk is never reused")
}

func TestReadMissingResult(t *testing.T) {
	p := filepath.Join(t.TempDir(), "job.img")
	j := backupJob()
	require.NoError(t, Create(p, j, nil))
	c, err := Read(p)
	require.NoError(t, err)
	require.Nil(t, c.Result)
	require.Nil(t, c.Log)
}

// TestReadWrittenByLinux checks that files the appliance's vfat driver
// writes (long names) are read back; mtools stands in for the kernel.
func TestReadWrittenByLinux(t *testing.T) {
	mcopy := testutil.NeedTool(t, "mcopy", "mtools")
	dir := t.TempDir()
	p := filepath.Join(dir, "job.img")
	j := backupJob()
	require.NoError(t, Create(p, j, nil))
	res := filepath.Join(dir, job.FileResult)
	require.NoError(t, os.WriteFile(res, []byte(`{"type":"done","done":{"status":"ok"}}`+"\n"), 0o644))
	out, err := exec.Command(mcopy, "-i", p, res, "::/"+job.FileResult).CombinedOutput()
	require.NoError(t, err, "%s", out)
	c, err := Read(p)
	require.NoError(t, err)
	r, err := job.ParseResult(c.Result)
	require.NoError(t, err)
	require.Equal(t, job.StatusOK, r.Done.Status)
}

// TestReadBackSizes reads back results of sizes around and across
// cluster boundaries (go-diskfs returned NULs past the end of a file that
// ended inside a cluster).
func TestReadBackSizes(t *testing.T) {
	for _, size := range []int{1, 511, 513, 1000, 1900, 2049, 4095, 5000, 9000, 70000} {
		p := filepath.Join(t.TempDir(), "job.img")
		j := backupJob()
		require.NoError(t, Create(p, j, nil))
		want := []byte(strings.Repeat("r", size-1) + "\n")
		d, err := diskfs.Open(p)
		require.NoError(t, err)
		fsys, err := d.GetFilesystem(0)
		require.NoError(t, err)
		require.NoError(t, writeFile(fsys, "/"+job.FileResult, want))
		require.NoError(t, d.Close())
		c, err := Read(p)
		require.NoError(t, err)
		require.Equal(t, string(want), string(c.Result), "size %d", size)
	}
}
