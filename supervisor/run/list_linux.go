package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
)

// list writes one snapshot record per backup in the client's repository.
func (s *supervisor) list(ctx context.Context, j *job.Job) (job.Done, error) {
	r, err := s.openRepo(ctx, j)
	if err != nil {
		return job.Done{}, err
	}
	end := s.rep.Step("list")
	snaps, err := r.Snapshots(ctx, r.req)
	if err != nil {
		return job.Done{}, end(err)
	}
	for _, sn := range snaps {
		if err := s.rep.Record(snapshotRecord(sn)); err != nil {
			return job.Done{}, end(err)
		}
	}
	if err := end(nil); err != nil || !j.List.Record {
		return job.Done{}, err
	}
	end = s.rep.Step("read the VM record")
	id, err := s.writeRecord(ctx, r, snaps, j.List)
	return job.Done{Archive: id}, end(err)
}

// writeRecord copies the VM record of the backup l selects to the job
// disk (FileVMRecord), checked as a recovery reads it, and returns that
// backup's id.
func (s *supervisor) writeRecord(ctx context.Context, r repo, snaps []backend.Snapshot, l *job.List) (string, error) {
	if len(snaps) == 0 {
		return "", fmt.Errorf("the repository %s holds no backup", r.req.Job.Repo.Target)
	}
	want := l.Archive
	if want == "" {
		var err error
		if want, err = s.pickAt(snaps, l.Time); err != nil {
			return "", err
		}
	}
	sn := restoredBackup(&job.Job{Repo: r.req.Job.Repo, Restore: &job.Restore{Archive: want}}, snaps)
	switch {
	case sn == nil:
		return "", fmt.Errorf("archive %q is not in the repository %s", want, r.req.Job.Repo.Target)
	case sn.VM == "":
		return "", fmt.Errorf("backup %s has no VM record (taken before backups recorded their VM)", sn.ID)
	}
	data, _, err := s.readRecord(ctx, r, sn)
	if err != nil {
		return "", err
	}
	return sn.ID, writeSynced(filepath.Join(jobDir, job.FileVMRecord), data)
}

// snapshotRecord is the record of one backup the repository lists.
func snapshotRecord(sn backend.Snapshot) job.Record {
	return job.Snapshot{Archive: sn.ID, Time: sn.Time, Full: sn.Full,
		Kind: sn.Kind, OriginalSize: sn.Size, DedupSize: sn.Stored, VM: sn.VM != ""}.Record()
}

// writeSynced writes data to a new file p and flushes it to the disk.
func writeSynced(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}
