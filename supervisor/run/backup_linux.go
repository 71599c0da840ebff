package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
	done.VMRecord = s.vmSummary
	// The used space of the client's own filesystems; a self or plain
	// client's shares would report the host's or the cache's instead.
	if total := usedBytes(Sysroot + backend.SnapshotDir); total > 0 && len(j.Disks) > 0 {
		_ = s.rep.Record(job.Progress{Total: total}.Record())
	}
	if err := s.prepareRepos(ctx, j); err != nil {
		return done, err
	}
	if err := s.mountPlain(j.Backup.Plain); err != nil { // needs the cache, mounted by prepareRepos
		return done, err
	}
	if len(j.Also) == 0 {
		done, _, err := s.backupTo(ctx, j, 0, done)
		return done, err
	}
	return s.backupEach(ctx, j, done)
}

// backupTo backs up to destination i and, after an ok backup, maintains
// it (retention, the periodic check).
func (s *supervisor) backupTo(ctx context.Context, j *job.Job, i int, done job.Done) (job.Done, *job.Stats, error) {
	r, err := s.destination(ctx, j, i)
	if err != nil {
		return done, nil, err
	}
	step := "backup"
	if len(j.Also) > 0 {
		step = "backup to " + r.req.Job.Repo.Profile
	}
	end := s.rep.Step(step)
	var stats job.Stats
	r.req.VMDir = s.vmDir
	err = timed(&done, func() (err error) {
		stats, err = r.Backup(ctx, r.req)
		return err
	})
	if err := end(err); err != nil {
		return done, nil, err
	}
	if s.vmErr != nil {
		backend.VMWarning(&stats, s.vmErr)
	}
	_ = s.rep.Record(stats.Record())
	done, retain := afterBackup(done, stats)
	if !retain {
		s.rep.Logf("backup finished with warnings: %s; retention and check_every skipped", stats.Warning)
		return done, &stats, nil
	}
	return done, &stats, s.maintain(ctx, r)
}

// backupEach backs up to every destination of the job in order, each
// whatever became of the ones before (a dead offsite server must not
// cost the local backup), and records each one's outcome. The job is
// ok when every destination is, failed when every one failed, and a
// warning otherwise: written somewhere, but not everywhere.
func (s *supervisor) backupEach(ctx context.Context, j *job.Job, done job.Done) (job.Done, error) {
	var failed, warned []string
	var elapsed time.Duration
	for i, r := range j.Destinations() {
		d, stats, err := s.backupTo(ctx, j, i, job.Done{Archive: done.Archive})
		elapsed += d.BackendElapsed
		switch {
		case err != nil:
			failed = append(failed, r.Profile)
			s.rep.Logf("destination %s failed: %v", r.Profile, err)
		case d.Warning != "":
			warned = append(warned, r.Profile)
		}
		_ = s.rep.Destination(i, d, stats, err)
	}
	done.BackendElapsed = elapsed
	n := len(j.Also) + 1
	switch {
	case len(failed) == n:
		return done, fmt.Errorf("every destination failed (%s)", strings.Join(failed, ", "))
	case len(failed) > 0 || len(warned) > 0:
		var parts []string
		if len(failed) > 0 {
			parts = append(parts, "failed: "+strings.Join(failed, ", "))
		}
		if len(warned) > 0 {
			parts = append(parts, "incomplete: "+strings.Join(warned, ", "))
		}
		done.Warning = fmt.Sprintf("%d of %d destinations not ok (%s)", len(failed)+len(warned), n, strings.Join(parts, "; "))
	}
	return done, nil
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
	counter := filepath.Join(Sysroot, backend.CacheDir, "sb-state", j.Repo.CacheName(j.Client)+".backups")
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
