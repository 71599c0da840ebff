package jobdisk

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestCreateIsValidFAT32(t *testing.T) {
	p := filepath.Join(t.TempDir(), "job.img")
	j := &job.Job{Version: job.Version, Mode: job.ModeBackup, Client: "web", RunID: "r1"}
	require.NoError(t, Create(p, j, map[string][]byte{"secret-passphrase": []byte("s3cret\n")}))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, int64(Size), fi.Size())
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	fsck, err := exec.LookPath("fsck.vfat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("fsck.vfat (dosfstools) missing under CI")
		}
		t.Skip("fsck.vfat (dosfstools) not installed")
	}
	out, err := exec.Command(fsck, "-n", p).CombinedOutput()
	require.NoError(t, err, "fsck.vfat -n: %s", out)

	require.Error(t, Create(p, j, nil), "a job disk is never reused")
}

func TestReadMissingResult(t *testing.T) {
	p := filepath.Join(t.TempDir(), "job.img")
	j := &job.Job{Version: job.Version, Mode: job.ModeBackup, Client: "web", RunID: "r1"}
	require.NoError(t, Create(p, j, nil))
	c, err := Read(p)
	require.NoError(t, err)
	require.Nil(t, c.Result)
	require.Nil(t, c.Log)
}

// TestReadWrittenByLinux checks that files the appliance's vfat driver
// writes (long names) are read back; mtools stands in for the kernel.
func TestReadWrittenByLinux(t *testing.T) {
	mcopy, err := exec.LookPath("mcopy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mcopy (mtools) missing under CI")
		}
		t.Skip("mcopy (mtools) not installed")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "job.img")
	j := &job.Job{Version: job.Version, Mode: job.ModeBackup, Client: "web", RunID: "r1"}
	require.NoError(t, Create(p, j, nil))
	res := filepath.Join(dir, job.FileResult)
	require.NoError(t, os.WriteFile(res, []byte(`{"type":"done","status":"ok"}`+"\n"), 0o644))
	out, err := exec.Command(mcopy, "-i", p, res, "::/"+job.FileResult).CombinedOutput()
	require.NoError(t, err, "%s", out)
	c, err := Read(p)
	require.NoError(t, err)
	r, err := job.ParseResult(c.Result)
	require.NoError(t, err)
	require.Equal(t, job.StatusOK, r.Done.Status)
}
