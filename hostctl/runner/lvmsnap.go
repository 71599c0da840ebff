package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
)

// lookupLVs finds the LV behind every writable block disk of a running
// domain, by target. Read-only disks need no snapshot. A block device that
// is not an LV cannot be snapshotted: refused, because reading it while the
// guest writes would make a backup that only looks complete.
func (r *Runner) lookupLVs(ctx context.Context, domain string, disks []virt.ClientDisk) (map[string]*lvm.LV, error) {
	lvs := map[string]*lvm.LV{}
	for _, d := range disks {
		if !d.Block || d.ReadOnly {
			continue
		}
		lv, err := r.lvm.Lookup(ctx, d.Path)
		if errors.Is(err, lvm.ErrNotLV) {
			return nil, fmt.Errorf("domain %s disk %s: %s is a block device but not an LVM logical volume: hostctl cannot snapshot it (shut the domain off to back it up offline)", domain, d.Target, d.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("domain %s disk %s: %w", domain, d.Target, err)
		}
		lvs[d.Target] = lv
	}
	return lvs, nil
}

// snapshotName is the name of the snapshot of LV name in run runID: easy
// to tell apart, unique per run.
func snapshotName(name, runID string) string { return name + "-hostctl-" + runID }

// snapshotLV records and takes one LVM snapshot of origin: thin for a thin
// volume, else classic with the client's snapshot size.
func (r *Runner) snapshotLV(ctx context.Context, rv *reverter, c *config.Client, origin *lvm.LV) (*lvm.LV, error) {
	name := snapshotName(origin.Name, r.runID)
	if _, err := rv.record(ledger.Entry{Kind: ledger.KindLVMSnapshot, VG: origin.VG, Name: name, Origin: origin.Name}); err != nil {
		return nil, err
	}
	var size int64
	if !origin.Thin() {
		ss := r.cfg.SnapshotSizeFor(c)
		size = lvm.SnapshotSize(origin.Size, ss.Bytes, ss.Percent)
	}
	snap, err := r.lvm.Snapshot(ctx, origin, name, size)
	if err != nil {
		return nil, err
	}
	if origin.Thin() {
		r.logf("%s: thin LVM snapshot %s of %s", c.Name, snap.ID(), origin.ID())
	} else {
		r.logf("%s: LVM snapshot %s of %s (%d MiB copy-on-write)", c.Name, snap.ID(), origin.ID(), size>>20)
	}
	return snap, nil
}

// watchSnapshots runs the overflow guard over the classic snapshots in
// snaps until the returned stop is called. When the guard fires it cancels
// the returned context (the appliance is destroyed); stop returns its
// verdict, which then is the job's error.
func (r *Runner) watchSnapshots(ctx context.Context, snaps []*lvm.LV) (context.Context, func() error) {
	var classic []*lvm.LV
	for _, s := range snaps {
		if !s.Thin() {
			classic = append(classic, s)
		}
	}
	if len(classic) == 0 {
		return ctx, func() error { return nil }
	}
	jobCtx, cancelJob := context.WithCancelCause(ctx)
	watchCtx, stopWatch := context.WithCancel(ctx)
	g := &lvm.Guard{M: r.lvm, Snaps: classic,
		Limit: float64(r.cfg.Host.LVM.AbortPercent), Interval: r.cfg.Host.LVM.PollInterval.Duration}
	// No logging from the guard's goroutine: r.out belongs to the job's
	// progress printer. Its verdict reaches the report through stop.
	done := make(chan error, 1)
	go func() {
		err := g.Run(watchCtx)
		if err != nil {
			cancelJob(err)
		}
		done <- err
	}()
	return jobCtx, func() error {
		stopWatch()
		err := <-done
		cancelJob(nil)
		return err
	}
}

// suspended runs f with domain suspended, and resumes it whatever happens:
// snapshots of several disks taken one after another are then consistent
// with each other. The suspend is recorded first, so that the next run
// resumes a domain a killed hostctl left paused. A domain that is paused
// already (an operator's `virsh suspend`) is quiet as it is: it is neither
// suspended nor resumed.
func (r *Runner) suspended(ctx context.Context, rv *reverter, domain string, f func() error) (err error) {
	st, err := r.virt.DomainState(ctx, domain)
	if err != nil {
		return err
	}
	if st != virt.StateRunning {
		r.logf("%s: %s already: snapshotted as it is, and left so", domain, st)
		return f()
	}
	e, err := rv.record(ledger.Entry{Kind: ledger.KindSuspend, Domain: domain})
	if err != nil {
		return err
	}
	r.logf("%s: suspended while its LV(s) and file disk(s) are snapshotted", domain)
	if err := r.virt.Suspend(ctx, domain); err != nil {
		return errors.Join(err, rv.undo(ctx, e))
	}
	defer func() {
		if rerr := rv.undo(ctx, e); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	return f()
}
