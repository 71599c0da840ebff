package run

import (
	"testing"

	"github.com/stretchr/testify/require"

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
