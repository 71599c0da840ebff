package runner

import (
	"context"
	"errors"
	"fmt"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// backupTable is mode backup: it starts the repository when missing.
func backupTable(b *job.Backup) modeTable {
	return modeTable{job.ModeBackup, repoWrite, func(j *job.Job) { j.Backup = b }}
}

// Backup runs one client's backup job from snapshot to cleanup. It never
// returns with a resource of its own still in place, unless removing it
// failed, which the report says (and the ledger keeps for the next run).
// A client with several destinations gets the report of its first here;
// BackupAll reports each.
func (r *Runner) Backup(ctx context.Context, c *config.Resolved) *report.Job {
	return r.BackupAll(ctx, c)[0]
}

// BackupAll runs one client's backup job and reports it: one report for
// a client with one destination, one per destination (report.Job.Profile)
// for a client with several, each with that destination's outcome.
func (r *Runner) BackupAll(ctx context.Context, c *config.Resolved) []*report.Job {
	rep := newJobReport(c.Name, "", r.jobDir(c.Name))
	jctx, deadline, cancel := withJobLimit(ctx, c.TimeLimit.Duration)
	defer cancel()
	rep.deadline = deadline
	err := r.reverted(ctx, jobScope{client: c.Name, logDir: rep.LogDir}, &rep.Cleanups, func(rv *reverter) error {
		return whyStopped(jctx, c.TimeLimit.Duration, r.backup(jctx, c, rv, rep))
	})
	var warn *warningError
	if perr := r.runPost(ctx, c, rep, err); perr != nil && (err == nil || errors.As(err, &warn)) {
		err = perr
	}
	rep.Elapsed = time.Since(rep.Started)
	var skip *skipError
	switch {
	case errors.As(err, &skip):
		rep.Status, rep.Error = report.StatusSkipped, skip.reason
	case errors.As(err, &warn):
		rep.Status = job.StatusWarning
		rep.Warnings = warn.done.Warnings
	case err != nil:
		rep.Status, rep.Error = job.StatusFailed, err.Error()
	default:
		rep.Status = job.StatusOK
	}
	rows := []*report.Job{rep.Job}
	if c.Multi() {
		rows = destinationRows(c, rep)
	}
	for i, row := range rows {
		if row.Status != job.StatusOK && row.Status != job.StatusWarning {
			continue
		}
		// An append-only client's prune trusts only recorded backups; one
		// that is not recorded makes it refuse, nothing worse. The
		// record holds what the backend's listing calls it (restic: the
		// snapshot's id; borg: the archive's name).
		archive := row.Archive
		if row.Stats != nil && row.Stats.Archive != "" {
			archive = row.Stats.Archive
		}
		if err := r.recordArchive(c.Destinations()[i], archive); err != nil {
			row.Cleanups = append(row.Cleanups, fmt.Sprintf("record backup %s for hostctl prune: %v", archive, err))
		}
	}
	return rows
}

// destinationRows splits the report of a client with several destinations
// into one per destination, each with what the appliance's destination
// record says of it. A job that ended before its destinations (no
// snapshot, a skip, an appliance that died) gives every row its outcome;
// a destination the appliance wrote no record for failed.
func destinationRows(c *config.Resolved, rep *jobReport) []*report.Job {
	var recs map[int]job.Destination
	if rep.result != nil {
		recs = rep.result.Destinations()
	}
	var rows []*report.Job
	for i, d := range c.Destinations() {
		row := *rep.Job
		row.Profile = d.Profile.Name
		if i > 0 {
			row.Cleanups = nil // reported once, with the first
		}
		if len(recs) > 0 || (rep.result != nil && rep.Status != report.StatusSkipped) {
			dr, ok := recs[i]
			switch {
			case !ok && rep.Status == job.StatusFailed:
				// The job's own error (time limit, a dead appliance).
			case !ok:
				row.Status, row.Error, row.Stats = job.StatusFailed, "the appliance reported no outcome for this destination", nil
			default:
				row.Status, row.Error, row.Warnings, row.Stats = dr.Done.Status, dr.Done.Error, dr.Done.Warnings, dr.Stats
				if dr.Done.Archive != "" {
					row.Archive = dr.Done.Archive
				}
				if dr.Done.Status == job.StatusOK || dr.Done.Status == job.StatusWarning {
					if err := backupStats(dr.Stats); err != nil {
						row.Status, row.Error, row.Warnings = job.StatusFailed, err.Error(), job.Warnings{}
					}
				}
			}
		}
		rows = append(rows, &row)
	}
	return rows
}

type skipError struct{ reason string }

func (s *skipError) Error() string { return s.reason }

// warningError is a backup the appliance finished with status warning:
// written, but not complete. It passes the done record's warning to the
// report and is what post_snapshot sees as SB_OUTCOME=warning.
type warningError struct{ done job.Done }

func (w *warningError) Error() string { return w.done.Warning }

func (r *Runner) backup(ctx context.Context, c *config.Resolved, rv *reverter, rep *jobReport) error {
	if err := r.checkFreeSpace(); err != nil {
		return err
	}
	switch c.Type {
	case config.TypeSelf, config.TypePlain:
		return r.backupHostFiles(ctx, c, rv, rep)
	case config.TypeLVMHost:
		return r.backupHostLV(ctx, c, rv, rep)
	case config.TypeLVMLibvirt:
	default:
		return fmt.Errorf("client type %q is not supported", c.Type)
	}
	domXML, running, err := r.virt.DomainXML(ctx, c.Domain)
	if err != nil {
		return err
	}
	disks, err := virt.ClientDisks(domXML)
	if err != nil {
		return err
	}
	if len(disks) == 0 {
		return fmt.Errorf("domain %s has no disk to back up", c.Domain)
	}
	if !running && c.OfflineOK != nil && !*c.OfflineOK {
		return &skipError{fmt.Sprintf("domain %s is shut off and offline_ok = false", c.Domain)}
	}
	// The definition the backup's VM record keeps (the next boot's, not
	// the live one with a run's overlays).
	definition, err := r.virt.InactiveXML(ctx, c.Domain)
	if err == nil {
		definition, err = virt.ScrubDomainXML(definition, vmrecord.MaxDomain)
	}
	if err != nil {
		r.logf("%s: the VM record goes without the domain's definition: %v", c.Name, err)
		definition = ""
	}
	dir := r.jobDir(c.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The frozen images the appliance reads: for a running domain the bases
	// under fresh external snapshots and the LVM snapshots of its LVs, for
	// a shut-off one its disks as they are.
	rep.Mode = "offline"
	snaps := map[string]*lvm.LV{} // by disk target
	if running {
		rep.Mode = "live-snapshot"
		lvs, err := r.lookupLVs(ctx, c.Domain, disks)
		if err != nil {
			return err
		}
		if err := r.snapshotWithHooks(ctx, c, rv, rep, func(ctx context.Context) error {
			return r.snapshotLive(ctx, rv, c, dir, disks, lvs, snaps)
		}); err != nil {
			return err
		}
	}
	var taken []*lvm.LV
	for _, d := range disks {
		if s := snaps[d.Target]; s != nil {
			taken = append(taken, s)
		}
	}
	// While the appliance reads them, the classic snapshots are watched:
	// the guard cancels jctx before one overflows.
	jctx, stopGuard := r.watchSnapshots(ctx, taken)
	err = r.backupFrom(jctx, c, rv, rep, sources{disks: frozen(disks, snaps), domain: definition})
	if gerr := stopGuard(); gerr != nil && err != nil {
		return gerr // the guard's verdict is why the job stopped
	}
	return err
}

// sources is what a backup reads: the client's frozen disks, or a "self"
// client's read-only shares, or a "plain" one's cache directory.
type sources struct {
	disks     []virt.ClientDisk // Path: the frozen image (a snapshot, a shut-off disk)
	shares    []virt.ShareSpec
	jobShares []job.Share
	plain     string
	domain    string // the client domain's scrubbed definition, for the VM record
}

// frozen is disks with each LV replaced by its snapshot in snaps (by
// disk target).
func frozen(disks []virt.ClientDisk, snaps map[string]*lvm.LV) []virt.ClientDisk {
	out := slices.Clone(disks)
	for i, d := range out {
		if s := snaps[d.Target]; s != nil {
			out[i].Path = s.Path
		}
	}
	return out
}

// backupFrom backs up what src holds through the appliance.
func (r *Runner) backupFrom(ctx context.Context, c *config.Resolved, rv *reverter, rep *jobReport, src sources) error {
	dir := r.jobDir(c.Name)
	var overlays []virt.ClientDisk
	for _, d := range src.disks {
		// A throwaway overlay per disk: whatever the appliance writes
		// (journal replay) lands there, never on the frozen image.
		ov := filepath.Join(dir, d.Target+".appliance.qcow2")
		if _, err := rv.record(ledger.Entry{Kind: ledger.KindFile, Path: ov}); err != nil {
			return err
		}
		if err := r.images.CreateOverlay(ctx, ov, d.Path, d.Format); err != nil {
			return err
		}
		overlays = append(overlays, virt.ClientDisk{Target: d.Target, Path: ov, Format: "qcow2"})
	}
	rep.Archive = c.Name + "-" + r.runID
	aj, err := r.newJob(c, backupTable(&job.Backup{Archive: rep.Archive, Time: r.backupTime,
		Tree: c.Tree, Source: c.Backup.Source, Exclude: c.Backup.Exclude, Shares: src.jobShares, Plain: src.plain, Domain: src.domain}),
		timeLimit(applianceLimit(rep.deadline, c.TimeLimit.Duration)), withDisks(overlays), withShares(src.shares...))
	if err != nil {
		return err
	}
	res, err := r.runReported(ctx, rv, aj, rep)
	if err != nil {
		return err
	}
	rep.result = res
	rep.VMRecord = textsafe.Line(res.Done.VMRecord)
	if c.Multi() {
		// Each destination's outcome is its row's (destinationRows);
		// the job is ok or a warning as the appliance says.
		switch res.Done.Status {
		case job.StatusOK:
			return nil
		case job.StatusWarning:
			return &warningError{res.Done}
		}
		return applianceFailure(res, aj.logPath())
	}
	if s, ok := res.Stats(); ok {
		rep.Stats = &s
	}
	switch res.Done.Status {
	case job.StatusOK, job.StatusWarning:
		if err := backupWritten(res); err != nil {
			return err
		}
		if res.Done.Status == job.StatusWarning {
			return &warningError{res.Done}
		}
		return nil
	}
	return applianceFailure(res, aj.logPath())
}

// backupWritten checks that an appliance which says it backed up also says
// what: the backend's stats with at least one file. The appliance fails
// such a backup itself; a result without them comes from a broken or
// taken-over appliance and is no backup. (One that lies in its stats too
// is caught by the next verify, which restores in an appliance that never
// sees the client's disks.)
func backupWritten(res *job.Result) error {
	s, ok := res.Stats()
	if !ok {
		return fmt.Errorf("the appliance reported %q but no backup statistics: not counted as a backup", res.Done.Status)
	}
	return backupStats(&s)
}

// backupStats is backupWritten's check of the stats of one destination.
func backupStats(s *job.Stats) error {
	switch {
	case s == nil:
		return fmt.Errorf("the appliance reported a backup but no backup statistics: not counted as a backup")
	case s.Files <= 0:
		return fmt.Errorf("the appliance reported a backup of %d files: not counted as a backup", s.Files)
	}
	return nil
}

// snapshotLive takes one atomic external disk-only snapshot of every
// writable file disk of a running domain, and an LVM snapshot of each of
// its LVs (lvs, by target; the snapshots go into snaps). The domain then
// writes to overlays in dir and its original images are frozen until the
// overlays are committed back (by the reverter, through the ledger). With
// LVs and more than one snapshot to take, the domain is suspended around
// them so that they are consistent with each other.
func (r *Runner) snapshotLive(ctx context.Context, rv *reverter, c *config.Resolved, dir string, disks []virt.ClientDisk, lvs, snaps map[string]*lvm.LV) error {
	domain := c.Domain
	overlays := map[string]string{}
	for _, d := range disks {
		if d.ReadOnly || d.Block {
			continue // unchanging: consistent without a snapshot; LVs: below
		}
		ov := filepath.Join(dir, d.Target+".snapshot.qcow2")
		overlays[d.Target] = ov
		if _, err := rv.record(ledger.Entry{Kind: ledger.KindSnapshot, Domain: domain,
			Disk: d.Target, Path: ov, Base: d.Path, BaseFormat: d.Format}); err != nil {
			return err
		}
	}
	take := func() error {
		for _, d := range disks {
			lv := lvs[d.Target]
			if lv == nil {
				continue
			}
			s, err := r.snapshotLV(ctx, rv, c.Client, lv)
			if err != nil {
				return err
			}
			snaps[d.Target] = s
		}
		if len(overlays) == 0 {
			return nil
		}
		snapXML, err := virt.SnapshotXML("hostctl-"+r.runID, disks, overlays)
		if err != nil {
			return err
		}
		r.logf("%s: snapshot of %d disk(s)", domain, len(overlays))
		return r.virt.SnapshotDiskOnly(ctx, domain, snapXML)
	}
	parts := len(lvs)
	if len(overlays) > 0 {
		parts++
	}
	if len(lvs) > 0 && parts > 1 {
		return r.suspended(ctx, rv, domain, take)
	}
	return take()
}
