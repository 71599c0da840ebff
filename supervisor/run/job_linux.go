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
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

// errTimeLimit is the cause of the watchdog's cancellation.
var errTimeLimit = errors.New("time limit exceeded")

// runJob runs a backup or restore under the watchdog and returns the
// (partial) done record.
func (s *supervisor) runJob() (job.Done, error) {
	j := s.job
	limit := j.TimeLimit.Duration
	if limit <= 0 {
		limit = DefaultTimeLimit
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), limit, errTimeLimit)
	defer cancel()
	// The backstop: whatever hangs (a D-state mount, a tool ignoring
	// SIGKILL in the kernel), the machine goes off.
	hard := time.AfterFunc(limit+backstop, func() {
		s.rep.Logf("hard time limit: powering off now")
		s.finishHard()
	})
	defer hard.Stop()

	switch j.IONiceClass {
	case "", "idle", "best-effort", "realtime":
	default:
		return job.Done{}, fmt.Errorf("ionice_class %q: want idle, best-effort or realtime", j.IONiceClass)
	}
	s.runner.Nice, s.runner.IOClass = j.Nice, j.IONiceClass
	rec := job.Done{}
	var err error
	switch j.Mode {
	case job.ModeBackup:
		rec, err = s.backup(ctx)
	case job.ModeRestore:
		rec, err = s.restore(ctx)
	case job.ModeExec:
		rec, err = s.exec(ctx)
	case job.ModeList:
		rec, err = s.list(ctx)
	case job.ModeVerify:
		rec, err = s.verify(ctx)
	default:
		err = fmt.Errorf("mode %q is not a job", j.Mode)
	}
	switch {
	case err == nil:
	case errors.Is(err, errTimeLimit):
		err = fmt.Errorf("%w (limit %v)", err, limit)
	case context.Cause(ctx) == errTimeLimit:
		err = fmt.Errorf("%w (limit %v): %w", errTimeLimit, limit, err)
	}
	return rec, err
}

// finishHard writes a failed done record and powers off without unmounting.
func (s *supervisor) finishHard() {
	if !s.rep.IsDone() {
		_ = s.rep.Done(job.Done{ReadyAfter: s.ready}, fmt.Errorf("%w: the job did not stop; forced power-off", errTimeLimit))
	}
	s.finish(job.Done{}, nil)
	boot.PowerOff()
}

// prepare mounts the cache and the repository target and reads the
// passphrase: everything a backend needs besides the data.
func (s *supervisor) prepare(ctx context.Context) (backend.Request, error) {
	j := s.job
	req := backend.Request{Job: j, Root: Sysroot}
	if _, err := backend.New(j.Repo.Backend, s.runner, s.rep); err != nil {
		return req, err
	}
	if err := s.rep.Step("mount cache")(s.mountCache(ctx)); err != nil {
		return req, err
	}
	if err := os.MkdirAll(backend.WorkDir, 0o700); err != nil {
		return req, err
	}
	if j.Net != nil {
		if err := s.rep.Step("network")(s.setupNetwork(ctx, j.Net)); err != nil {
			return req, err
		}
	} else if j.Repo.Target.NeedsNetwork() {
		return req, fmt.Errorf("repository %s: a network target, but the job gives the appliance no network", j.Repo.Target)
	}
	if !j.Repo.Target.NeedsNetwork() {
		// The host shares the client's repository directory itself.
		if err := s.rep.Step("mount target")(s.mount9p(job.TagTarget, backend.TargetDir)); err != nil {
			return req, fmt.Errorf("mount 9p share %q (offered: %s): %w", job.TagTarget, strings.Join(ninePTags(), " "), err)
		}
		req.Repo = backend.TargetDir
	}
	if j.Repo.PassphraseFile != "" {
		p, err := s.readSecret(j.Repo.PassphraseFile)
		if err != nil {
			return req, err
		}
		req.Passphrase = p
	} else if j.Repo.Encryption == "repokey" {
		return req, fmt.Errorf("repository encryption %q needs a passphrase file", j.Repo.Encryption)
	}
	return req, nil
}

// readSecret reads a file from the job disk's secrets.
func (s *supervisor) readSecret(rel string) ([]byte, error) {
	if rel == "" {
		return nil, fmt.Errorf("repository encryption %q needs a passphrase file", s.job.Repo.Encryption)
	}
	clean := filepath.Clean("/" + rel)
	b, err := os.ReadFile(filepath.Join(jobDir, clean))
	if err != nil {
		return nil, fmt.Errorf("read passphrase file %s from the job disk: %w", clean, err)
	}
	return b, nil
}

func (s *supervisor) backup(ctx context.Context) (job.Done, error) {
	j := s.job
	done := job.Done{Archive: j.Backup.Archive}
	if len(j.Disks) == 0 && len(j.Backup.Shares) == 0 && j.Backup.Plain == "" {
		return done, fmt.Errorf("backup job has no disks, shares or plain directory")
	}
	end := s.rep.Step("mount snapshot")
	if err := s.mountSources(ctx); err != nil {
		return done, end(err)
	}
	end(nil)
	// The used space of the client's own filesystems; a self or plain
	// client's shares would report the host's or the cache's instead.
	if total := usedBytes(Sysroot + backend.SnapshotDir); total > 0 && len(j.Disks) > 0 {
		_ = s.rep.Record(job.Progress{Total: total}.Record())
	}
	req, err := s.prepare(ctx)
	if err != nil {
		return done, err
	}
	if err := s.mountPlain(); err != nil { // needs the cache, mounted by prepare
		return done, err
	}
	b, err := backend.New(j.Repo.Backend, s.runner, s.rep)
	if err != nil {
		return done, err
	}
	end = s.rep.Step("backup")
	start := time.Now()
	stats, err := b.Backup(ctx, req)
	done.BackendElapsed = time.Since(start)
	if err := end(err); err != nil {
		return done, err
	}
	_ = s.rep.Record(stats.Record())
	done, retain := afterBackup(done, stats)
	if !retain {
		s.rep.Logf("backup finished with warnings: %s; retention and check_every skipped", stats.Warning)
		return done, nil
	}
	return done, s.maintain(ctx, b, req)
}

func (s *supervisor) restore(ctx context.Context) (job.Done, error) {
	j := s.job
	if j.Restore.To == job.RestoreToClient {
		return s.recoverClient(ctx)
	}
	done := job.Done{Archive: j.Restore.Archive}
	end := s.rep.Step("mount restore destination")
	switch j.Restore.To {
	case "dir", "":
		if err := s.mount9p(job.TagRestore, backend.RestoreDir); err != nil {
			return done, end(fmt.Errorf("mount 9p share %q (offered: %s): %w", job.TagRestore, strings.Join(ninePTags(), " "), err))
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
	req, err := s.prepare(ctx)
	if err != nil {
		return done, err
	}
	b, err := backend.New(j.Repo.Backend, s.runner, s.rep)
	if err != nil {
		return done, err
	}
	if err := s.pickArchive(ctx, b, req); err != nil {
		return done, err
	}
	req.Archive, req.Paths = j.Restore.Archive, j.Restore.Paths
	end = s.rep.Step("restore")
	start := time.Now()
	archive, err := b.Restore(ctx, req)
	done.BackendElapsed = time.Since(start)
	done.Archive = archive
	if err == nil {
		err = restoredPaths(filepath.Join(req.Root, req.D().Restore), j.Restore.Paths, archive)
	}
	return done, end(err)
}

// pickArchive resolves Restore.Time to the newest backup at or before it
// (into Restore.Archive).
func (s *supervisor) pickArchive(ctx context.Context, b backend.Backend, req backend.Request) error {
	j := req.Job
	if j.Restore.Archive != "" || j.Restore.Time.IsZero() {
		return nil
	}
	end := s.rep.Step("select backup")
	snaps, err := b.Snapshots(ctx, req)
	if err != nil {
		return end(err)
	}
	sn, err := backend.PickAt(snaps, j.Restore.Time)
	if err != nil {
		return end(err)
	}
	j.Restore.Archive = sn.ID
	s.rep.Logf("newest backup at or before %s: %s (%s)", j.Restore.Time.UTC().Format(time.RFC3339), sn.ID, sn.Time.UTC().Format(time.RFC3339))
	return end(nil)
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
