package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
)

// cleanupTimeout bounds undoing one resource. Cleanup runs on a context of
// its own: it must still happen after the run's context was cancelled.
const cleanupTimeout = 10 * time.Minute

// StopBound is the longest cleanup of one job once it is stopped: its
// hooks (hooks.StopBound, zero without hooks), destroying the appliance,
// and undoing its resources, of which those that can take long are one per
// disk (merging an overlay back, removing an LVM snapshot), each bounded by
// cleanupTimeout. The rest (files, directories, resume, thaw) take moments.
// systemd's TimeoutStopSec must be longer (hostctl install-timer).
func StopBound(hookBound time.Duration, disks int) time.Duration {
	return hookBound + destroyTimeout + time.Duration(disks)*cleanupTimeout
}

// Undo removes the resource e records and then forgets it. It is the single
// place that knows how to undo each kind, used both at the end of every job
// and when a later run reconciles what a crashed one left.
func Undo(ctx context.Context, d Deps, e *ledger.Entry) error {
	d = d.withDefaults()
	hv := d.Virt
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
		err = undoSnapshot(ctx, hv, d.Images, e)
	case ledger.KindLVMSnapshot:
		err = lvm.RemoveSnapshot(ctx, d.LVM, e.VG, e.Name, e.Origin)
	case ledger.KindDir:
		err = removeDir(e.Path)
	case ledger.KindSuspend:
		err = undoSuspend(ctx, hv, e.Domain)
	case ledger.KindFreeze:
		err = undoFreeze(ctx, hv, e.Domain)
	default:
		err = fmt.Errorf("unknown kind %q", e.Kind)
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", e.String(), err)
	}
	return d.Ledger.Forget(e)
}

// undoSnapshot merges an external snapshot's overlay back into its base and
// points the domain at the base again, then deletes the overlay. The overlay
// holds the guest's writes since the snapshot: it is deleted only once
// neither the live nor the persistent definition refers to it.
func undoSnapshot(ctx context.Context, hv virt.Hypervisor, img Images, e *ledger.Entry) error {
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
			if err := commitLive(ctx, hv, e); err != nil {
				return err
			}
		} else {
			if err := img.Commit(ctx, e.Path); err != nil {
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

// commitLive merges the overlay of a running domain into its base. A
// commit job already running on the disk is one a killed hostctl started:
// it is taken over (waited for and pivoted), never started twice, which
// libvirt would refuse.
func commitLive(ctx context.Context, hv virt.Hypervisor, e *ledger.Entry) error {
	bj, err := hv.BlockJob(ctx, e.Domain, e.Disk)
	if err != nil {
		return err
	}
	switch bj.Type {
	case "":
		return hv.BlockCommitActive(ctx, e.Domain, e.Disk)
	case virt.JobActiveCommit:
		if err := hv.FinishBlockCommit(ctx, e.Domain, e.Disk); err != nil {
			return fmt.Errorf("take over the running commit: %w", err)
		}
		// The job may have been started with another base than ours:
		// the live disk must be on e.Base now.
		xml, _, err := hv.DomainXML(ctx, e.Domain)
		if err != nil {
			return err
		}
		if onBase, err := diskUses(xml, e.Disk, e.Base); err != nil {
			return err
		} else if !onBase {
			return fmt.Errorf("after the running commit of %s %s was pivoted, the disk is not on the base %s: look at it with `virsh domblklist %s`", e.Domain, e.Disk, e.Base, e.Domain)
		}
		return nil
	default:
		return fmt.Errorf("a %s block job runs on disk %s of %s, which hostctl does not start: wait for it or end it (virsh blockjob %s %s), the overlay %s stays until then", bj.Type, e.Disk, e.Domain, e.Domain, e.Disk, e.Path)
	}
}

// undoSuspend resumes a domain hostctl suspended. Only a domain that is
// still paused by a suspend is resumed: one shut off or running since needs
// nothing, and one the hypervisor paused (an I/O error, a migration) is
// not ours to resume.
func undoSuspend(ctx context.Context, hv virt.Hypervisor, domain string) error {
	st, err := hv.DomainState(ctx, domain)
	if errors.Is(err, virt.ErrNoDomain) {
		return nil
	}
	if err != nil {
		return err
	}
	switch st {
	case virt.StateSuspended:
		return hv.Resume(ctx, domain)
	case virt.StatePaused:
		return fmt.Errorf("domain %s is paused by the hypervisor (an I/O error? `virsh domstate --reason %s`), not by hostctl's suspend: not resuming it", domain, domain)
	default:
		return nil
	}
}

// undoFreeze thaws a domain's filesystems through its guest agent. A domain
// that is gone or shut off has nothing frozen.
func undoFreeze(ctx context.Context, hv virt.Hypervisor, domain string) error {
	st, err := hv.DomainState(ctx, domain)
	if errors.Is(err, virt.ErrNoDomain) || st == virt.StateOff {
		return nil
	}
	if err != nil {
		return err
	}
	return hv.FSThaw(ctx, domain)
}

// removeDir removes an empty job directory, and its parent (the run's
// directory on the run dir) when that is empty too. A directory that still
// holds files is an error: they have ledger entries of their own.
func removeDir(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_ = os.Remove(filepath.Dir(p)) // fails while another job's directory is in it
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
