package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

type verifyOptions struct {
	progressOptions
	GPGKeys []string
	Archive string
	Time    string
	Sample  int
	Paths   []string
	Profile string
	JSON    bool
}

func newVerifyCmd(g *Globals) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify [CLIENT…] [--sample N] [--time T | --archive ID]",
		Short: "Prove that backups restore: restore into scratch space in the appliance and compare with the backend's listing",
		Long: `verify boots the appliance with the client's repository, restores the latest
backup (or --archive, or the newest at or before --time) into scratch space on
the cache volume, compares what it restored with the backend's own listing, and
removes the scratch space. Without CLIENT it verifies every configured client.
A client with several destinations (profiles = [...]) is verified at its
first unless --profile names another.

What is compared, per backend:
  borg       type, size, permissions, mtime and the SHA-256 of every file's
             content as "borg list" computes it from the repository's chunks
  restic     type, size, permissions, mtime from "restic ls"; the restored data
             is checked against restic's blob hashes ("restore --verify")
  duplicity  presence and mtime from "list-current-files"; a whole restore is
             checked by "duplicity verify --compare-data" against the hashes
             recorded at backup time
--sample N restores N files chosen at random instead of everything (quicker
on large clients; a different sample each time). --path P limits the verify
to P and below (repeatable). A corrupt repository, a missing or changed file
fails the job, naming the first differences.

The result is reported like a backup run: the table below, a report in
<state_dir>/reports/ (hostctl status), and as configured in [report]: mail,
journal (SB_JOB=verify), metrics (hostctl_verify_*). Scheduled verifies:
verify_every = N in hostctl.toml or a client file makes "hostctl run" verify a
client after every Nth successful backup (verify_sample = N for a sample).

` + timeArgHelp + `

` + progressHelp + `

` + exitCodeHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), g, o, args)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *verifyOptions) AddFlags(f *pflag.FlagSet) {
	addGPGKeyFlag(f, &o.GPGKeys)
	addProfileFlag(f, &o.Profile)
	o.progressOptions.AddFlags(f)
	f.StringVar(&o.Archive, "archive", "", "backup to verify, an ID from hostctl list (default: the latest)")
	f.StringVar(&o.Time, "time", "", `verify the newest backup at or before this time`)
	f.IntVar(&o.Sample, "sample", 0, "restore and compare this many files chosen at random (0: all)")
	f.StringArrayVar(&o.Paths, "path", nil, `verify only this path of the tree, e.g. "etc" (repeatable)`)
	f.BoolVar(&o.JSON, "json", false, "print the per-client reports as JSON on stdout")
}

func runVerify(ctx context.Context, g *Globals, o verifyOptions, names []string) error {
	g, sink, err := o.streams(g, o.JSON)
	if err != nil {
		return err
	}
	vo := runner.VerifyOptions{Archive: o.Archive, Sample: o.Sample, Paths: o.Paths, GPGKeys: o.GPGKeys}
	if o.Sample < 0 {
		return &UsageError{fmt.Errorf("verify: --sample %d: want 0 (all) or a number of files", o.Sample)}
	}
	if o.Archive != "" && len(names) != 1 {
		return &UsageError{fmt.Errorf("verify: --archive names one client's backup: name exactly one CLIENT")}
	}
	if vo.Time, err = backupSelector("verify", o.Archive, o.Time, o.Paths); err != nil {
		return err
	}
	sp := sessionSpec{clients: names, image: true, progress: sink, reported: true, mode: report.ModeVerify, asJSON: o.JSON, profile: o.Profile}
	return g.withSession(ctx, sp, func(s *session, clients []*config.Resolved) error {
		started := time.Now()
		reports := eachClient(ctx, clients, report.ModeVerify, func(c *config.Resolved) *report.Job {
			return verifyOne(ctx, g, s.runner, c, vo)
		})
		return reportRun(ctx, g, s.cfg, s.runner.RunID(), started, reports, o.JSON)
	})
}

// eachClient runs one job per client in turn and returns their reports;
// once ctx is done (SIGTERM), the clients left are reported failed, "not
// started".
func eachClient(ctx context.Context, clients []*config.Resolved, mode string, run func(*config.Resolved) *report.Job) []*report.Job {
	var reports []*report.Job
	for _, c := range clients {
		if ctx.Err() != nil {
			reports = append(reports, &report.Job{Client: c.Name, Mode: mode, Status: job.StatusFailed, Error: "not started: " + ctx.Err().Error()})
			continue
		}
		reports = append(reports, run(c))
	}
	return reports
}
