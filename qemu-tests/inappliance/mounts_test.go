//go:build inappliance

package inappliance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/layout"
)

// TestGuestCannotCoverTools runs in the appliance's own userland (kernel
// 6.1, overlay root): a guest whose /data is a symlink to
// ../usr/local/sbin and whose fstab mounts its payload filesystem there
// gets a mount failure naming both, and nothing covers the userland's
// /usr/local/sbin; a filesystem mounted over a directory of the userland
// anyway has its programs refused by the tool runner (the overlay's mount
// id, not its st_dev, tells them apart), and is noexec as a snapshot.
func TestGuestCannotCoverTools(t *testing.T) {
	ctx := context.Background()
	d := disk(t, 7)
	run(t, "sh", "-c", "printf 'label: dos\\nsize=64M, type=83\\ntype=83\\n' | sfdisk -q /dev/"+d)
	run(t, "partx", "-u", "/dev/"+d)
	run(t, "mkfs.ext4", "-q", "-L", "hostile", "/dev/"+d+"1")
	run(t, "mkfs.ext4", "-q", "-L", "payload", "/dev/"+d+"2")
	mnt := t.TempDir()
	run(t, "mount", "/dev/"+d+"1", mnt)
	writeTree(t, mnt, map[string]string{"etc/fstab": "LABEL=hostile / ext4 defaults 0 1\nLABEL=payload /data ext4 defaults 0 2\n"})
	if err := os.Symlink("../usr/local/sbin", filepath.Join(mnt, "data")); err != nil {
		t.Fatal(err)
	}
	run(t, "umount", mnt)
	run(t, "mount", "/dev/"+d+"2", mnt)
	if err := os.WriteFile(filepath.Join(mnt, "blkid"), []byte("#!/bin/sh\necho guest code\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "umount", mnt)

	l := &layout.Layout{Run: layout.Exec{}, Logf: t.Logf}
	devs, err := l.DiskDevices(ctx, d, "vda", 0)
	if err != nil {
		t.Fatal(err)
	}
	var st boot.Stack
	defer st.UnmountAll(0)
	const tools = "/usr/local/sbin"
	if _, err := os.Stat(tools); err != nil {
		t.Fatalf("the userland has no %s: the test would not test the escape: %v", tools, err)
	}
	_, err = l.MountTree(ctx, &st, devs, job.Tree{Mount: job.MountFstab}, "/snapshot", blockdev.Snapshot)
	if err == nil || !strings.Contains(err.Error(), "mount point /data of vda2: /data is a symlink (to ../usr/local/sbin)") {
		t.Fatalf("MountTree: %v; want the symlinked mount point refused", err)
	}
	if boot.IsMountPoint(tools) {
		t.Fatalf("the guest's filesystem covers %s", tools)
	}
	if err := st.UnmountAll(0); err != nil {
		t.Fatal(err)
	}

	payload := blockdev.Device{}
	for _, dev := range devs {
		if dev.Label == "payload" {
			payload = dev
		}
	}
	if err := layout.MountOne(&st, payload, tools, "/", blockdev.Snapshot, ""); err != nil {
		t.Fatal(err)
	}
	r := &chroot.Runner{Root: "/"}
	if _, err := r.Resolve(tools + "/blkid"); err == nil || !strings.Contains(err.Error(), "refusing to run") {
		t.Errorf("Resolve(%s/blkid) = %v; want it refused", tools, err)
	}
	if p, err := r.Resolve("blkid"); err != nil || p != "/usr/sbin/blkid" {
		t.Errorf("Resolve(blkid) = %q, %v; want the userland's own", p, err)
	}
	if _, err := r.Run(ctx, chroot.Cmd{Argv: []string{tools + "/blkid"}}); err == nil || !strings.Contains(err.Error(), "refusing to run") {
		t.Errorf("Run(%s/blkid) = %v; want it refused", tools, err)
	}
	ms, err := boot.Mountinfo()
	if err != nil {
		t.Fatal(err)
	}
	client := func(src string) bool { return src == "/dev/"+payload.Dev }
	if err := layout.CheckConfined(ms, client, "/snapshot", blockdev.Snapshot); err == nil || !strings.Contains(err.Error(), "on "+tools+" is outside /snapshot") {
		t.Errorf("CheckConfined: %v; want the mount on %s named", err, tools)
	}
	if err := layout.CheckConfined(ms, client, tools, blockdev.Snapshot); err != nil {
		t.Errorf("CheckConfined: %v; want ro,noexec,nosuid,nodev", err)
	}
}
