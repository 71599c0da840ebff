package run

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/supervisor/layout"
)

func TestEmptyTreeKeepsMountPointsAndLostFound(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"lost+found/x", "etc", "srv/data/lost+found", "srv/data/old", "srv/other", "usr/bin"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	for _, f := range []string{"etc/fstab", "srv/data/blank-file", "srv/file", "usr/bin/sh", "vmlinuz"} {
		require.NoError(t, os.WriteFile(filepath.Join(root, f), []byte("x"), 0o644))
	}
	require.NoError(t, os.Symlink("usr/bin", filepath.Join(root, "bin")))
	plan := []layout.Planned{{Where: "/"}, {Where: "/srv/data"}}
	require.NoError(t, emptyTree(root, plan))
	var left []string
	require.NoError(t, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		rel, _ := filepath.Rel(root, p)
		left = append(left, rel)
		return err
	}))
	sort.Strings(left)
	require.Equal(t, []string{".", "lost+found", "lost+found/x", "srv", "srv/data", "srv/data/lost+found"}, left,
		"only lost+found (of every filesystem) and the path to the mount point stay")
}
