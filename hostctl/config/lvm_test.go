package config_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

func TestLVMSettings(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"hostctl.toml":     "default_profile = \"p\"\n[lvm]\nsnapshot_size = \"10G\"\nabort_percent = 70\npoll_interval = \"2s\"\n",
		"clients/db.toml":  "snapshot_size = \"25%\"\n",
		"clients/web.toml": "",
	})
	c, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	require.Equal(t, config.SnapshotSize{Bytes: 10 << 30}, c.SnapshotSizeFor(c.Clients["web"]))
	require.Equal(t, config.SnapshotSize{Percent: 25}, c.SnapshotSizeFor(c.Clients["db"]))
	require.Equal(t, 70, c.Host.LVM.AbortPercent)
	require.Equal(t, 2*time.Second, c.Host.LVM.PollInterval.Duration)

	dir = writeTree(t, nil)
	c, err = config.Load(filepath.Join(dir, "hostctl.toml"))
	require.NoError(t, err)
	require.Equal(t, config.SnapshotSize{Percent: 20}, c.SnapshotSizeFor(c.Clients["web"]), "default")
	require.Equal(t, 80, c.Host.LVM.AbortPercent)
	require.Equal(t, 5*time.Second, c.Host.LVM.PollInterval.Duration)
}

func TestLVMSettingsErrors(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"hostctl.toml":     "default_profile = \"p\"\n[lvm]\nsnapshot_size = \"120%\"\nabort_percent = 100\npoll_interval = \"0s\"\n",
		"clients/web.toml": "type = \"lvm_libvirt\"\nsnapshot_size = \"lots\"\n",
	})
	_, err := config.Load(filepath.Join(dir, "hostctl.toml"))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"hostctl.toml:3: key \"lvm.snapshot_size\": invalid snapshot size \"120%\"",
		"hostctl.toml:4: key \"lvm.abort_percent\": 100: want a fill level in percent, 1 .. 99",
		"hostctl.toml:5: key \"lvm.poll_interval\": 0s: want a duration > 0",
		"web.toml:2: key \"snapshot_size\": invalid snapshot size \"lots\"",
	} {
		require.Contains(t, msg, want)
	}
}
