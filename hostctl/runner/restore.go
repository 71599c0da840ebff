package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// RestoreOptions say what to restore where.
type RestoreOptions struct {
	Archive string // "" = the latest (at or before Time, when set)
	// Time, when set (and Archive is not), selects the newest backup taken
	// at or before it.
	Time time.Time
	// Paths restrict the restore to these paths of the backed-up tree
	// ("etc/nginx"); empty means all.
	Paths []string
	// Exactly one of Dir (an empty host directory) and Disk (a disk image
	// whose filesystem receives the tree) is set.
	Dir  string
	Disk string
	// Mount selects the filesystem on Disk, like backup.mount.
	Mount string
}

// Restore extracts a client's backup through the appliance.
func (r *Runner) Restore(ctx context.Context, c *config.Client, o RestoreOptions) *Report {
	return r.applianceReport(ctx, c.Name, "restore", r.jobDir(c.Name), func(rv *reverter, rep *Report) error {
		return r.restore(ctx, c, o, rv, rep)
	})
}

// applianceReport runs one appliance job of a client that is not a backup
// (restore, verify) with its cleanup, and reports it.
func (r *Runner) applianceReport(ctx context.Context, client, mode, logDir string, f func(rv *reverter, rep *Report) error) *Report {
	rep := &Report{Client: client, Started: time.Now(), LogDir: logDir, Mode: mode}
	err := r.reverted(ctx, jobScope{client: client, logDir: logDir}, &rep.Cleanups, func(rv *reverter) error { return f(rv, rep) })
	rep.Elapsed = time.Since(rep.Started)
	rep.Status = StatusOK
	if err != nil {
		rep.Status, rep.Error = StatusFailed, err.Error()
	}
	return rep
}

func (r *Runner) restore(ctx context.Context, c *config.Client, o RestoreOptions, rv *reverter, rep *Report) error {
	aj, err := r.clientJob(c, job.ModeRestore, "", repoExisting)
	if err != nil {
		return err
	}
	j := aj.job
	j.Archive = o.Archive
	j.Restore.Time, j.Restore.Paths = o.Time, o.Paths
	switch {
	case o.Dir != "" && o.Disk != "":
		return fmt.Errorf("restore: give a directory or a disk, not both")
	case o.Dir != "":
		abs, err := filepath.Abs(o.Dir)
		if err != nil {
			return err
		}
		if err := emptyDir(abs); err != nil {
			return err
		}
		j.Restore.To = "dir"
		aj.shares = append(aj.shares, virt.ShareSpec{Dir: abs, Tag: job.TagRestore})
	case o.Disk != "":
		info, err := qemuImgInfo(ctx, o.Disk)
		if err != nil {
			return err
		}
		j.Restore.To, j.Restore.Mount = "disk", o.Mount
		aj.disks = []virt.DiskSpec{{Path: o.Disk, Format: info.Format, Serial: job.SerialRestore}}
	default:
		return fmt.Errorf("restore: no destination (--to-dir or --to-disk)")
	}
	out, err := r.runAppliance(ctx, rv, aj)
	if out != nil {
		rep.Appl = out.elapsed
	}
	if err != nil {
		return err
	}
	rep.Archive = out.result.Done.Archive
	rep.Backend, rep.ReadyIn = out.result.Done.BackendElapsed, out.result.Done.ReadyAfter
	if out.result.Done.Status != job.StatusOK {
		return fmt.Errorf("restore failed in the appliance: %s (log: %s)", out.result.LastError(), aj.logPath())
	}
	return nil
}

// emptyDir makes sure p is an empty directory (creating it): a restore
// never mixes into existing files.
func emptyDir(p string) error {
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("restore directory %s: %w", p, err)
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return fmt.Errorf("restore directory %s: %w", p, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("restore directory %s is not empty", p)
	}
	return nil
}
