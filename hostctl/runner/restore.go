package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// restoreTable is mode restore (to a directory, a disk image, or the
// client's own disks in a recovery).
func restoreTable(x *job.Restore) modeTable {
	return modeTable{job.ModeRestore, repoExisting, func(j *job.Job) { j.Restore = x }}
}

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
	// GPGKeys are key files for this job's keyring besides the profile's
	// (withGPGKeys).
	GPGKeys []string
}

// Restore extracts a client's backup through the appliance.
func (r *Runner) Restore(ctx context.Context, c *config.Resolved, o RestoreOptions) *report.Job {
	return r.applianceReport(ctx, c.Name, "restore", r.jobDir(c.Name), func(rv *reverter, rep *jobReport) error {
		return r.restore(ctx, c, o, rv, rep)
	})
}

// applianceReport runs one appliance job of a client that is not a backup
// (restore, verify) with its cleanup, and reports it.
func (r *Runner) applianceReport(ctx context.Context, client, mode, logDir string, f func(rv *reverter, rep *jobReport) error) *report.Job {
	rep := newJobReport(client, mode, logDir)
	return rep.finish(r.reverted(ctx, jobScope{client: client, logDir: logDir}, &rep.Cleanups, func(rv *reverter) error { return f(rv, rep) }))
}

func (r *Runner) restore(ctx context.Context, c *config.Resolved, o RestoreOptions, rv *reverter, rep *jobReport) error {
	var stagingDir string // --to-dir: what the appliance gets, inside the destination
	aj, res, err := r.runFromArchive(ctx, rv, rep, c, restoreTable(&job.Restore{Archive: o.Archive, Time: o.Time, Paths: o.Paths}),
		withGPGKeys(c, o.GPGKeys), r.restoreTo(ctx, o, &stagingDir))
	if err != nil {
		return err
	}
	if !rep.accept(res) {
		if stagingDir != "" {
			return fmt.Errorf("restore failed in the appliance: %s (log: %s; what was restored is in %s)", res.LastError(), aj.logPath(), stagingDir)
		}
		return fmt.Errorf("restore failed in the appliance: %s (log: %s)", res.LastError(), aj.logPath())
	}
	if stagingDir != "" {
		return moveUp(stagingDir)
	}
	return nil
}

// restoreTo attaches a restore's destination: a staging directory inside
// o.Dir (its path goes to staging), or the disk image o.Disk.
func (r *Runner) restoreTo(ctx context.Context, o RestoreOptions, staging *string) jobOption {
	return func(aj *applianceJob) error {
		x := aj.job.Restore
		switch {
		case o.Dir != "" && o.Disk != "":
			return fmt.Errorf("restore: give a directory or a disk, not both")
		case o.Dir != "":
			abs, err := filepath.Abs(o.Dir)
			if err != nil {
				return err
			}
			if err := privateRestoreDir(abs); err != nil {
				return err
			}
			// The appliance gets a directory inside the destination, never
			// the destination itself: whatever it does to the root of what it
			// restores (the backed-up / is 0755), the 0700 destination keeps
			// local users away from the guest's setuid files and device nodes.
			dir, err := os.MkdirTemp(abs, ".hostctl-restore-")
			if err != nil {
				return fmt.Errorf("restore directory %s: %w", abs, err)
			}
			*staging = dir
			x.To = "dir"
			aj.shares = append(aj.shares, virt.ShareSpec{Dir: dir, Tag: job.TagRestore})
		case o.Disk != "":
			info, err := r.images.Info(ctx, o.Disk)
			if err != nil {
				return err
			}
			x.To, x.Mount = "disk", o.Mount
			aj.disks = append(aj.disks, virt.DiskSpec{Path: o.Disk, Format: info.Format, Serial: job.SerialRestore})
		default:
			return fmt.Errorf("restore: no destination (--to-dir or --to-disk)")
		}
		return nil
	}
}

// privateRestoreDir makes p a directory for a restore: new, or empty and
// owned by this user, mode 0700 (an existing empty directory is made so).
// The restore writes the guest's files as root, its owners, setuid bits
// and device nodes included: nobody else may reach into it.
func privateRestoreDir(p string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("restore directory %s: %w", p, err)
	}
	if err := os.Mkdir(p, 0o700); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("restore directory %s: %w", p, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("restore directory %s: %w", p, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("restore directory %s exists and is not a directory", p)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("restore directory %s is owned by uid %d: the restored tree holds the guest's setuid files and device nodes, so it goes only into a directory of uid %d (mode 0700)", p, st.Uid, os.Geteuid())
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return fmt.Errorf("restore directory %s: %w", p, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("restore directory %s is not empty", p)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(p, 0o700); err != nil {
			return fmt.Errorf("restore directory %s: %w", p, err)
		}
	}
	return nil
}

// moveUp moves what the appliance restored into staging up into its
// parent, the destination, and removes staging. Renames within one
// directory tree: nothing is copied, nothing followed.
func moveUp(staging string) error {
	entries, err := os.ReadDir(staging)
	if err != nil {
		return fmt.Errorf("restored tree %s: %w", staging, err)
	}
	dst := filepath.Dir(staging)
	for _, e := range entries {
		if err := os.Rename(filepath.Join(staging, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return fmt.Errorf("move the restored %s into %s: %w", e.Name(), dst, err)
		}
	}
	if err := os.Remove(staging); err != nil {
		return fmt.Errorf("restored tree %s: %w", staging, err)
	}
	return nil
}
