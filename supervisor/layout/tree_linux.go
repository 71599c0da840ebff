package layout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

// Mounter mounts and unmounts filesystems (boot.Stack).
type Mounter interface {
	Mount(m boot.Mount) error
	Unmount(mountpoint string) error
}

var _ Mounter = (*boot.Stack)(nil)

// probeDir is where candidate root filesystems are looked into for an
// /etc/fstab.
const probeDir = "/run/sb/fstab-probe"

// MaxFstab bounds a guest's /etc/fstab (real ones are a few hundred bytes).
const MaxFstab = 1 << 20

// MountOne mounts device d at where (absolute, "/" for the top) in the
// tree whose top is root, for use. where is resolved beneath root without
// following a symlink: the tree above it is the guest's. A mount point
// that is missing is created unless the tree is a snapshot.
func MountOne(mnt Mounter, d blockdev.Device, root, where string, use blockdev.Use, subvol string) error {
	fstype, flags, data := blockdev.MountOptions(d, use, boot.ReadOnly(d.Dev))
	if subvol != "" {
		data = strings.TrimPrefix(data+",subvol="+subvol, ",")
	}
	m := boot.Mount{Source: "/dev/" + d.Dev, Mountpoint: filepath.Join(root, where), Root: root, FSType: fstype, Flags: flags, Data: data,
		MakeDirs: use != blockdev.Snapshot}
	if err := mnt.Mount(m); err != nil {
		var se *boot.SymlinkError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("mount point %s of %s: %w: the appliance follows no symlink in a mount point", where, d.Name(), err)
		case errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("mount point %s of %s does not exist in the filesystem above it", where, d.Name())
		}
		return fmt.Errorf("mount %s on %s: %w", d.Name(), where, err)
	}
	return nil
}

// Planned is one filesystem of a client's tree: the device, where it goes
// (an absolute path inside the client) and its btrfs subvolume.
type Planned struct {
	Where  string
	Dev    blockdev.Device
	Subvol string
	// MkFS: the recovery makes Dev's filesystem (FSType, UUID, Label).
	MkFS bool
}

// MountTree mounts the client's tree at mountpoint as b says: one filesystem
// (b.Mount), several (b.Mounts), or the guest's fstab (b.Mount =
// job.MountFstab). It returns a line per mounted filesystem.
func (l *Layout) MountTree(ctx context.Context, mnt Mounter, devs []blockdev.Device, b job.Tree, mountpoint string, use blockdev.Use) ([]string, error) {
	plan, err := l.PlanTree(mnt, devs, b)
	if err != nil {
		return nil, err
	}
	return l.MountPlan(mnt, plan, mountpoint, use)
}

// PlanTree resolves b to the devices of the client's tree, shallowest
// mount point first, without mounting anything but the fstab probes.
func (l *Layout) PlanTree(mnt Mounter, devs []blockdev.Device, b job.Tree) ([]Planned, error) {
	var plan []blockdev.MountPoint
	switch {
	case len(b.Mounts) > 0:
		for _, m := range b.Mounts {
			plan = append(plan, blockdev.MountPoint{Where: m.Where, What: m.What})
		}
		var err error
		if plan, err = blockdev.OrderMounts(plan); err != nil {
			return nil, fmt.Errorf("backup.mount: %w", err)
		}
	case b.Mount == job.MountFstab:
		root, fstab, err := l.findFstabRoot(mnt, devs)
		if err != nil {
			return nil, err
		}
		entries, err := blockdev.ParseFstab(fstab)
		if err != nil {
			return nil, fmt.Errorf("%s: /etc/fstab: %w", root.Name(), err)
		}
		p, skipped, err := blockdev.FstabPlan(entries)
		if err != nil {
			return nil, fmt.Errorf("%s: /etc/fstab: %w", root.Name(), err)
		}
		for _, s := range skipped {
			l.logf("fstab: leaving out %s", s)
		}
		// The root is the filesystem that holds the fstab, whatever its
		// own "/" line calls it (a name from the guest's view of its disks).
		plan = append([]blockdev.MountPoint{{Where: "/", What: root.Name()}}, p[1:]...)
	default:
		plan = []blockdev.MountPoint{{Where: "/", What: b.Mount}}
	}
	var out []Planned
	for _, m := range plan {
		d, err := blockdev.Select(m.What, devs)
		if err != nil && m.Optional && l.RequireAll {
			return nil, fmt.Errorf("%s: %w: the VM's fstab marks it nofail, but its files would be restored onto the filesystem above it (give the VM that filesystem, or restore with --mkfs onto disks that have it)", m.Where, err)
		}
		if err != nil && m.Optional {
			l.logf("fstab: %s on %s is nofail and not there: left out (%v)", m.What, m.Where, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Where, err)
		}
		out = append(out, Planned{Where: m.Where, Dev: d, Subvol: m.Subvol})
	}
	return out, nil
}

// MountPlan mounts a planned tree at mountpoint, in order.
func (l *Layout) MountPlan(mnt Mounter, plan []Planned, mountpoint string, use blockdev.Use) ([]string, error) {
	var done []string
	for _, m := range plan {
		if err := MountOne(mnt, m.Dev, mountpoint, m.Where, use, m.Subvol); err != nil {
			return done, err
		}
		line := fmt.Sprintf("%s on %s", m.Dev, m.Where)
		l.logf("mounted %s %s", line, use)
		done = append(done, line)
	}
	return done, nil
}

// findFstabRoot finds the client's root filesystem: the one mountable
// filesystem with an /etc/fstab (several: the one its own fstab mounts on
// "/"). It returns the device and the fstab's content.
func (l *Layout) findFstabRoot(mnt Mounter, devs []blockdev.Device) (blockdev.Device, string, error) {
	type cand struct {
		d     blockdev.Device
		fstab string
	}
	var cands []cand
	var tried []string
	probe := l.ProbeDir
	if probe == "" {
		probe = probeDir
	}
	for _, d := range devs {
		if !d.Mountable() {
			continue
		}
		tried = append(tried, d.Name())
		if err := MountOne(mnt, d, probe, "/", blockdev.Snapshot, ""); err != nil {
			l.logf("fstab: looking into %s: %v", d.Name(), err)
			continue
		}
		b, err := boot.ReadFileInRoot(probe, "/etc/fstab", MaxFstab)
		if uerr := mnt.Unmount(probe); uerr != nil {
			return blockdev.Device{}, "", uerr
		}
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return blockdev.Device{}, "", fmt.Errorf("%s: read /etc/fstab: %w", d.Name(), err)
		}
		cands = append(cands, cand{d, string(b)})
	}
	switch len(cands) {
	case 0:
		return blockdev.Device{}, "", fmt.Errorf("backup.mount = \"fstab\": no filesystem with an /etc/fstab among %s", strings.Join(tried, ", "))
	case 1:
		return cands[0].d, cands[0].fstab, nil
	}
	var names []string
	for _, c := range cands {
		names = append(names, c.d.Name())
		entries, err := blockdev.ParseFstab(c.fstab)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if path.Clean(e.File) == "/" {
				if sel, err := blockdev.Select(e.Spec, devs); err == nil && sel.Dev == c.d.Dev {
					return c.d, c.fstab, nil
				}
			}
		}
	}
	return blockdev.Device{}, "", fmt.Errorf("backup.mount = \"fstab\": several filesystems hold an /etc/fstab (%s) and none mounts itself on \"/\": name the root with a backup.mount table", strings.Join(names, ", "))
}
