package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// modeTable is a job's mode with its table (one per mode) and how the mode
// uses the client's repository. Each mode's file has its constructor
// (backupTable, restoreTable, verifyTable, listTable, shellTable): a new
// mode is one more file.
type modeTable struct {
	mode string
	repo repoMode
	set  func(*job.Job)
}

// repoMode says how a job uses the client's repository.
type repoMode int

const (
	// repoNone: the job has no repository (a rescue shell).
	repoNone repoMode = iota
	// repoWrite creates a file:// target directory when missing (a backup
	// starts a repository).
	repoWrite
	// repoExisting requires the repository to exist (restore, list,
	// verify): a missing one is the operator's mistake, not an empty list.
	repoExisting
)

// jobOption adds to a job what its mode attaches. Options run in order,
// after the repository is checked (an option with side effects, as a
// restore's destination, comes after that check).
type jobOption func(*applianceJob) error

// named names the job's directory (default: the client's name).
func named(name string) jobOption {
	return func(aj *applianceJob) error { aj.dir = name; return nil }
}

// timeLimit replaces the client's time_limit as the appliance's.
func timeLimit(d time.Duration) jobOption {
	return func(aj *applianceJob) error { aj.job.TimeLimit = job.Duration{Duration: d}; return nil }
}

// withDisks attaches the client's disks, in order (attachDisks).
func withDisks(disks []virt.ClientDisk) jobOption {
	return func(aj *applianceJob) error {
		specs, named := attachDisks(disks)
		aj.disks = append(aj.disks, specs...)
		aj.job.Disks = append(aj.job.Disks, named...)
		return nil
	}
}

// withShares gives the appliance host directories.
func withShares(s ...virt.ShareSpec) jobOption {
	return func(aj *applianceJob) error { aj.shares = append(aj.shares, s...); return nil }
}

// withConsole connects the operator to the running appliance (attach).
func withConsole(attach func(ctx context.Context, domain string) error) jobOption {
	return func(aj *applianceJob) error { aj.attach = attach; return nil }
}

// attachDisks turns the client disks a job gets, in order, into what the
// appliance domain attaches and what the job calls them: the i-th disk
// carries the serial job.DiskSerialPrefix+i on both sides (its source is
// Path as it is: a snapshot's overlay, or for a recovery or a rescue the
// client's own disk, writable).
func attachDisks(disks []virt.ClientDisk) ([]virt.DiskSpec, []job.Disk) {
	var specs []virt.DiskSpec
	var named []job.Disk
	for i, d := range disks {
		serial := fmt.Sprintf("%s%d", job.DiskSerialPrefix, i)
		specs = append(specs, virt.DiskSpec{Path: d.Path, Format: d.Format, Block: d.Block, Serial: serial})
		named = append(named, job.Disk{Serial: serial, Dev: d.Target})
	}
	return specs, named
}

// newJob builds the appliance job of client c (nil: a rescue of disk
// images that belong to no client) in mode t: the fields every mode shares
// (client, run, time limit, priority), the repository with its network,
// secrets and share when the mode has one, the client's own cache, and
// what opts attach. It creates the job directory. This is the one place
// a job.Job is made.
func (r *Runner) newJob(c *config.Resolved, t modeTable, opts ...jobOption) (applianceJob, error) {
	name := "disks"
	if c != nil {
		name = c.Name
	}
	j := &job.Job{Version: job.Version, Mode: t.mode, Client: name, RunID: r.runID,
		Nice: r.cfg.Host.Nice, IONiceClass: r.cfg.Host.IONice}
	aj := applianceJob{job: j, dir: name}
	if c != nil {
		j.TimeLimit = c.TimeLimit
		// The job's own client's cache, and no other (runAppliance).
		aj.cache = c.Name
	}
	t.set(j)
	if t.repo != repoNone {
		if c == nil {
			return applianceJob{}, fmt.Errorf("a %s job needs a client", t.mode)
		}
		if err := r.addRepo(&aj, c, t.repo); err != nil {
			return applianceJob{}, err
		}
	}
	for _, o := range opts {
		if err := o(&aj); err != nil {
			return applianceJob{}, err
		}
	}
	aj.dir = r.jobDir(aj.dir)
	if err := os.MkdirAll(aj.dir, 0o700); err != nil {
		return applianceJob{}, err
	}
	return aj, nil
}

// addRepo gives aj the client's repository: its description, its network,
// its secrets and, for a file:// target, its directory.
//
// A backup of a client with several profiles gets every destination, in
// the client's order: the first as Job.Repo, the others as Job.Also.
func (r *Runner) addRepo(aj *applianceJob, c *config.Resolved, rm repoMode) error {
	dests := []*config.Resolved{c}
	if aj.job.Mode == job.ModeBackup {
		dests = c.Destinations()
	}
	aj.secrets = map[string][]byte{}
	var repos []job.Repo
	for slot, d := range dests {
		repo, share := clientRepo(d, slot)
		if len(dests) > 1 {
			repo.Profile = d.Profile.Name
		}
		if share.Dir != "" {
			switch rm {
			case repoWrite:
				if err := os.MkdirAll(share.Dir, 0o700); err != nil {
					return fmt.Errorf("target directory: %w", err)
				}
			case repoExisting:
				if _, err := os.Stat(share.Dir); err != nil {
					return fmt.Errorf("client %s has no repository at %s: %w", c.Name, share.Dir, err)
				}
			}
			// Writable even to read: borg takes its repository lock there.
			aj.shares = append(aj.shares, share)
		}
		// Only this client's secrets: with {client} in the profile's
		// secret paths, no other client's appliance ever holds them.
		secrets, err := clientSecrets(d, slot)
		if err != nil {
			return err
		}
		for name, data := range secrets {
			aj.secrets[name] = data
		}
		repos = append(repos, repo)
	}
	aj.job.Repo, aj.job.Also = &repos[0], repos[1:]
	if len(aj.job.Also) == 0 {
		aj.job.Also = nil
	}
	aj.job.Net = jobNet(r.cfg.Host, repos...)
	return nil
}

// jobNet is the appliance's network for a job one of whose targets needs
// one.
func jobNet(h config.Host, repos ...job.Repo) *job.Net {
	if !slices.ContainsFunc(repos, func(r job.Repo) bool { return r.Target.NeedsNetwork() }) {
		return nil
	}
	n := h.Network
	mode := n.Mode
	if mode == "static" {
		mode = "" // the job format's default
	}
	return &job.Net{Mode: mode, Address: n.Address, Gateway: n.Gateway, DNS: slices.Clone(n.DNS)}
}

// logPath is where the appliance's log of a job is kept on the host.
func (aj applianceJob) logPath() string { return filepath.Join(aj.dir, job.FileLog) }

// jobReport is the report a job fills in (report.Job), with what its
// steps hand on that is not reported.
type jobReport struct {
	*report.Job
	hooks *jobHooks // for post_snapshot
	// result is the appliance's result once it answered (a backup's
	// destination records).
	result *job.Result
	// deadline is when the job's time_limit passes (zero: none).
	deadline time.Time
}

// newJobReport starts the report of a job of client in mode (a backup's
// mode is how its disks were taken: it sets it later).
func newJobReport(client, mode, logDir string) *jobReport {
	return &jobReport{Job: &report.Job{Client: client, Started: time.Now(), LogDir: logDir, Mode: mode}}
}

// finish ends the report of a job other than a backup: ok, warning when
// the appliance finished with warnings (accept), or failed with err.
func (rep *jobReport) finish(err error) *report.Job {
	rep.Elapsed = time.Since(rep.Started)
	rep.Status = job.StatusOK
	if rep.Warning != "" {
		rep.Status = job.StatusWarning
	}
	if err != nil {
		rep.Status, rep.Error = job.StatusFailed, err.Error()
		rep.Warnings = job.Warnings{}
	}
	return rep.Job
}

// accept says whether a restore's or a recovery's appliance finished
// (ok, or warning: what the tool could not do goes to the report, which
// finish then makes "warning", never "ok").
func (rep *jobReport) accept(res *job.Result) bool {
	switch res.Done.Status {
	case job.StatusOK:
		return true
	case job.StatusWarning:
		rep.Warnings = res.Done.Warnings
		return true
	}
	return false
}

// runFromArchive builds and runs a job that reads one of the client's
// backups (restore, verify, a recovery) and records in rep the archive the
// appliance chose, with its times (runReported).
func (r *Runner) runFromArchive(ctx context.Context, rv *reverter, rep *jobReport, c *config.Resolved, t modeTable, opts ...jobOption) (applianceJob, *job.Result, error) {
	aj, err := r.newJob(c, t, opts...)
	if err != nil {
		return aj, nil, err
	}
	res, err := r.runReported(ctx, rv, aj, rep)
	if err != nil {
		return aj, nil, err
	}
	rep.Archive = res.Done.Archive
	return aj, res, nil
}

// runReported boots aj's appliance and records in rep what every mode
// reports of it: its time (also of one that failed) and, once it answered,
// the backend's times. The result's status is the caller's to judge.
func (r *Runner) runReported(ctx context.Context, rv *reverter, aj applianceJob, rep *jobReport) (*job.Result, error) {
	out, err := r.runAppliance(ctx, rv, aj)
	if out != nil {
		rep.ApplianceElapsed, rep.PowerOff = out.elapsed, out.powerOff
	}
	if err != nil {
		return nil, err
	}
	rep.Backend, rep.ReadyIn = out.result.Done.BackendElapsed, out.result.Done.ReadyAfter
	return out.result, nil
}
