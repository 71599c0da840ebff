package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// Job outcomes.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"

	// StatusWarning: the backup was written but the backend said it is
	// incomplete (Report.Warning, Unreadable); no retention ran after it.
	StatusWarning = "warning"
)

// Report is the outcome of one client job.
type Report struct {
	Client   string        `json:"client"`
	Status   string        `json:"status"`
	Error    string        `json:"error,omitempty"`
	Archive  string        `json:"archive,omitempty"`
	Mode     string        `json:"mode"` // how the disks were taken: "live-snapshot" or "offline"
	Started  time.Time     `json:"started"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Stats    *job.Stats    `json:"stats,omitempty"`
	LogDir   string        `json:"log_dir"`
	Appl     time.Duration `json:"appliance_ns"`         // domain start to gone
	Backend  time.Duration `json:"backend_ns,omitempty"` // inside the backup tool
	ReadyIn  time.Duration `json:"ready_ns,omitempty"`   // kernel start to supervisor ready
	Cleanups []string      `json:"cleanup_errors,omitempty"`
	// Pause is the pause window: end of pre_snapshot to start of
	// on_snapshot (the snapshot alone without hooks).
	Pause  time.Duration  `json:"pause_ns,omitempty"`
	Frozen time.Duration  `json:"frozen_ns,omitempty"` // filesystems frozen (freeze = true)
	Hooks  []hooks.Result `json:"hooks,omitempty"`
	hooks  *jobHooks      // for post_snapshot
	// deadline is when the job's time_limit passes (zero: none).
	deadline time.Time

	// Verify is a verify's outcome (Stats then holds the files and bytes
	// compared).
	Verify *job.Verification `json:"verify,omitempty"`

	// Warning (status warning) is the backend's one line; Unreadable the
	// first job.MaxUnreadable paths it could not read, UnreadableCount
	// how many.
	Warning         string   `json:"warning,omitempty"`
	Unreadable      []string `json:"unreadable,omitempty"`
	UnreadableCount int      `json:"unreadable_count,omitempty"`
}

// Backup runs one client's backup job from snapshot to cleanup. It never
// returns with a resource of its own still in place, unless removing it
// failed, which the report says (and the ledger keeps for the next run).
func (r *Runner) Backup(ctx context.Context, c *config.Client) *Report {
	rep := &Report{Client: c.Name, Started: time.Now(), LogDir: r.jobDir(c.Name)}
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
		rep.Status, rep.Error = StatusSkipped, skip.reason
	case errors.As(err, &warn):
		rep.Status = StatusWarning
		rep.Warning, rep.Unreadable, rep.UnreadableCount = warn.done.Warning, warn.done.Unreadable, warn.done.UnreadableCount
	case err != nil:
		rep.Status, rep.Error = StatusFailed, err.Error()
	default:
		rep.Status = StatusOK
	}
	return rep
}

type skipError struct{ reason string }

func (s *skipError) Error() string { return s.reason }

// warningError is a backup the appliance finished with status warning:
// written, but not complete. It passes the done record's warning to the
// report and is what post_snapshot sees as SB_OUTCOME=warning.
type warningError struct{ done job.Done }

func (w *warningError) Error() string { return w.done.Warning }

func (r *Runner) backup(ctx context.Context, c *config.Client, rv *reverter, rep *Report) error {
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
	if r.Cfg.ProfileFor(c) == nil {
		return fmt.Errorf("client %s: no profile", c.Name)
	}
	domXML, running, err := r.Virt.DomainXML(ctx, c.Domain)
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
	err = r.backupFrom(jctx, c, rv, rep, dir, disks, snaps, extraSources{})
	if gerr := stopGuard(); gerr != nil && err != nil {
		return gerr // the guard's verdict is why the job stopped
	}
	return err
}

// backupFrom backs up the frozen disks (LVs replaced by their snapshots in
// snaps) through the appliance.
func (r *Runner) backupFrom(ctx context.Context, c *config.Client, rv *reverter, rep *Report, dir string, disks []virt.ClientDisk, snaps map[string]*lvm.LV, x extraSources) error {
	var attached []virt.DiskSpec
	var jobDisks []job.Disk
	for i, d := range disks {
		base := d.Path
		if s := snaps[d.Target]; s != nil {
			base = s.Path
		}
		// A throwaway overlay per disk: whatever the appliance writes
		// (journal replay) lands there, never on the base.
		ov := filepath.Join(dir, d.Target+".appliance.qcow2")
		if _, err := rv.record(ledger.Entry{Kind: ledger.KindFile, Path: ov}); err != nil {
			return err
		}
		if err := createOverlay(ctx, ov, base, d.Format); err != nil {
			return err
		}
		serial := fmt.Sprintf("%s%d", job.DiskSerialPrefix, i)
		attached = append(attached, virt.DiskSpec{Path: ov, Format: "qcow2", Serial: serial})
		jobDisks = append(jobDisks, job.Disk{Serial: serial, Dev: d.Target})
	}
	aj, err := r.clientJob(c, job.ModeBackup, "", repoWrite)
	if err != nil {
		return err
	}
	aj.shares = append(aj.shares, x.shares...)
	aj.disks = attached
	rep.Archive = c.Name + "-" + r.RunID
	j := aj.job
	j.TimeLimit = job.Duration{Duration: applianceLimit(rep.deadline, c.TimeLimit.Duration)}
	j.Disks = jobDisks
	j.Backup = &job.Backup{Archive: rep.Archive, Time: r.BackupTime,
		Tree:   job.Tree{Mount: c.Backup.Mount, Mounts: c.Backup.Mounts},
		Source: c.Backup.Source, Exclude: c.Backup.Exclude, Shares: x.jobShares, Plain: x.plain}
	out, err := r.runAppliance(ctx, rv, aj)
	if out != nil {
		rep.Appl = out.elapsed
	}
	if err != nil {
		return err
	}
	if s, ok := out.result.Stats(); ok {
		rep.Stats = &s
	}
	rep.Backend, rep.ReadyIn = out.result.Done.BackendElapsed, out.result.Done.ReadyAfter
	switch out.result.Done.Status {
	case job.StatusOK, job.StatusWarning:
		if err := backupWritten(out.result); err != nil {
			return err
		}
		if out.result.Done.Status == job.StatusWarning {
			return &warningError{out.result.Done}
		}
		return nil
	}
	return applianceFailure(out.result, aj.logPath())
}

// backupWritten checks that an appliance which says it backed up also says
// what: the backend's stats with at least one file. The appliance fails
// such a backup itself; a result without them comes from a broken or
// taken-over appliance and is no backup. (One that lies in its stats too
// is caught by the next verify, which restores in an appliance that never
// sees the client's disks.)
func backupWritten(res *job.Result) error {
	s, ok := res.Stats()
	switch {
	case !ok:
		return fmt.Errorf("the appliance reported %q but no backup statistics: not counted as a backup", res.Done.Status)
	case s.Files <= 0:
		return fmt.Errorf("the appliance reported %q for an archive of %d files: not counted as a backup", res.Done.Status, s.Files)
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
func (r *Runner) snapshotLive(ctx context.Context, rv *reverter, c *config.Client, dir string, disks []virt.ClientDisk, lvs, snaps map[string]*lvm.LV) error {
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
			s, err := r.snapshotLV(ctx, rv, c, lv)
			if err != nil {
				return err
			}
			snaps[d.Target] = s
		}
		if len(overlays) == 0 {
			return nil
		}
		snapXML, err := virt.SnapshotXML("hostctl-"+r.RunID, disks, overlays)
		if err != nil {
			return err
		}
		r.logf("%s: snapshot of %d disk(s)", domain, len(overlays))
		return r.Virt.SnapshotDiskOnly(ctx, domain, snapXML)
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
