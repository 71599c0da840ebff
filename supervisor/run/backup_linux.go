package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
)

// backup mounts what the job backs up at the snapshot directory, runs the
// backend and, after an ok backup only, retention and the periodic check.
func (s *supervisor) backup(ctx context.Context, j *job.Job) (job.Done, error) {
	done := job.Done{Archive: j.Backup.Archive}
	if len(j.Disks) == 0 && len(j.Backup.Shares) == 0 && j.Backup.Plain == "" {
		return done, fmt.Errorf("backup job has no disks, shares or plain directory")
	}
	end := s.rep.Step("mount snapshot")
	if err := s.mountSources(ctx, j); err != nil {
		return done, end(err)
	}
	end(nil)
	// The used space of the client's own filesystems; a self or plain
	// client's shares would report the host's or the cache's instead.
	if total := usedBytes(Sysroot + backend.SnapshotDir); total > 0 && len(j.Disks) > 0 {
		_ = s.rep.Record(job.Progress{Total: total}.Record())
	}
	r, err := s.openRepo(ctx, j)
	if err != nil {
		return done, err
	}
	if err := s.mountPlain(j.Backup.Plain); err != nil { // needs the cache, mounted by openRepo
		return done, err
	}
	end = s.rep.Step("backup")
	var stats job.Stats
	err = timed(&done, func() (err error) {
		stats, err = r.Backup(ctx, r.req)
		return err
	})
	if err := end(err); err != nil {
		return done, err
	}
	_ = s.rep.Record(stats.Record())
	done, retain := afterBackup(done, stats)
	if !retain {
		s.rep.Logf("backup finished with warnings: %s; retention and check_every skipped", stats.Warning)
		return done, nil
	}
	return done, s.maintain(ctx, r)
}

// maintain runs retention after an "ok" backup (never after a failed one
// or one with warnings: backup returns before) and, every Repo.CheckEvery
// ok backups (counted per client on the cache volume), the backend's
// consistency check.
func (s *supervisor) maintain(ctx context.Context, r repo) error {
	j := r.req.Job
	if !j.Repo.Retention.Empty() {
		if err := s.rep.Step("retention")(r.Retain(ctx, r.req)); err != nil {
			return err
		}
	}
	if j.Repo.CheckEvery <= 0 {
		return nil
	}
	counter := filepath.Join(Sysroot, backend.CacheDir, "sb-state", j.Client+".backups")
	n := 0
	if b, err := os.ReadFile(counter); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	n++
	if n >= j.Repo.CheckEvery {
		if err := s.rep.Step("check")(r.Check(ctx, r.req)); err != nil {
			return err
		}
		n = 0
	}
	_ = os.MkdirAll(filepath.Dir(counter), 0o700)
	return os.WriteFile(counter, []byte(strconv.Itoa(n)+"\n"), 0o600)
}
