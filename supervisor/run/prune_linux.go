package run

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
)

// prune applies the job's retention with the maintenance credential the
// host gave it, after a check of the repository and only when the
// repository holds exactly the backups the host recorded (job.Prune). It
// writes a pruned record per backup removed and a snapshot record per
// backup kept.
func (s *supervisor) prune(ctx context.Context, j *job.Job) (job.Done, error) {
	r, err := s.openRepo(ctx, j)
	if err != nil {
		return job.Done{}, err
	}
	// Archives written through an append-only key are trusted only
	// after a check (borg's append-only documentation).
	if err := s.rep.Step("check repository")(r.Check(ctx, r.req)); err != nil {
		return job.Done{}, err
	}
	end := s.rep.Step("list backups")
	before, err := r.Snapshots(ctx, r.req)
	if err := end(err); err != nil {
		return job.Done{}, err
	}
	had := snapshotIDs(before)
	missing, unknown := j.Prune.Compare(had)
	if len(missing) > 0 || len(unknown) > 0 {
		return job.Done{}, pruneRefusal(missing, unknown)
	}
	if err := s.rep.Step("retention")(r.Retain(ctx, r.req)); err != nil {
		return job.Done{}, err
	}
	end = s.rep.Step("list backups kept")
	after, err := r.Snapshots(ctx, r.req)
	if err := end(err); err != nil {
		return job.Done{}, err
	}
	kept := snapshotIDs(after)
	for _, id := range had {
		if !slices.Contains(kept, id) {
			if err := s.rep.Record(job.Pruned{Archive: id}.Record()); err != nil {
				return job.Done{}, err
			}
		}
	}
	for _, sn := range after {
		if err := s.rep.Record(snapshotRecord(sn)); err != nil {
			return job.Done{}, err
		}
	}
	return job.Done{}, nil
}

func snapshotIDs(ss []backend.Snapshot) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

// pruneRefusal says why a prune deleted nothing: the repository is not
// what the host recorded.
func pruneRefusal(missing, unknown []string) error {
	var why []string
	if len(missing) > 0 {
		why = append(why, fmt.Sprintf("%d backup(s) this host recorded are gone without a prune (%s): deleted through the append-only key? They are still in the repository's segments until a prune compacts it; roll the repository back on the server (README: Append-only targets)", len(missing), listSome(missing)))
	}
	if len(unknown) > 0 {
		why = append(why, fmt.Sprintf("%d backup(s) this host did not record (%s): retention would count them. A backup whose end hostctl did not see (killed, crashed) is one; if hostctl list shows them as this client's, run hostctl prune --trust once, else delete them on the server", len(unknown), listSome(unknown)))
	}
	return fmt.Errorf("nothing pruned: %s", strings.Join(why, "; "))
}

func listSome(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}
