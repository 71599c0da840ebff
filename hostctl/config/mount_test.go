package config_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestBackupMount(t *testing.T) {
	for _, tc := range []struct {
		name, client string
		mount        string
		mounts       []job.MountPoint
		err          string // "FILE:LINE: key …" part
	}{
		{name: "default", client: "", mount: "auto"},
		{name: "lv", client: "[backup]\nmount = \"vg0/root\"\n", mount: "vg0/root"},
		{name: "fstab", client: "[backup]\nmount = \"fstab\"\n", mount: "fstab"},
		{name: "table", client: "[backup.mount]\n\"/var\" = \"vg0/var\"\n\"/\" = \"vg0/root\"\n\"/srv/data\" = \"LABEL=data\"\n",
			mounts: []job.MountPoint{{Where: "/", What: "vg0/root"}, {Where: "/srv/data", What: "LABEL=data"}, {Where: "/var", What: "vg0/var"}}},
		{name: "table-without-root", client: "[backup]\nsource = [\"/\"]\n[backup.mount]\n\"/var\" = \"vg0/var\"\n",
			err: `web.toml:3: key "backup.mount": no filesystem for "/"`},
		{name: "table-auto", client: "[backup.mount]\n\"/\" = \"auto\"\n", err: `web.toml:1: key "backup.mount": mount point "/": want the filesystem by name`},
		{name: "table-relative", client: "[backup.mount]\n\"/\" = \"vda1\"\n\"var\" = \"vda2\"\n", err: `mount point "var"`},
		{name: "table-not-string", client: "[backup.mount]\n\"/\" = 3\n", err: `web.toml:1: key "backup.mount"`},
		{name: "bad-selector", client: "[backup]\nmount = \"vg0/\"\n", err: `web.toml:2: key "backup.mount": "vg0/": want "auto", "fstab"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"clients/web.toml": tc.client})
			cfg, err := config.Load(filepath.Join(dir, "hostctl.toml"))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			cls, err := cfg.SelectClients([]string{"web"})
			require.NoError(t, err)
			tree := cls[0].Tree // the one form a job takes
			require.Equal(t, tc.mount, tree.Mount)
			require.Equal(t, tc.mounts, tree.Mounts)
		})
	}
}
