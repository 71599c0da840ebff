package layout

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/mountinfo"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

// loopFS makes an ext4 image holding tree, attaches it to a loop device
// and returns it as a client device.
func loopFS(t *testing.T, label, tree, clientDev string) blockdev.Device {
	t.Helper()
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), label+".ext4")
	_, err := execx.Output(ctx, "mkfs.ext4", "-q", "-F", "-L", label, "-d", tree, img, "8M")
	require.NoError(t, err)
	out, err := execx.Output(ctx, "losetup", "--find", "--show", img)
	if err != nil {
		testutil.SkipOrFail(t, "no loop device: "+err.Error())
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { execx.Output(context.Background(), "losetup", "-d", loop) })
	return blockdev.Device{Dev: strings.TrimPrefix(loop, "/dev/"), ClientDev: clientDev, FSType: "ext4", Label: label}
}

func writeTree(t *testing.T, root string, files map[string]string, links map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o755))
	}
	for name, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(root, name)))
	}
	return root
}

// TestMountTreeSymlinkedMountPoint: a guest's root filesystem whose /data
// is a symlink out of the tree, and whose fstab (or the client's mount
// table) mounts a second filesystem on /data. Nothing may be mounted where
// the symlink points; the job fails naming the mount point and the
// symlink. A guest fstab that is a symlink to an appliance file is not
// read. A plain tree mounts noexec,nosuid,nodev, confined to its
// directory.
func TestMountTreeSymlinkedMountPoint(t *testing.T) {
	needRootAndTools(t, "mkfs.ext4", "losetup")
	ctx := context.Background()
	top := t.TempDir()
	mountpoint := filepath.Join(top, "snapshot")
	outside := filepath.Join(top, "usr", "local", "sbin")
	require.NoError(t, os.MkdirAll(outside, 0o755))
	secret := filepath.Join(top, "secret-passphrase")
	require.NoError(t, os.WriteFile(secret, []byte("LABEL=payload /data ext4 defaults 0 0\n"), 0o600))

	payload := loopFS(t, "payload", writeTree(t, t.TempDir(), map[string]string{"borg": "#!/bin/sh\necho guest code\n"}, nil), "vdb")
	l := &Layout{Logf: t.Logf, ProbeDir: filepath.Join(top, "probe")}
	var st boot.Stack
	t.Cleanup(func() { _ = st.UnmountAll(0) })

	for _, tc := range []struct {
		name, link string
		mountPoint string
		backup     job.Tree
		err        string
	}{
		{"fstab relative", "../usr/local/sbin", "/data", job.Tree{Mount: job.MountFstab},
			"mount point /data of vdb: /data is a symlink (to ../usr/local/sbin)"},
		{"fstab absolute", outside, "/data", job.Tree{Mount: job.MountFstab},
			"mount point /data of vdb: /data is a symlink (to " + outside + ")"},
		{"table relative", "../usr/local/sbin", "/data", job.Tree{Mounts: []job.MountPoint{{Where: "/", What: "vda"}, {Where: "/data", What: "vdb"}}},
			"mount point /data of vdb: /data is a symlink"},
		{"table through a parent", "../usr/local", "/data/sbin", job.Tree{Mounts: []job.MountPoint{{Where: "/", What: "vda"}, {Where: "/data/sbin", What: "vdb"}}},
			"mount point /data/sbin of vdb: /data/sbin lies through a symlink: /data is a symlink (to ../usr/local)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fstab := "LABEL=hostile / ext4 defaults 0 1\nLABEL=payload " + tc.mountPoint + " ext4 defaults 0 2\n"
			root := loopFS(t, "hostile", writeTree(t, t.TempDir(), map[string]string{"etc/fstab": fstab}, map[string]string{"data": tc.link}), "vda")
			_, err := l.MountTree(ctx, &st, []blockdev.Device{root, payload}, tc.backup, mountpoint, blockdev.Snapshot)
			require.ErrorContains(t, err, tc.err)
			require.False(t, boot.IsMountPoint(outside), "the guest's filesystem covers the appliance's directory")
			entries, _ := os.ReadDir(outside)
			require.Empty(t, entries)
			require.NoError(t, st.UnmountAll(0))
		})
	}

	t.Run("fstab symlinked to an appliance file", func(t *testing.T) {
		for _, link := range []string{secret, "../../../../../../../.." + secret} {
			root := loopFS(t, "hostile", writeTree(t, t.TempDir(), map[string]string{"etc/.keep": ""}, map[string]string{"etc/fstab": link}), "vda")
			_, err := l.MountTree(ctx, &st, []blockdev.Device{root, payload}, job.Tree{Mount: job.MountFstab}, mountpoint, blockdev.Snapshot)
			require.ErrorContains(t, err, "no filesystem with an /etc/fstab among vda, vdb", "the appliance's file was read as the guest's fstab")
			require.False(t, boot.IsMountPoint(mountpoint))
		}
	})

	t.Run("a plain tree", func(t *testing.T) {
		root := loopFS(t, "good", writeTree(t, t.TempDir(), map[string]string{
			"etc/fstab": "LABEL=good / ext4 defaults 0 1\nLABEL=payload /srv/data ext4 defaults 0 2\n", "srv/data/.keep": ""}, nil), "vda")
		lines, err := l.MountTree(ctx, &st, []blockdev.Device{root, payload}, job.Tree{Mount: job.MountFstab}, mountpoint, blockdev.Snapshot)
		require.NoError(t, err)
		require.Len(t, lines, 2)
		require.FileExists(t, filepath.Join(mountpoint, "srv", "data", "borg"))
		ms, err := mountinfo.Read()
		require.NoError(t, err)
		client := func(src string) bool { return src == "/dev/"+root.Dev || src == "/dev/"+payload.Dev }
		require.NoError(t, CheckConfined(ms, client, mountpoint, blockdev.Snapshot))
		require.ErrorContains(t, CheckConfined(ms, client, filepath.Join(mountpoint, "srv"), blockdev.Snapshot),
			"/dev/"+root.Dev+" on "+mountpoint+" is outside "+filepath.Join(mountpoint, "srv"))
		// The guest's program cannot run from there.
		err = exec.Command(filepath.Join(mountpoint, "srv", "data", "borg")).Run()
		require.ErrorIs(t, err, os.ErrPermission, "noexec")
		require.NoError(t, st.UnmountAll(0))
	})
}

// TestPlanTreeNofail: a backup leaves out a "nofail" filesystem that is
// not there; a recovery by the VM's fstab (RequireAll) stops instead,
// naming it: its files would otherwise land on the root filesystem.
func TestPlanTreeNofail(t *testing.T) {
	needRootAndTools(t, "mkfs.ext4", "losetup")
	top := t.TempDir()
	root := loopFS(t, "blank", writeTree(t, t.TempDir(), map[string]string{
		"etc/fstab": "LABEL=blank / ext4 defaults 0 1\nLABEL=data /srv/data ext4 defaults,nofail 0 2\n"}, nil), "vda")
	var st boot.Stack
	t.Cleanup(func() { _ = st.UnmountAll(0) })
	l := &Layout{Logf: t.Logf, ProbeDir: filepath.Join(top, "probe")}
	plan, err := l.PlanTree(&st, []blockdev.Device{root}, job.Tree{Mount: job.MountFstab})
	require.NoError(t, err)
	require.Len(t, plan, 1, "a backup leaves the missing nofail filesystem out")
	l.RequireAll = true
	_, err = l.PlanTree(&st, []blockdev.Device{root}, job.Tree{Mount: job.MountFstab})
	require.ErrorContains(t, err, "/srv/data: ")
	require.ErrorContains(t, err, "the VM's fstab marks it nofail, but its files would be restored onto the filesystem above it")
}

// TestVGMetadata: the metadata of a guest volume group on the client's
// PVs, as vgcfgbackup writes it, and nothing of a PV the client does not
// have.
func TestVGMetadata(t *testing.T) {
	needRootAndTools(t, "lvm", "losetup")
	ctx := context.Background()
	pv := func(vg string) blockdev.Device {
		loop := blankLoop(t, 16<<20)
		_, err := execx.Output(ctx, "lvm", "vgcreate", "--config", lvmConfig([]string{loop}), vg, "/dev/"+loop)
		require.NoError(t, err)
		return blockdev.Device{Dev: loop, ClientDev: "vdb", FSType: "LVM2_member"}
	}
	guest := pv("sbtestguest")
	pv("sbtestother") // another VG the appliance sees, not the client's
	l := &Layout{Run: Exec{}, Logf: t.Logf}
	got, err := l.VGMetadata(ctx, []blockdev.Device{guest}, filepath.Join(t.TempDir(), "lvm"), 64<<10)
	require.NoError(t, err)
	require.Len(t, got, 1, "only the client's PVs are looked at: %v", got)
	require.Equal(t, "sbtestguest", got[0].Name)
	require.Contains(t, got[0].Metadata, "sbtestguest {")
	require.Contains(t, got[0].Metadata, "physical_volumes {")
	require.Len(t, got[0].PVs, 1)
	require.Equal(t, "vdb", got[0].PVs[0].Disk)
	require.Regexp(t, `^\w{6}(-\w{4}){5}-\w{6}$`, got[0].PVs[0].UUID)
	require.Contains(t, got[0].Metadata, got[0].PVs[0].UUID)
	none, err := l.VGMetadata(ctx, []blockdev.Device{{Dev: "vdz", FSType: "ext4"}}, t.TempDir(), 64<<10)
	require.NoError(t, err)
	require.Nil(t, none)
}

// TestRestoreVG: a volume group recorded with VGMetadata comes back on a
// blank device with the same PV UUID and the same logical volumes.
func TestRestoreVG(t *testing.T) {
	needRootAndTools(t, "lvm", "losetup")
	ctx := context.Background()
	orig, blank := blankLoop(t, 16<<20), blankLoop(t, 16<<20)
	cfg := lvmConfig([]string{orig})
	_, err := execx.Output(ctx, "lvm", "vgcreate", "--config", cfg, "sbtestrestore", "/dev/"+orig)
	require.NoError(t, err)
	// An LV without activation (the host has no device-mapper).
	noDM := strings.Replace(cfg, "global {", "global { activation = 0", 1)
	_, err = execx.Output(ctx, "lvm", "lvcreate", "--config", noDM, "-an", "-Zn", "-L", "4M", "-n", "data", "sbtestrestore")
	require.NoError(t, err)
	l := &Layout{Run: Exec{}, Logf: t.Logf}
	vgs, err := l.VGMetadata(ctx, []blockdev.Device{{Dev: orig, ClientDev: "vdb", FSType: "LVM2_member"}}, filepath.Join(t.TempDir(), "lvm"), 64<<10)
	require.NoError(t, err)
	require.Len(t, vgs, 1)
	// The original goes (as with a lost disk); the blank device takes its place.
	_, err = execx.Output(ctx, "dd", "if=/dev/zero", "of=/dev/"+orig, "bs=1M", "count=2", "conv=fsync")
	require.NoError(t, err)
	require.NoError(t, l.RestoreVG(ctx, vgs[0], []blockdev.Device{{Dev: blank, ClientDev: "vdb"}}, t.TempDir()))
	out, err := execx.Output(ctx, "lvm", "pvs", "--config", lvmConfig([]string{blank}), "--noheadings", "-o", "pv_uuid,vg_name")
	require.NoError(t, err)
	require.Equal(t, vgs[0].PVs[0].UUID+" sbtestrestore", strings.Join(strings.Fields(string(out)), " "))
	out, err = execx.Output(ctx, "lvm", "lvs", "--config", lvmConfig([]string{blank}), "--noheadings", "-o", "lv_name,lv_size", "--units", "m")
	require.NoError(t, err)
	require.Equal(t, "data 4.00m", strings.Join(strings.Fields(string(out)), " "))
}

// needRootAndTools skips (fails under CI) without root or one of tools.
func needRootAndTools(t *testing.T, tools ...string) {
	t.Helper()
	testutil.NeedRoot(t)
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testutil.SkipOrFail(t, tool+" is not installed")
		}
	}
}

// blankLoop attaches a zeroed image of size bytes to a loop device and
// returns its name (loop3), detached at the end of the test.
func blankLoop(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "blank.img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, size))
	out, err := execx.Output(context.Background(), "losetup", "--find", "--show", img)
	if err != nil {
		testutil.SkipOrFail(t, "no loop device: "+err.Error())
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { execx.Output(context.Background(), "losetup", "-d", loop) })
	return strings.TrimPrefix(loop, "/dev/")
}
