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
	"github.com/snapshot-backup/snapshot-backup/supervisor/layout"
)

const guestFstab = `/dev/mapper/gvg-root  /          ext4   defaults     0 1
/dev/gvg/var          /var       xfs    defaults     0 2
LABEL=EFI             /boot/efi  vfat   umask=0077   0 1
LABEL=home            /home      btrfs  subvol=@home 0 0
/dev/gvg/swap         none       swap   sw           0 0
tmpfs                 /tmp       tmpfs  defaults     0 0
`

// populate mounts dev, writes files and unmounts.
func populate(t *testing.T, dev, fstype string, files map[string]string, subvol string) {
	t.Helper()
	mnt := t.TempDir()
	run(t, "mount", "-t", fstype, dev, mnt)
	root := mnt
	if subvol != "" {
		run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(mnt, subvol))
		root = filepath.Join(mnt, subvol)
	}
	writeTree(t, root, files)
	run(t, "umount", mnt)
}

// guestDisks lays out a guest on disks 4 (GPT: ESP + LVM PV with root
// ext4 and var XFS) and 5 (MBR: one btrfs partition with subvolume @home),
// as a VM's installer would, and deactivates the guest VG again.
func guestDisks(t *testing.T) (gpt, mbr string) {
	gpt, mbr = disk(t, 4), disk(t, 5)
	run(t, "sh", "-c", "printf 'label: gpt\\nsize=32M, type=uefi, name=esp\\ntype=lvm, name=pv\\n' | sfdisk -q /dev/"+gpt)
	run(t, "sh", "-c", "printf 'label: dos\\ntype=83\\n' | sfdisk -q /dev/"+mbr)
	run(t, "partx", "-u", "/dev/"+gpt) // no udev: tell the kernel
	run(t, "partx", "-u", "/dev/"+mbr)
	conf := lvmConf(gpt)
	lvmRun(t, conf, "pvcreate", "-q", "-ff", "--yes", "/dev/"+gpt+"2")
	lvmRun(t, conf, "vgcreate", "-q", "gvg", "/dev/"+gpt+"2")
	lvmRun(t, conf, "lvcreate", "-q", "--yes", "-n", "root", "-L", "64m", "gvg")
	lvmRun(t, conf, "lvcreate", "-q", "--yes", "-n", "var", "-L", "320m", "gvg")
	run(t, "mkfs.vfat", "-n", "EFI", "/dev/"+gpt+"1")
	run(t, "mkfs.ext4", "-q", "-L", "root", "/dev/gvg/root")
	run(t, "mkfs.xfs", "-q", "-f", "/dev/gvg/var")
	run(t, "mkfs.btrfs", "-q", "-f", "-L", "home", "/dev/"+mbr+"1")
	populate(t, "/dev/gvg/root", "ext4", map[string]string{"etc/fstab": guestFstab, "etc/hostname": "guest\n",
		"var/.keep": "", "boot/efi/.keep": "", "home/.keep": ""}, "")
	populate(t, "/dev/gvg/var", "xfs", map[string]string{"lib/app/db": "on XFS in guest LVM\n"}, "")
	populate(t, "/dev/"+gpt+"1", "vfat", map[string]string{"EFI/boot.txt": "esp\n"}, "")
	populate(t, "/dev/"+mbr+"1", "btrfs", map[string]string{"alice/notes": "btrfs subvolume\n"}, "@home")
	lvmRun(t, conf, "vgchange", "-q", "-an", "gvg")
	return gpt, mbr
}

// TestLayoutFstabTree: the appliance's layout code activates the guest VG,
// finds the root by its /etc/fstab and assembles /, /var (XFS on LVM),
// /boot/efi (vfat on GPT) and /home (btrfs subvolume on MBR); selectors by
// vg/lv, partition and label and a mount table work on the same disks.
func TestLayoutFstabTree(t *testing.T) {
	ctx := context.Background()
	gpt, mbr := guestDisks(t)
	l := &layout.Layout{Run: layout.Exec{}, Logf: t.Logf}
	d0, err := l.DiskDevices(ctx, gpt, "vda", 0)
	if err != nil {
		t.Fatal(err)
	}
	d1, err := l.DiskDevices(ctx, mbr, "vdb", 1)
	if err != nil {
		t.Fatal(err)
	}
	devs := append(d0, d1...)
	lvs, err := l.ActivateLVM(ctx, devs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run(t, "lvm", "vgchange", "--config", lvmConf(gpt), "-q", "-an", "gvg") })
	if len(lvs) != 2 {
		t.Fatalf("guest LVs %v, want root and var", lvs)
	}
	devs = append(devs, lvs...)

	var st boot.Stack
	defer st.UnmountAll(0)
	tree := t.TempDir()
	lines, err := l.MountTree(ctx, &st, devs, job.Tree{Mount: job.MountFstab}, tree, blockdev.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fstab tree:\n%s", strings.Join(lines, "\n"))
	for path, want := range map[string]string{
		"etc/hostname": "guest\n", "var/lib/app/db": "on XFS in guest LVM\n",
		"boot/efi/EFI/boot.txt": "esp\n", "home/alice/notes": "btrfs subvolume\n",
	} {
		b, err := os.ReadFile(filepath.Join(tree, path))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", path, b, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "var", "x"), nil, 0o644); err == nil {
		t.Error("the tree is writable")
	}
	if err := st.UnmountAll(0); err != nil {
		t.Fatal(err)
	}

	// The same tree from a mount table, and single selectors.
	tree2 := t.TempDir()
	if _, err := l.MountTree(ctx, &st, devs, job.Tree{Mounts: []job.MountPoint{
		{Where: "/var", What: "gvg/var"}, {Where: "/", What: "/dev/mapper/gvg-root"}, {Where: "/boot/efi", What: "vda1"},
	}}, tree2, blockdev.Snapshot); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tree2, "var/lib/app/db")); err != nil {
		t.Error(err)
	}
	for sel, file := range map[string]string{"vdb1": "@home/alice/notes", "LABEL=EFI": "EFI/boot.txt", "gvg/var": "lib/app/db"} {
		dir := t.TempDir()
		if _, err := l.MountTree(ctx, &st, devs, job.Tree{Mount: sel}, dir, blockdev.Snapshot); err != nil {
			t.Errorf("%s: %v", sel, err)
		} else if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			t.Errorf("%s: %v", sel, err)
		}
	}
}

// TestLayoutFailures: a filesystem that does not mount fails with the
// kernel's words, quickly; two guest VGs of the same name are refused.
func TestLayoutFailures(t *testing.T) {
	ctx := context.Background()
	bad := disk(t, 6)
	l := &layout.Layout{Run: layout.Exec{}, Logf: t.Logf}

	// Two disks that each carry a VG "twin" (cloned guests).
	conf := lvmConf(bad)
	run(t, "sh", "-c", "printf 'label: dos\\nsize=64M, type=8e\\ntype=8e\\n' | sfdisk -q /dev/"+bad)
	run(t, "partx", "-u", "/dev/"+bad)
	for _, p := range []string{bad + "1", bad + "2"} {
		c := lvmConf(p)
		lvmRun(t, strings.Replace(c, "[0-9]*$", "$", 1), "pvcreate", "-q", "-ff", "--yes", "/dev/"+p)
		lvmRun(t, strings.Replace(c, "[0-9]*$", "$", 1), "vgcreate", "-q", "twin", "/dev/"+p)
	}
	devs, err := l.DiskDevices(ctx, bad, "vdc", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ActivateLVM(ctx, devs); err == nil || !strings.Contains(err.Error(), `named "twin"`) {
		t.Fatalf("duplicate VG names: %v", err)
	}
	_ = conf
	run(t, "wipefs", "-q", "-a", "/dev/"+bad+"1", "/dev/"+bad+"2", "/dev/"+bad)

	// An ext4 whose group descriptors are gone.
	run(t, "mkfs.ext4", "-q", "-b", "4096", "-L", "broken", "/dev/"+bad)
	run(t, "dd", "if=/dev/zero", "of=/dev/"+bad, "bs=4096", "seek=1", "count=1", "conv=notrunc", "status=none")
	run(t, "blockdev", "--flushbufs", "/dev/"+bad)
	devs, err = l.DiskDevices(ctx, bad, "vdc", 0)
	if err != nil {
		t.Fatal(err)
	}
	var st boot.Stack
	defer st.UnmountAll(0)
	_, err = l.MountTree(ctx, &st, devs, job.Tree{Mount: "LABEL=broken"}, t.TempDir(), blockdev.Snapshot)
	if err == nil || !strings.Contains(err.Error(), "kernel:") {
		t.Fatalf("mounting a broken ext4: %v; want the kernel's message", err)
	}
	t.Logf("broken ext4: %v", err)
	if _, err := blockdev.Select("LABEL=broken", devs); err != nil {
		t.Fatal(err)
	}
}
