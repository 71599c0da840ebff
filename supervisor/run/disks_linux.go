package run

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/layout"
)

// probe runs blkid -p (low-level probe, no cache, no udev) on /dev/dev.
// Exit status 2 means "nothing found", which is not an error.
func (s *supervisor) probe(ctx context.Context, dev string) (map[string]string, error) {
	out, err := s.runner.Run(ctx, chroot.Cmd{Argv: []string{"blkid", "-p", "-o", "export", "/dev/" + dev}})
	if ee, ok := err.(*execx.Error); ok && ee.ExitCode() == 2 {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return blockdev.ParseBlkid(string(out)), nil
}

// devices lists the whole disk and the partitions of each disk in disks
// (serial → client target) with what blkid finds on them.
func (s *supervisor) devices(ctx context.Context, disks []job.Disk) ([]blockdev.Device, error) {
	var devs []blockdev.Device
	for i, d := range disks {
		kdev, ok := s.serials[d.Serial]
		if !ok {
			return nil, fmt.Errorf("disk %s (serial %s) is not attached", d.Dev, d.Serial)
		}
		names := append([]string{kdev}, boot.Partitions(kdev)...)
		for _, n := range names {
			if err := boot.WaitPath("/dev/"+n, 3*time.Second); err != nil {
				return nil, err
			}
			info, err := s.probe(ctx, n)
			if err != nil {
				return nil, err
			}
			dev := blockdev.Device{Dev: n, Target: d.Dev, Disk: i, FSType: info["TYPE"],
				Label: info["LABEL"], UUID: info["UUID"], Size: sizeOf(n)}
			if n != kdev {
				dev.Part, _ = strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(n, kdev), "p"))
			}
			devs = append(devs, dev)
		}
	}
	lvs, err := s.layout().ActivateLVM(ctx, devs)
	if err != nil {
		return nil, err
	}
	return append(devs, lvs...), nil
}

// layout is the guest-layout code on the userland's tools.
func (s *supervisor) layout() *layout.Layout {
	return &layout.Layout{Run: chrootRunner{s.runner}, Logf: s.rep.Logf, SysBlock: boot.SysBlock}
}

// chrootRunner adapts the chroot runner to layout.Runner.
type chrootRunner struct{ r *chroot.Runner }

func (c chrootRunner) Output(ctx context.Context, argv ...string) ([]byte, error) {
	return c.r.Run(ctx, chroot.Cmd{Argv: argv})
}

// mountTree mounts the client's tree (one filesystem, a mount table or the
// guest's fstab) at target inside the userland.
func (s *supervisor) mountTree(ctx context.Context, b job.Tree, disks []job.Disk, target string, use blockdev.Use) error {
	devs, err := s.devices(ctx, disks)
	if err != nil {
		return err
	}
	if _, err = s.layout().MountTree(ctx, &s.stack, devs, b, Sysroot+target, use); err != nil {
		return err
	}
	return s.checkConfined(target, use)
}

// checkConfined checks in the kernel's mount table that every client
// filesystem is mounted at or below dir (inside the userland) as use
// says (layout.CheckConfined). Client filesystems are those of every block
// device but the appliance's own disks.
func (s *supervisor) checkConfined(dir string, use blockdev.Use) error {
	mounts, err := boot.Mountinfo()
	if err != nil {
		return err
	}
	own := map[string]bool{}
	for _, serial := range []string{job.SerialAppliance, job.SerialJob, job.SerialCache} {
		if d, ok := s.serials[serial]; ok {
			own["/dev/"+d] = true
			for _, p := range boot.Partitions(d) {
				own["/dev/"+p] = true
			}
		}
	}
	client := func(source string) bool { return strings.HasPrefix(source, "/dev/") && !own[source] }
	return layout.CheckConfined(mounts, client, Sysroot+dir, use)
}

// sizeOf is the size in bytes of block device n from sysfs.
func sizeOf(n string) int64 {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", n, "size"))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v * 512
}

// mountSelected selects the filesystem spec names among disks and mounts it
// at target for use.
func (s *supervisor) mountSelected(ctx context.Context, spec string, disks []job.Disk, target string, use blockdev.Use) (blockdev.Device, error) {
	devs, err := s.devices(ctx, disks)
	if err != nil {
		return blockdev.Device{}, err
	}
	d, err := blockdev.Select(spec, devs)
	if err != nil {
		return blockdev.Device{}, err
	}
	s.rep.Logf("mounting %s at %s %s", d, target, use)
	if err := layout.MountOne(&s.stack, d, Sysroot+target, "/", use, ""); err != nil {
		return d, err
	}
	return d, s.checkConfined(target, use)
}

// mountCache mounts the cache volume at /cache, creating its filesystem on
// first use. Without a cache volume a tmpfs stands in (and borg rereads
// everything, which is slow but correct).
func (s *supervisor) mountCache(ctx context.Context) error {
	dev, ok := s.serials[job.SerialCache]
	target := Sysroot + "/cache"
	if !ok {
		s.rep.Logf("no cache disk (serial %s): using a tmpfs, caches will not persist", job.SerialCache)
		return s.stack.Mount(boot.Mount{Source: "tmpfs", Target: target, FSType: "tmpfs", Data: "mode=0700"})
	}
	info, err := s.probe(ctx, dev)
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
	return s.stack.Mount(boot.Mount{Source: "/dev/" + dev, Target: target, FSType: fstype, Flags: unix.MS_NOSUID | unix.MS_NODEV})
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

// ninePTags lists the 9p shares the host offers.
func ninePTags() []string {
	ms, _ := filepath.Glob("/sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag")
	var tags []string
	for _, m := range ms {
		if b, err := os.ReadFile(m); err == nil {
			tags = append(tags, strings.TrimRight(string(b), "\x00\n"))
		}
	}
	return tags
}

// mount9p mounts the host share tag at target inside the userland.
func (s *supervisor) mount9p(tag, target string) error {
	return s.stack.Mount(boot.Mount{Source: tag, Target: Sysroot + target, FSType: "9p",
		Data: "trans=virtio,version=9p2000.L,msize=262144,cache=none,access=client"})
}

// restoreDisk is the pseudo client disk for the restore destination.
var restoreDisk = []job.Disk{{Serial: job.SerialRestore, Dev: "restore"}}
