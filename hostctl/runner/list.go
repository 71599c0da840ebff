package runner

import (
	"context"
	"fmt"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// List returns the backups in a client's repository, oldest first, as the
// client's backend lists them inside the appliance.
func (r *Runner) List(ctx context.Context, c *config.Client) ([]job.Snapshot, error) {
	var snaps []job.Snapshot
	err := r.reverted(ctx, jobScope{client: c.Name, logDir: r.jobDir("list-" + c.Name)}, nil, func(rv *reverter) (err error) {
		snaps, err = r.list(ctx, c, rv)
		return err
	})
	return snaps, err
}

func (r *Runner) list(ctx context.Context, c *config.Client, rv *reverter) ([]job.Snapshot, error) {
	aj, err := r.clientJob(c, job.ModeList, "list-"+c.Name, repoExisting)
	if err != nil {
		return nil, err
	}
	aj.job.List = &job.List{}
	out, err := r.runAppliance(ctx, rv, aj)
	if err != nil {
		return nil, err
	}
	if out.result.Done.Status != job.StatusOK {
		return nil, fmt.Errorf("list in the appliance failed: %s (log: %s)", out.result.LastError(), aj.logPath())
	}
	return out.result.Snapshots(), nil
}
