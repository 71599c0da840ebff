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
	var stagingDir string // --to-dir: what the appliance gets, inside the destination
	j.Restore = &job.Restore{Archive: o.Archive, Time: o.Time, Paths: o.Paths}
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
		staging, err := os.MkdirTemp(abs, ".hostctl-restore-")
		if err != nil {
			return fmt.Errorf("restore directory %s: %w", abs, err)
		}
		stagingDir = staging
		j.Restore.To = "dir"
		aj.shares = append(aj.shares, virt.ShareSpec{Dir: staging, Tag: job.TagRestore})
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
		if stagingDir != "" {
			return fmt.Errorf("restore failed in the appliance: %s (log: %s; what was restored is in %s)", out.result.LastError(), aj.logPath(), stagingDir)
		}
		return fmt.Errorf("restore failed in the appliance: %s (log: %s)", out.result.LastError(), aj.logPath())
	}
	if stagingDir != "" {
		return moveUp(stagingDir)
	}
	return nil
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
