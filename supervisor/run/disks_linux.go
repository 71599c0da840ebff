package run

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/mountinfo"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/layout"
)

// devices lists the whole disk and the partitions of each disk in disks
// (found by serial, named as the client names it) with what blkid finds
// on them, and the guest LVM volumes on them, activated.
func (s *supervisor) devices(ctx context.Context, disks []job.Disk) ([]blockdev.Device, error) {
	var devs []blockdev.Device
	for i, d := range disks {
		kdev, ok := s.b.serials[d.Serial]
		if !ok {
			return nil, fmt.Errorf("disk %s (serial %s) is not attached", d.Dev, d.Serial)
		}
		found, err := s.layout().DiskDevices(ctx, kdev, d.Dev, i)
		if err != nil {
			return nil, err
		}
		devs = append(devs, found...)
	}
	lvs, err := s.layout().ActivateLVM(ctx, devs)
	if err != nil {
		return nil, err
	}
	return append(devs, lvs...), nil
}

// layout is the guest-layout code on the userland's tools.
func (s *supervisor) layout() *layout.Layout {
	return &layout.Layout{Run: chrootRunner{s.runner}, Logf: s.rep.Logf, SysBlock: boot.SysBlock, Root: Sysroot,
		LoadDM: func() { boot.LoadOnDemand("guest LVM", boot.DMModules, s.rep.Logf) }}
}

// chrootRunner adapts the chroot runner to layout.Runner.
type chrootRunner struct{ r *chroot.Runner }

func (c chrootRunner) Output(ctx context.Context, argv ...string) ([]byte, error) {
	return c.r.Run(ctx, chroot.Cmd{Argv: argv})
}

// mountTree mounts the client's tree (one filesystem, a mount table or the
// guest's fstab) at mountpoint inside the userland.
// It returns the client's devices and the mounted plan.
func (s *supervisor) mountTree(ctx context.Context, b job.Tree, disks []job.Disk, mountpoint string, use blockdev.Use) ([]blockdev.Device, []layout.Planned, error) {
	devs, err := s.devices(ctx, disks)
	if err != nil {
		return nil, nil, err
	}
	lay := s.layout()
	plan, err := lay.PlanTree(&s.stack, devs, b)
	if err != nil {
		return nil, nil, err
	}
	if _, err = lay.MountPlan(&s.stack, plan, Sysroot+mountpoint, use); err != nil {
		return nil, nil, err
	}
	return devs, plan, s.checkConfined(mountpoint, use)
}

// checkConfined checks in the kernel's mount table that every client
// filesystem is mounted at or below dir (inside the userland) as use
// says (layout.CheckConfined). Client filesystems are those of every block
// device but the appliance's own disks.
func (s *supervisor) checkConfined(dir string, use blockdev.Use) error {
	mounts, err := mountinfo.Read()
	if err != nil {
		return err
	}
	client := func(source string) bool { return strings.HasPrefix(source, "/dev/") && !s.b.own(source) }
	return layout.CheckConfined(mounts, client, Sysroot+dir, use)
}

// mountSelected selects the filesystem spec names among disks and mounts it
// at mountpoint for use.
func (s *supervisor) mountSelected(ctx context.Context, spec string, disks []job.Disk, mountpoint string, use blockdev.Use) (blockdev.Device, error) {
	devs, err := s.devices(ctx, disks)
	if err != nil {
		return blockdev.Device{}, err
	}
	d, err := blockdev.Select(spec, devs)
	if err != nil {
		return blockdev.Device{}, err
	}
	s.rep.Logf("mounting %s at %s %s", d, mountpoint, use)
	if err := layout.MountOne(&s.stack, d, Sysroot+mountpoint, "/", use, ""); err != nil {
		return d, err
	}
	return d, s.checkConfined(mountpoint, use)
}

// mountCache mounts the cache volume at /cache, creating its filesystem on
// first use. Without a cache volume a tmpfs stands in (and borg rereads
// everything, which is slow but correct).
func (s *supervisor) mountCache(ctx context.Context) error {
	dev, ok := s.b.serials[job.SerialCache]
	mountpoint := Sysroot + "/cache"
	if !ok {
		s.rep.Logf("no cache disk (serial %s): using a tmpfs, caches will not persist", job.SerialCache)
		return s.stack.Mount(boot.Mount{Source: "tmpfs", Mountpoint: mountpoint, FSType: "tmpfs", Data: "mode=0700"})
	}
	info, err := s.layout().Probe(ctx, dev)
	if err != nil {
		return err
	}
	fstype := info["TYPE"]
	if fstype == "" {
		empty, err := zeroHead("/dev/" + dev)
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("cache disk %s has no filesystem blkid knows but is not empty; refusing to format it", dev)
		}
		s.rep.Logf("cache disk %s is empty: creating ext4", dev)
		if _, err := s.runner.Run(ctx, chroot.Cmd{Argv: []string{"mkfs.ext4", "-q", "-L", job.SerialCache, "/dev/" + dev}}); err != nil {
			return err
		}
		fstype = "ext4"
	}
	return s.stack.Mount(boot.Mount{Source: "/dev/" + dev, Mountpoint: mountpoint, FSType: fstype, Flags: unix.MS_NOSUID | unix.MS_NODEV})
}

// zeroHead reports whether the first 64 KiB of a device are all zero.
func zeroHead(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return bytes.Count(buf[:n], []byte{0}) == n, nil
}

// virtio9P is the virtio device id of a 9p transport (virtio spec 5).
const virtio9P = "0x0009"

// ninePTags lists the 9p shares the host offers, loading the 9p modules
// first when QEMU offers any (most jobs have none).
func (s *supervisor) ninePTags() []string {
	ids, _ := filepath.Glob("/sys/bus/virtio/devices/*/device")
	offered := false
	for _, p := range ids {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == virtio9P {
			offered = true
		}
	}
	if !offered {
		return nil
	}
	boot.LoadOnDemand("9p shares", boot.NinePModules, s.rep.Logf)
	ms, _ := filepath.Glob("/sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag")
	var tags []string
	for _, m := range ms {
		if b, err := os.ReadFile(m); err == nil {
			tags = append(tags, strings.TrimRight(string(b), "\x00\n"))
		}
	}
	return tags
}

// mount9p mounts the host share tag at mountpoint inside the userland.
func (s *supervisor) mount9p(tag, mountpoint string) error {
	return s.stack.Mount(boot.Mount{Source: tag, Mountpoint: Sysroot + mountpoint, FSType: "9p",
		Data: "trans=virtio,version=9p2000.L,msize=262144,cache=none,access=client"})
}

// restoreDisk is the pseudo client disk for the restore destination.
var restoreDisk = []job.Disk{{Serial: job.SerialRestore, Dev: "restore"}}
