package run

import (
	"context"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
)

// list writes one snapshot record per backup in the client's repository.
func (s *supervisor) list(ctx context.Context) (job.Done, error) {
	req, err := s.prepare(ctx)
	if err != nil {
		return job.Done{}, err
	}
	b, err := backend.New(s.job.Repo.Backend, s.runner, s.rep)
	if err != nil {
		return job.Done{}, err
	}
	end := s.rep.Step("list")
	snaps, err := b.Snapshots(ctx, req)
	if err != nil {
		return job.Done{}, end(err)
	}
	for _, sn := range snaps {
		if err := s.rep.Record(job.Snapshot{Archive: sn.ID, Time: sn.Time, Full: sn.Full,
			Kind: sn.Kind, OriginalSize: sn.Size, DedupSize: sn.Stored}.Record()); err != nil {
			return job.Done{}, end(err)
		}
	}
	return job.Done{}, end(nil)
}
