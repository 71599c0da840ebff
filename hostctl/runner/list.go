package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
)

// listTable is mode list.
func listTable() modeTable {
	return listWith(job.List{})
}

// listWith is mode list with options l.
func listWith(l job.List) modeTable {
	return modeTable{job.ModeList, repoExisting, func(j *job.Job) { j.List = &l }}
}

// List returns the backups in a client's repository, oldest first, as the
// client's backend lists them inside the appliance.
func (r *Runner) List(ctx context.Context, c *config.Resolved) ([]job.Snapshot, error) {
	var snaps []job.Snapshot
	err := r.reverted(ctx, jobScope{client: c.Name, logDir: r.jobDir("list-" + c.Name)}, nil, func(rv *reverter) (err error) {
		snaps, err = r.list(ctx, c, rv)
		return err
	})
	return snaps, err
}

func (r *Runner) list(ctx context.Context, c *config.Resolved, rv *reverter) ([]job.Snapshot, error) {
	aj, err := r.newJob(c, listTable(), named("list-"+c.Name))
	if err != nil {
		return nil, err
	}
	out, err := r.runAppliance(ctx, rv, aj)
	if err != nil {
		return nil, err
	}
	if out.result.Done.Status != job.StatusOK {
		return nil, fmt.Errorf("list in the appliance failed: %s (log: %s)", out.result.LastError(), aj.logPath())
	}
	return out.result.Snapshots(), nil
}

// Recorded is the VM record of one backup, read from the repository.
type Recorded struct {
	Archive string // the backup's id
	Record  *vmrecord.Record
}

// ReadRecord reads the VM record of client c's backup archive (else the
// newest at or before at, else the latest) through an appliance. The
// record comes from the repository, which the appliance of a hostile
// guest may have written: it is parsed and checked (vmrecord.Parse)
// before it is returned.
func (r *Runner) ReadRecord(ctx context.Context, c *config.Resolved, archive string, at time.Time) (*Recorded, error) {
	var rec *Recorded
	err := r.reverted(ctx, jobScope{client: c.Name, logDir: r.jobDir("record-" + c.Name)}, nil, func(rv *reverter) error {
		aj, err := r.newJob(c, listWith(job.List{Record: true, Archive: archive, Time: at}), named("record-"+c.Name))
		if err != nil {
			return err
		}
		out, err := r.runAppliance(ctx, rv, aj)
		if err != nil {
			return err
		}
		if out.result.Done.Status != job.StatusOK {
			return fmt.Errorf("read the VM record in the appliance: %s (log: %s)", out.result.LastError(), aj.logPath())
		}
		id := out.result.Done.Archive
		if id == "" || out.vmRecord == nil {
			return fmt.Errorf("the appliance wrote no VM record (log: %s)", aj.logPath())
		}
		vr, err := vmrecord.Parse(out.vmRecord)
		if err != nil {
			return fmt.Errorf("the VM record of backup %s: %w", textsafe.Line(id), err)
		}
		rec = &Recorded{Archive: id, Record: vr}
		return nil
	})
	return rec, err
}
