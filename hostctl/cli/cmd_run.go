package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
	"github.com/snapshot-backup/snapshot-backup/internal/units"
)

type runOptions struct {
	progressOptions
	JSON        bool
	Wait        bool
	LockTimeout time.Duration
	// BackupTime is a hidden test seam: the time backends record.
	BackupTime string
}

func newRunCmd(g *Globals) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [CLIENT…]",
		Short: "Back up every configured client (or the ones named), one after another",
		Long: `Back up clients: for each, snapshot its disks (external libvirt snapshot while
the domain runs; the disks as they are when it is shut off and offline_ok allows),
boot a throwaway appliance with them, let it run the profile's backend, and remove
snapshots, overlays, the job disk and the appliance afterwards, also on failure or
SIGINT/SIGTERM. Leftovers of a crashed run are removed first; one that cannot
be removed fails the jobs of its own client (the reason names the ledger),
and the other clients run. A run that fails before its jobs (the lock,
libvirt, the appliance image) is reported, on every channel of [report], as
every client failed with "not started: …".

Only one run at a time: a second one exits with code 4 at once, or waits for
the first with --wait (or --lock-timeout).

Time limits, enforced by hostctl on the host: time_limit (hostctl.toml, or per
client) bounds each job from its first hook to its cleanup; run_time_limit
(hostctl.toml, default none) bounds the whole run. When one passes, the hook
that runs is killed or the appliance domain destroyed, on_snapshot and
post_snapshot still run (each within the hook time limit), snapshots, overlays
and the job disk are removed, and the job fails (exit code 1) with a reason that
starts "time_limit … of the job reached" or "run_time_limit … reached". Clients
not started before run_time_limit passed are reported failed ("not started").
The appliance's own watchdog gets the job's remaining time less a margin, so it
normally stops its backend and keeps its log before hostctl destroys it.

Hooks: pre_snapshot → [freeze] → snapshot → [thaw] → on_snapshot → backup →
post_snapshot (SB_OUTCOME=ok|warning|failed, SB_ERROR in its environment). A
failing pre_snapshot skips the snapshot and fails the job (unless
on_pre_failure = "continue"); on_snapshot runs whenever pre_snapshot ran. A
hook that outlives hooks.time_limit is killed and counts as failed.

Outcomes: a backup is ok when the backend exited cleanly with an archive of at
least one file. A backup.source path the client's filesystem does not have, or
an archive without files, fails the job. When the backend wrote its archive
but could not read some files (borg exit 1, restic exit 3, duplicity's read
errors), the job ends "warning" (exit code 5) and the report lists them (the
first 20, and how many). Retention (prune, forget, remove-older-than) and the
check_every count follow only an ok backup, and never remove the newest one.

Each job's files are kept in <state_dir>/runs/RUN_ID/CLIENT/: the appliance's
console.log, its log (job.log), result.jsonl and progress.jsonl. Each run's
report goes to <state_dir>/reports/ (see hostctl status), and as configured in
[report]: mail, journal, metrics.

verify_every = N (hostctl.toml or a client file) adds a restore test
("hostctl verify") of a client right after every Nth successful backup of it;
it is reported as "CLIENT (verify)" in the same run, and a failed one fails the
run (exit 1) and is repeated after every backup until it passes.

` + progressHelp + `

` + exitCodeHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), g, o, args)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *runOptions) AddFlags(f *pflag.FlagSet) {
	o.progressOptions.AddFlags(f)
	f.BoolVar(&o.JSON, "json", false, "print the per-client reports as JSON on stdout")
	f.BoolVar(&o.Wait, "wait", false, "wait for a running hostctl to finish instead of exiting with code 4")
	f.DurationVar(&o.LockTimeout, "lock-timeout", 0, "wait at most this long for a running hostctl (implies --wait)")
	f.StringVar(&o.BackupTime, "backup-time", "", "record the backups at this RFC 3339 time instead of now (tests of retention)")
	_ = f.MarkHidden("backup-time")
}

func runRun(ctx context.Context, g *Globals, o runOptions, names []string) error {
	g, sink, err := o.streams(g, o.JSON)
	if err != nil {
		return err
	}
	wait := o.LockTimeout
	if o.Wait && wait == 0 {
		wait = -1
	}
	var backupTime time.Time
	if o.BackupTime != "" {
		if backupTime, err = time.Parse(time.RFC3339, o.BackupTime); err != nil {
			return &UsageError{fmt.Errorf("--backup-time: %w", err)}
		}
	}
	sp := sessionSpec{clients: names, image: true, lockWait: wait, progress: sink, reported: true, asJSON: o.JSON, backupTime: backupTime}
	return g.withSession(ctx, sp, func(s *session, clients []*config.Resolved) error {
		return backupAll(ctx, g, s, clients, o.JSON)
	})
}

// backupAll backs up clients one after another, each followed by the
// verify that verify_every schedules, and reports the run.
func backupAll(ctx context.Context, g *Globals, s *session, clients []*config.Resolved, asJSON bool) error {
	started := time.Now()
	if limit := s.cfg.Host.RunTimeLimit.Duration; limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, limit, &runner.LimitError{Key: "run_time_limit", Limit: limit})
		defer cancel()
	}
	var reports []*report.Job
	for _, c := range clients {
		if ctx.Err() != nil {
			reports = append(reports, &report.Job{Client: c.Name, Status: job.StatusFailed, Error: "not started: " + context.Cause(ctx).Error()})
			continue
		}
		fmt.Fprintf(g.Stderr, "%s: backup of domain %s\n", c.Name, c.Domain)
		rows := s.runner.BackupAll(ctx, c)
		for _, rep := range rows {
			fmt.Fprintf(g.Stderr, "%s: %s in %s\n", rep.Name(), rep.Status, rep.Elapsed.Round(time.Second))
		}
		reports = append(reports, rows...)
		// verify_every: a restore test of each destination after every
		// Nth successful backup to it.
		for _, rep := range rows {
			d, err := c.Destination(rep.Profile)
			if err != nil || rep.Status != job.StatusOK || ctx.Err() != nil {
				continue
			}
			due, err := s.runner.VerifyDue(d)
			if err != nil {
				fmt.Fprintf(g.Stderr, "%s: %v\n", rep.Name(), err)
			}
			if due {
				reports = append(reports, verifyOne(ctx, g, s.runner, d, runner.VerifyOptions{Sample: c.VerifySample}))
			}
		}
	}
	return reportRun(ctx, g, s.cfg, s.runner.RunID(), started, reports, asJSON)
}

// exitFor maps job outcomes to the exit code, the most serious first: any
// failure (or a status it does not know) is 1, then a backup with
// warnings 5, then skips 3.
func exitFor(reports []*report.Job) error {
	failed, warned, skipped := 0, 0, 0
	for _, r := range reports {
		switch r.Status {
		case job.StatusOK:
		case job.StatusWarning:
			warned++
		case report.StatusSkipped:
			skipped++
		default:
			failed++
		}
	}
	switch {
	case failed > 0:
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%d of %d job(s) failed", failed, len(reports))}
	case warned > 0:
		return &ExitError{Code: ExitWarning, Err: fmt.Errorf("%d of %d backup(s) ended with warnings: files could not be read", warned, len(reports))}
	case skipped > 0:
		return &ExitError{Code: ExitPartial, Err: fmt.Errorf("%d of %d job(s) skipped", skipped, len(reports))}
	}
	return nil
}

func printSummary(w io.Writer, reports []*report.Job) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSTATUS\tTIME\tFILES\tSIZE\tDEDUP\tARCHIVE / ERROR")
	for _, r := range reports {
		files, size, dedup := "-", "-", "-"
		if r.Stats != nil {
			files = fmt.Sprint(r.Stats.Files)
			size = units.Bytes(r.Stats.OriginalSize)
			dedup = units.Bytes(r.Stats.DedupSize)
		}
		name := r.Name()
		switch r.Mode {
		case report.ModeVerify:
			name, dedup = name+" (verify)", "-" // files and bytes compared
		case report.ModePrune:
			name += " (prune)"
		}
		// Both come from the appliance: no control character reaches the terminal.
		detail := textsafe.Line(r.Archive)
		switch {
		case r.Error != "":
			detail = textsafe.Line(r.Error)
		case r.Mode == report.ModePrune:
			detail = fmt.Sprintf("removed %d, kept %d", len(r.Pruned), r.Kept)
		case r.Status == job.StatusWarning:
			detail = textsafe.Line(r.Archive + ": " + warningDetail(r))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, r.Status, r.Elapsed.Round(time.Second), files, size, dedup, detail)
	}
	tw.Flush()
}

// verifyOne runs one client's verify, printing its progress, and restarts
// the client's verify_every count when it passed.
func verifyOne(ctx context.Context, g *Globals, r *runner.Runner, c *config.Resolved, o runner.VerifyOptions) *report.Job {
	what := "all files"
	if o.Sample > 0 {
		what = fmt.Sprintf("a sample of %d files", o.Sample)
	}
	name := destName(c)
	fmt.Fprintf(g.Stderr, "%s: verify (restore test of %s)\n", name, what)
	rep := r.Verify(ctx, c, o)
	fmt.Fprintf(g.Stderr, "%s: verify %s in %s\n", name, rep.Status, rep.Elapsed.Round(time.Second))
	if rep.Status == job.StatusOK {
		if err := r.VerifyDone(c); err != nil {
			fmt.Fprintf(g.Stderr, "%s: verify schedule: %v\n", name, err)
		}
	}
	return rep
}

// warningDetail is a backup with warnings in one line: what the backend
// said and the first files it could not read.
func warningDetail(r *report.Job) string {
	s := r.Warning
	if len(r.Unreadable) > 0 {
		s += fmt.Sprintf("; not read (%d): %s", r.UnreadableCount, strings.Join(r.Unreadable[:min(3, len(r.Unreadable))], ", "))
		if r.UnreadableCount > 3 {
			s += ", …"
		}
	}
	return s
}
