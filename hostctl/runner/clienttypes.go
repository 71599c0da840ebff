package runner

import (
	"context"
	"fmt"
	"os"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// selfShareTag is the 9p tag of a "self" client's i-th path.
func selfShareTag(i int) string { return fmt.Sprintf("sbself%d", i) }

// backupHostFiles backs up a "self" client (host directories, shared
// read-only with the appliance, no snapshot) or a "plain" one (a directory
// on the appliance's cache volume). There is no domain; the hooks run on
// this host around the (empty) snapshot step, as for every client.
func (r *Runner) backupHostFiles(ctx context.Context, c *config.Resolved, rv *reverter, rep *jobReport) error {
	var x sources
	switch c.Type {
	case config.TypeSelf:
		rep.Mode = "host-paths"
		for i, p := range c.Paths {
			fi, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("client %s: %w", c.Name, err)
			}
			if !fi.IsDir() {
				return fmt.Errorf("client %s: %s is not a directory", c.Name, p)
			}
			x.shares = append(x.shares, virt.ShareSpec{Dir: p, Tag: selfShareTag(i), ReadOnly: true})
			x.jobShares = append(x.jobShares, job.Share{Tag: selfShareTag(i), Path: p})
		}
	case config.TypePlain:
		rep.Mode = "cache-directory"
		x.plain = c.PlainDir
	}
	dir := r.jobDir(c.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := r.snapshotWithHooks(ctx, c, rv, rep, func(context.Context) error { return nil }); err != nil {
		return err
	}
	return r.backupFrom(ctx, c, rv, rep, x)
}

// backupHostLV backs up an "lvm_host" client: an LV of this host,
// snapshotted (classic or thin) and attached as the client's target_device.
// Only LVs of this host: lvm.Lookup of "vg/lv" asks this host's LVM.
func (r *Runner) backupHostLV(ctx context.Context, c *config.Resolved, rv *reverter, rep *jobReport) error {
	origin, err := r.lvm.Lookup(ctx, c.HostDevice)
	if err != nil {
		return fmt.Errorf("client %s: host_device %s: %w", c.Name, c.HostDevice, err)
	}
	if origin.Origin != "" || (len(origin.Attr) > 0 && origin.Attr[0] == 's') {
		return fmt.Errorf("client %s: host_device %s is itself a snapshot", c.Name, c.HostDevice)
	}
	dir := r.jobDir(c.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	rep.Mode = "lvm-snapshot"
	disk := virt.ClientDisk{Target: c.TargetDevice, Path: origin.Path, Format: "raw", Block: true}
	snaps := map[string]*lvm.LV{}
	if err := r.snapshotWithHooks(ctx, c, rv, rep, func(ctx context.Context) error {
		s, err := r.snapshotLV(ctx, rv, c.Client, origin)
		if err != nil {
			return err
		}
		snaps[disk.Target] = s
		return nil
	}); err != nil {
		return err
	}
	jctx, stopGuard := r.watchSnapshots(ctx, []*lvm.LV{snaps[disk.Target]})
	err = r.backupFrom(jctx, c, rv, rep, sources{disks: frozen([]virt.ClientDisk{disk}, snaps)})
	if gerr := stopGuard(); gerr != nil && err != nil {
		return gerr
	}
	return err
}
