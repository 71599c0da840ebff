package run

import (
	"context"

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
	return job.Done{}, end(nil)
}

// snapshotRecord is the record of one backup the repository lists.
func snapshotRecord(sn backend.Snapshot) job.Record {
	return job.Snapshot{Archive: sn.ID, Time: sn.Time, Full: sn.Full,
		Kind: sn.Kind, OriginalSize: sn.Size, DedupSize: sn.Stored, VM: sn.VM != ""}.Record()
}
