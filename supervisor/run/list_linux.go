package run

import (
	"context"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
)

// list writes one snapshot record per backup in the client's repository.
func (s *supervisor) list(ctx context.Context) (job.Record, error) {
	req, err := s.prepare(ctx)
	if err != nil {
		return job.Record{}, err
	}
	b, err := backend.New(s.job.Repo.Backend, s.runner, s.rep)
	if err != nil {
		return job.Record{}, err
	}
	end := s.rep.Step("list")
	snaps, err := b.Snapshots(ctx, req)
	if err != nil {
		return job.Record{}, end(err)
	}
	for _, sn := range snaps {
		if err := s.rep.Record(job.Record{Type: job.RecSnapshot, Archive: sn.ID, SnapshotTime: sn.Time, Full: sn.Full,
			Kind: sn.Kind, OriginalSize: sn.Size, DedupSize: sn.Stored}); err != nil {
			return job.Record{}, end(err)
		}
	}
	return job.Record{}, end(nil)
}
