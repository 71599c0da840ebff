package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
)

// cleanupTimeout bounds undoing one resource. Cleanup runs on a context of
// its own: it must still happen after the run's context was cancelled.
const cleanupTimeout = 10 * time.Minute

// Undo removes the resource e records and then forgets it. It is the single
// place that knows how to undo each kind, used both at the end of every job
// and when a later run reconciles what a crashed one left.
// lm may be nil where no LVM snapshot can have been recorded.
func Undo(ctx context.Context, hv virt.Hypervisor, lm lvm.Manager, l *ledger.Ledger, e *ledger.Entry) error {
	var err error
	switch e.Kind {
	case ledger.KindDomain:
		err = hv.Destroy(ctx, e.Name)
	case ledger.KindFile:
		err = os.Remove(e.Path)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	case ledger.KindSnapshot:
		err = undoSnapshot(ctx, hv, e)
	case ledger.KindLVMSnapshot:
		if lm == nil {
			err = errors.New("no LVM manager to remove it with")
		} else {
			err = lvm.RemoveSnapshot(ctx, lm, e.VG, e.Name, e.Origin)
		}
	default:
		err = fmt.Errorf("unknown kind %q", e.Kind)
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", e.String(), err)
	}
	return l.Forget(e)
}

// undoSnapshot merges an external snapshot's overlay back into its base and
// points the domain at the base again, then deletes the overlay. The overlay
// holds the guest's writes since the snapshot: it is deleted only once
// neither the live nor the persistent definition refers to it.
func undoSnapshot(ctx context.Context, hv virt.Hypervisor, e *ledger.Entry) error {
	xml, running, err := hv.DomainXML(ctx, e.Domain)
	if errors.Is(err, virt.ErrNoDomain) {
		if _, statErr := os.Stat(e.Path); errors.Is(statErr, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("domain %s is gone but overlay %s (guest writes since the snapshot) exists: merge it by hand with `qemu-img commit`", e.Domain, e.Path)
	}
	if err != nil {
		return err
	}
	onOverlay, err := diskUses(xml, e.Disk, e.Path)
	if err != nil {
		return err
	}
	if onOverlay {
		if running {
			if err := hv.BlockCommitActive(ctx, e.Domain, e.Disk); err != nil {
				return err
			}
		} else {
			if err := commitOverlay(ctx, e.Path); err != nil {
				return err
			}
			if err := repointInactive(ctx, hv, e); err != nil {
				return err
			}
		}
	}
	// After a live pivot the persistent definition may still name the
	// overlay; the next boot must use the base.
	inactive, err := hv.InactiveXML(ctx, e.Domain)
	if err != nil {
		return err
	}
	if uses, err := diskUses(inactive, e.Disk, e.Path); err != nil {
		return err
	} else if uses {
		if err := repointInactive(ctx, hv, e); err != nil {
			return err
		}
	}
	if err := os.Remove(e.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func repointInactive(ctx context.Context, hv virt.Hypervisor, e *ledger.Entry) error {
	inactive, err := hv.InactiveXML(ctx, e.Domain)
	if err != nil {
		return err
	}
	fixed, err := virt.ReplaceDiskSource(inactive, e.Disk, e.Base, e.BaseFormat)
	if err != nil {
		return err
	}
	return hv.Define(ctx, fixed)
}

// diskUses says whether disk target of a domain XML has path as its source.
func diskUses(domainXML, target, path string) (bool, error) {
	disks, err := virt.ClientDisks(domainXML)
	if err != nil {
		return false, err
	}
	for _, d := range disks {
		if d.Target == target {
			return d.Path == path, nil
		}
	}
	return false, nil
}

// Reconcile undoes everything the ledger still lists: leftovers of a run
// that crashed or was killed. It reports each to w and returns the joined
// errors of those it could not remove (they stay in the ledger).
func Reconcile(ctx context.Context, hv virt.Hypervisor, lm lvm.Manager, l *ledger.Ledger, w io.Writer) (int, error) {
	entries, err := l.List()
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	// Newest first: a domain is destroyed before the disks it used.
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		fmt.Fprintf(w, "cleanup: leftover of run %s: %s\n", e.RunID, e.String())
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		err := Undo(uctx, hv, lm, l, e)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// reverter undoes, newest first, the resources one job created.
type reverter struct {
	hv      virt.Hypervisor
	lvm     lvm.Manager // nil for jobs that take no LVM snapshot
	l       *ledger.Ledger
	entries []*ledger.Entry
}

// record writes e to the ledger before the resource is created.
func (r *reverter) record(e ledger.Entry) error {
	rec, err := r.l.Record(e)
	if err != nil {
		return err
	}
	r.entries = append(r.entries, rec)
	return nil
}

// undoAll removes every recorded resource, newest first, on a context of
// its own so that a cancelled run still cleans up.
func (r *reverter) undoAll(ctx context.Context) error {
	var errs []error
	for i := len(r.entries) - 1; i >= 0; i-- {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		if err := Undo(uctx, r.hv, r.lvm, r.l, r.entries[i]); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	r.entries = nil
	return errors.Join(errs...)
}

// reverted runs f with a fresh reverter and then undoes everything f
// recorded, whether f failed or not. It returns f's error, or else the
// cleanup's; a cleanup error is also appended to cleanups when that is set
// (job reports list them apart from the job's own error).
func (r *Runner) reverted(ctx context.Context, cleanups *[]string, f func(rv *reverter) error) error {
	rv := &reverter{hv: r.Virt, l: r.Ledger, lvm: r.lvmManager()}
	err := f(rv)
	if cerr := rv.undoAll(ctx); cerr != nil {
		if cleanups != nil {
			*cleanups = append(*cleanups, cerr.Error())
		}
		if err == nil {
			err = fmt.Errorf("cleanup: %w", cerr)
		}
	}
	return err
}
