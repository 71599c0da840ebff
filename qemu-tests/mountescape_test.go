package qemutests

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// TestGuestMountEscape plays a hostile guest that tries to run its own
// programs in the appliance: its root filesystem has a symlink where its
// fstab (or the client's backup.mount table) mounts a second filesystem,
// pointing at the userland's /usr/local/sbin (first in a tool's PATH once)
// relatively, absolutely as the guest sees it, absolutely as the
// supervisor sees it, and through a symlinked parent directory. That second
// filesystem holds programs named like every tool the appliance runs, each
// printing a marker. Every job must fail naming the mount point and the
// symlink, and the marker must appear nowhere: not in hostctl's report, nor
// in any file of the state dir (job logs, console logs, results, the cache
// volume).
func TestGuestMountEscape(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	variants := []struct {
		name, link, target, mountPoint string
		table                          bool
	}{
		{"esc-rel-fstab", "/data", "../usr/local/sbin", "/data", false},
		{"esc-abs-fstab", "/data", "/usr/local/sbin", "/data", false},
		{"esc-parent-fstab", "/opt", "../usr/local", "/opt/sbin", false},
		{"esc-rel-table", "/data", "../usr/local/sbin", "/data", true},
		{"esc-abs-table", "/data", "/sysroot/usr/local/sbin", "/data", true},
	}
	stateDir := filepath.Join(dir, "state")
	etc := filepath.Join(dir, "etc")
	var cfg string
	for i, v := range variants {
		vdir := filepath.Join(dir, v.name)
		require.NoError(t, os.MkdirAll(vdir, 0o755))
		g, err := fixture.MakeHostileGuest(ctx, vdir, fixture.HostileGuest{Link: v.link, Target: v.target, MountPoint: v.mountPoint})
		require.NoError(t, err)
		domain := testDomain(v.name)
		x, err := fixture.ClientDomain{Name: domain, Kernel: e.kernel, Initrd: e.idle, Disk: g.Disks[0],
			DiskFormat: "raw", ExtraDisks: g.Disks[1:], ConsoleLog: filepath.Join(vdir, "client-console.log")}.XML()
		require.NoError(t, err)
		xf := filepath.Join(vdir, "client.xml")
		require.NoError(t, os.WriteFile(xf, []byte(x), 0o644))
		exec.Command("virsh", "-c", "qemu:///system", "undefine", domain).Run()
		virsh(t, "define", xf)
		t.Cleanup(func() { exec.Command("virsh", "-c", "qemu:///system", "undefine", domain).Run() })
		if i == 0 {
			cfg, err = fixture.Config{Accel: e.accel, StateDir: stateDir, ImageDir: e.imageDir, TargetRoot: filepath.Join(dir, "backup"),
				Client: v.name, Domain: domain, Passphrase: "escape passphrase"}.Write(etc)
			require.NoError(t, err)
		}
		mount := "mount = \"fstab\"\n"
		if v.table {
			mount = fmt.Sprintf("[backup.mount]\n\"/\" = \"vda\"\n%q = \"vdb\"\n", v.mountPoint)
		}
		client := fmt.Sprintf("domain = %q\n\n[backup]\nsource = [\"/\"]\n%s", domain, mount)
		require.NoError(t, os.WriteFile(filepath.Join(etc, "clients", v.name+".toml"), []byte(client), 0o600))
	}

	code, out, errOut := hostctl(t, ctx, "run", "--json", "-c", cfg)
	logs, _ := filepath.Glob(filepath.Join(stateDir, "runs", "*", "*", "job.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		t.Logf("%s:\n%s", l, b)
	}
	require.NotContains(t, out+errOut, fixture.GuestCodeMarker, "the appliance ran the guest's program (hostctl's report)")
	var ran []string
	require.NoError(t, filepath.WalkDir(stateDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(fixture.GuestCodeMarker)) {
			ran = append(ran, p)
		}
		return err
	}))
	require.Empty(t, ran, "the appliance ran the guest's program (marker in these files)")

	require.NotEqual(t, 0, code, "every job must fail")
	reps := parseReports(t, out)
	require.Len(t, reps, len(variants))
	for _, v := range variants {
		var found bool
		for _, r := range reps {
			if r.Client != v.name {
				continue
			}
			found = true
			require.Equal(t, "failed", r.Status, "%s", v.name)
			require.Contains(t, r.Error, "mount point "+v.mountPoint, "%s: the reason names the mount point", v.name)
			require.Contains(t, r.Error, v.link+" is a symlink", "%s: the reason names the symlink", v.name)
			require.Contains(t, r.Error, v.target, "%s: the reason says where the symlink points", v.name)
			require.False(t, strings.Contains(r.Error, "\n"), "%s: one-line reason", v.name)
		}
		require.True(t, found, "no report for %s", v.name)
	}
	entries, err := os.ReadDir(filepath.Join(stateDir, "ledger"))
	require.NoError(t, err)
	require.Empty(t, entries, "ledger entries left")
	require.Empty(t, appliances(t, stateDir, false), "appliance domain left")
}
