package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
)

// restore extracts a backup to a host directory or a disk; a restore to
// the client itself is an in-place recovery (recoverClient).
func (s *supervisor) restore(ctx context.Context, j *job.Job) (job.Done, error) {
	if j.Restore.To == job.RestoreToClient {
		return s.recoverClient(ctx, j)
	}
	done := job.Done{Archive: j.Restore.Archive}
	end := s.rep.Step("mount restore destination")
	switch j.Restore.To {
	case "dir", "":
		if err := s.mount9p(job.TagRestore, backend.RestoreDir); err != nil {
			return done, end(s.shareErr(job.TagRestore, err))
		}
	case "disk":
		disks := restoreDisk
		if sp, err := blockdev.ParseSpec(j.Restore.Mount); err == nil && (sp.Kind == "disk" || sp.Kind == "part") {
			// "vda2" names partition 2 of the restore disk.
			disks = []job.Disk{{Serial: job.SerialRestore, Dev: sp.Value}}
		}
		if _, err := s.mountSelected(ctx, j.Restore.Mount, disks, backend.RestoreDir, blockdev.Destination); err != nil {
			return done, end(err)
		}
	default:
		return done, end(fmt.Errorf("restore to %q: want dir or disk", j.Restore.To))
	}
	end(nil)
	r, err := s.openRepo(ctx, j)
	if err != nil {
		return done, err
	}
	if j.Restore.Archive == "" && !j.Restore.Time.IsZero() {
		if j.Restore.Archive, err = s.selectBackup(ctx, r, j.Restore.Time); err != nil {
			return done, err
		}
	}
	r.req.Archive, r.req.Paths = j.Restore.Archive, j.Restore.Paths
	end = s.rep.Step("restore")
	err = restoreArchive(ctx, r, &done)
	if err == nil {
		err = restoredPaths(filepath.Join(r.req.Root, r.req.Dirs.Restore), j.Restore.Paths, done.Archive)
	}
	return done, end(err)
}

// restoreArchive runs the backend's restore, timed. A restore the tool
// finished with warnings is no error: done carries them, and the job ends
// with status warning (what could be restored is in place).
func restoreArchive(ctx context.Context, r repo, done *job.Done) error {
	return timed(done, func() error {
		var err error
		done.Archive, err = r.Restore(ctx, r.req)
		var inc *backend.Incomplete
		if errors.As(err, &inc) {
			done.Warning, err = inc.Warning, nil
		}
		return err
	})
}

// selectBackup is the step that finds the newest backup at or before at
// (the latest for a zero at) in the repository.
func (s *supervisor) selectBackup(ctx context.Context, r repo, at time.Time) (string, error) {
	end := s.rep.Step("select backup")
	snaps, err := r.Snapshots(ctx, r.req)
	if err != nil {
		return "", end(err)
	}
	id, err := s.pickAt(snaps, at)
	return id, end(err)
}

// pickAt is the newest of snaps at or before at (the latest for a zero at).
func (s *supervisor) pickAt(snaps []backend.Snapshot, at time.Time) (string, error) {
	if at.IsZero() {
		sn, err := backend.Latest(snaps)
		return sn.ID, err
	}
	sn, err := backend.PickAt(snaps, at)
	if err != nil {
		return "", err
	}
	s.rep.Logf("newest backup at or before %s: %s (%s)", at.UTC().Format(time.RFC3339), sn.ID, sn.Time.UTC().Format(time.RFC3339))
	return sn.ID, nil
}

// restoredPaths checks that every path of a file-level restore arrived:
// the tools restore nothing, silently, for a path not in the backup.
func restoredPaths(dir string, paths []string, archive string) error {
	clean, err := job.CleanPaths(paths)
	if err != nil {
		return err
	}
	var missing []string
	for _, p := range clean {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not in backup %s: %s", archive, strings.Join(missing, ", "))
	}
	return nil
}
