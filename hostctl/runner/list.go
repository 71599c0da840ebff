package runner

import (
	"context"
	"fmt"
	"os"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// List returns the backups in a client's repository, oldest first, as the
// client's backend lists them inside the appliance.
func (r *Runner) List(ctx context.Context, c *config.Client) ([]job.Record, error) {
	rv := &reverter{hv: r.Virt, l: r.Ledger}
	snaps, err := r.list(ctx, c, rv)
	if cerr := rv.undoAll(ctx); cerr != nil && err == nil {
		err = fmt.Errorf("cleanup: %w", cerr)
	}
	return snaps, err
}

func (r *Runner) list(ctx context.Context, c *config.Client, rv *reverter) ([]job.Record, error) {
	prof := r.Cfg.ProfileFor(c)
	if prof == nil {
		return nil, fmt.Errorf("client %s: no profile", c.Name)
	}
	repo, share, err := clientRepo(prof, c.Name)
	if err != nil {
		return nil, err
	}
	var shares []virt.ShareSpec
	if share.Dir != "" {
		if _, err := os.Stat(share.Dir); err != nil {
			return nil, fmt.Errorf("client %s has no repository at %s: %w", c.Name, share.Dir, err)
		}
		// Writable even for a listing: borg takes its repository lock there.
		shares = append(shares, share)
	}
	secrets, err := clientSecrets(prof)
	if err != nil {
		return nil, err
	}
	dir := r.jobDir("list-" + c.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	j := &job.Job{Version: job.Version, Mode: job.ModeList, Client: c.Name, RunID: r.RunID,
		TimeLimit: c.TimeLimit, Repo: repo, Net: jobNet(r.Cfg.Host, repo)}
	out, err := r.runAppliance(ctx, rv, applianceJob{dir: dir, job: j, secrets: secrets, shares: shares})
	if err != nil {
		return nil, err
	}
	if out.result.Done.Status != job.StatusOK {
		return nil, fmt.Errorf("list in the appliance failed: %s", out.result.LastError())
	}
	return out.result.Snapshots(), nil
}
