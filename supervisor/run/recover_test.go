package run

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
)

func TestRecoverArgv(t *testing.T) {
	ext := blockdev.Device{Dev: "vdc1", Target: "vda", Part: 1, FSType: "ext4", UUID: "u-1", Label: "root"}
	a, err := mkfsArgv(ext)
	require.NoError(t, err)
	require.Equal(t, []string{"mkfs.ext4", "-q", "-F", "-L", "root", "-U", "u-1", "/dev/vdc1"}, a)
	a, err = mkfsArgv(blockdev.Device{Dev: "vdd", FSType: "vfat", UUID: "ABCD-0001"})
	require.NoError(t, err)
	require.Equal(t, []string{"mkfs.vfat", "-i", "ABCD0001", "/dev/vdd"}, a)
	_, err = mkfsArgv(blockdev.Device{Dev: "vdd", Target: "vdb", FSType: "ntfs"})
	require.ErrorContains(t, err, `vdb: cannot create a "ntfs" filesystem`)

	cmds, err := setIDArgvs(blockdev.IDChange{Dev: ext, UUID: "u-2", Label: "new"})
	require.NoError(t, err)
	require.Equal(t, [][]string{{"e2fsck", "-f", "-p", "/dev/vdc1"}, {"tune2fs", "-U", "u-2", "/dev/vdc1"}, {"tune2fs", "-L", "new", "/dev/vdc1"}}, cmds)
	cmds, err = setIDArgvs(blockdev.IDChange{Dev: blockdev.Device{Dev: "vde", FSType: "xfs"}, UUID: "u-3"})
	require.NoError(t, err)
	require.Equal(t, [][]string{{"xfs_admin", "-U", "u-3", "/dev/vde"}}, cmds)
	cmds, err = setIDArgvs(blockdev.IDChange{Dev: blockdev.Device{Dev: "vdf", FSType: "vfat"}, UUID: "abcd-0002", Label: "EFI"})
	require.NoError(t, err)
	require.Equal(t, [][]string{{"fatlabel", "-i", "/dev/vdf", "ABCD0002"}, {"fatlabel", "/dev/vdf", "EFI"}}, cmds)
}

// TestRestoredBackupAndFiles: the backup a recovery would restore is
// found in the listing (by name, a restic id prefix, or the latest), and a
// backup with no file counts zero: the recovery refuses it before it
// empties anything.
func TestRestoredBackupAndFiles(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 3, 30, 0, 0, time.UTC)
	snaps := []backend.Snapshot{
		{ID: "web-1", Time: t0, Files: 120},
		{ID: "web-2", Time: t0.Add(24 * time.Hour), Files: 0},
	}
	borgJob := &job.Job{Repo: &job.Repo{Backend: "borg"}, Restore: &job.Restore{}}
	require.Equal(t, "web-2", restoredBackup(borgJob, snaps).ID, "the latest")
	borgJob.Restore.Archive = "web-1"
	require.Equal(t, int64(120), restoredBackup(borgJob, snaps).Files)
	borgJob.Restore.Archive = "web-3"
	require.Nil(t, restoredBackup(borgJob, snaps))
	rs := []backend.Snapshot{{ID: "0123456789abcdef", Time: t0, Files: -1}}
	require.NotNil(t, restoredBackup(&job.Job{Restore: &job.Restore{Archive: "01234567"}, Repo: &job.Repo{Backend: "restic"}}, rs))
	require.Nil(t, restoredBackup(&job.Job{Restore: &job.Restore{Archive: "0123"}, Repo: &job.Repo{Backend: "restic"}}, rs), "a prefix of at least 8")
	require.Nil(t, restoredBackup(&job.Job{Restore: &job.Restore{Archive: "01234567"}, Repo: &job.Repo{Backend: "borg"}}, rs))

	require.Equal(t, int64(0), filesIn(nil))
	require.Equal(t, int64(0), filesIn([]backend.Entry{{Path: "etc", Type: backend.EntryDir}, {Path: "bin", Type: backend.EntrySymlink}}),
		"directories and links alone restore nothing of value")
	require.Equal(t, int64(1), filesIn([]backend.Entry{{Path: "etc", Type: backend.EntryDir}, {Path: "etc/hostname", Type: backend.EntryFile}}))
	require.Equal(t, int64(2), filesIn([]backend.Entry{{Path: "etc"}, {Path: "etc/hostname"}}), "duplicity: no types, every entry counts")
}
