package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// mailTimeout bounds sending the report mail.
const mailTimeout = 3 * time.Minute

// logTailLines is how much of a failed job's backend log the report carries.
const logTailLines = 20

// finishRun reports a finished run: JSON in the state dir, Prometheus
// textfile, journal, mail, as configured. Reporting problems are printed to
// errw but never change the run's exit code.
func finishRun(ctx context.Context, cfg *config.Config, runID string, started time.Time, reports []*runner.Report, runErr error, errw io.Writer) *report.Run {
	host, _ := os.Hostname()
	r := &report.Run{ID: runID, Host: host, Started: started, Elapsed: time.Since(started), Jobs: reports}
	var ee *ExitError
	if errors.As(runErr, &ee) {
		r.ExitCode = ee.Code
	} else if runErr != nil {
		r.ExitCode = ExitFailed
	}
	for _, j := range reports {
		if j.Status != runner.StatusFailed || j.LogDir == "" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(j.LogDir, job.FileLog)); err == nil && len(b) > 0 {
			if r.LogTails == nil {
				r.LogTails = map[string]string{}
			}
			r.LogTails[j.Client] = report.Tail(string(b), logTailLines)
		}
	}
	rc := cfg.Host.Report
	keep := rc.KeepRuns
	if keep <= 0 {
		keep = config.DefaultKeepRuns
	}
	if p, err := report.Save(cfg.Host.StateDir, r, keep); err != nil {
		fmt.Fprintf(errw, "report: %v\n", err)
	} else {
		fmt.Fprintf(errw, "report: %s\n", p)
	}
	if rc.MetricsFile != "" {
		history, _ := report.Last(cfg.Host.StateDir, keep)
		if err := report.WriteMetrics(rc.MetricsFile, report.Metrics(r, history)); err != nil {
			fmt.Fprintf(errw, "report: metrics: %v\n", err)
		}
	}
	if rc.JournalOn() {
		if _, err := report.Journal(r); err != nil {
			fmt.Fprintf(errw, "report: %v\n", err)
		}
	}
	if report.WantMail(rc, r) {
		// The run may have been stopped (time limit, SIGTERM): the mail
		// about it must still go out.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mailTimeout)
		defer cancel()
		if err := report.Mail(mctx, rc, r); err != nil {
			fmt.Fprintf(errw, "report: mail: %v\n", err)
		} else {
			fmt.Fprintf(errw, "report: mailed to %v\n", rc.To)
		}
	}
	return r
}

// reportRun prints the jobs' reports (a table, or JSON), reports the run
// (finishRun) and returns its exit error: the end of run and verify.
func reportRun(ctx context.Context, g *Globals, cfg *config.Config, runID string, started time.Time, reports []*runner.Report, asJSON bool) error {
	if err := printReports(g.Stdout, reports, asJSON); err != nil {
		return err
	}
	runErr := exitFor(reports)
	finishRun(ctx, cfg, runID, started, reports, runErr, g.Stderr)
	pruneRuns(cfg, g.Stderr)
	return runErr
}

// printReports prints the jobs' reports: the summary table, or JSON.
func printReports(w io.Writer, reports []*runner.Report, asJSON bool) error {
	return printResult(w, asJSON, reports, func(w io.Writer) error {
		printSummary(w, reports)
		return nil
	})
}

// pruneRuns removes the job directories of runs older than the kept
// reports (keep_runs). Only a run that holds the lock prunes: the ledger
// says what must stay, and it changes while a run is in progress.
func pruneRuns(cfg *config.Config, errw io.Writer) {
	keep := cfg.Host.Report.KeepRuns
	if keep <= 0 {
		keep = config.DefaultKeepRuns
	}
	l, err := ledger.Open(filepath.Join(cfg.Host.StateDir, "ledger"))
	if err == nil {
		err = runner.PruneRuns(cfg.Host.StateDir, keep, l)
	}
	if err != nil {
		fmt.Fprintf(errw, "report: %v\n", err)
	}
}

// reportNotStarted reports a run that failed before any of its jobs (the
// run lock, libvirt, the ledger, the appliance image): every selected
// client's job is reported failed, "not started: " and the cause, on every
// channel the configuration has (report JSON, metrics, journal, mail), so
// that a night without backups is never silent. It returns the exit error:
// cause's code (4 for the lock), else 1.
func reportNotStarted(ctx context.Context, g *Globals, cfg *config.Config, clients []*config.Client, mode string, cause error, asJSON bool) error {
	now := time.Now()
	runID := runner.NewRunID(now)
	exit := &ExitError{Code: ExitFailed, Err: cause}
	var ee *ExitError
	if errors.As(cause, &ee) {
		exit.Code = ee.Code
	}
	if exit.Code == ExitLocked {
		// The run holding the lock may have started in the same second:
		// its report must not be overwritten by this one.
		runID += "-refused"
	}
	reports := make([]*runner.Report, 0, len(clients))
	for _, c := range clients {
		reports = append(reports, &runner.Report{Client: c.Name, Mode: mode, Started: now,
			Status: runner.StatusFailed, Error: "not started: " + cause.Error()})
	}
	if err := printReports(g.Stdout, reports, asJSON); err != nil {
		return err
	}
	finishRun(ctx, cfg, runID, now, reports, exit, g.Stderr)
	return exit
}

// configFailureEntry is the journal entry of a run whose configuration
// could not be loaded: no report JSON, metrics or mail are possible (their
// settings and the state dir are in the configuration), so the journal,
// stderr and the exit code (2) are where it shows.
func configFailureEntry(path string, err error) (msg string, prio journal.Priority, fields map[string]string) {
	msg = fmt.Sprintf("hostctl: run not started: configuration %s: %v", path, err)
	return msg, journal.PriErr, map[string]string{
		"SYSLOG_IDENTIFIER": "hostctl",
		"SB_STATUS":         runner.StatusFailed,
		"SB_CONFIG":         path,
		"SB_ERROR":          err.Error(),
	}
}

// journalConfigFailure sends configFailureEntry when journald runs; a
// failure to send goes to errw.
func journalConfigFailure(path string, err error, errw io.Writer) {
	if !journal.Enabled() {
		return
	}
	msg, prio, fields := configFailureEntry(path, err)
	if jerr := journal.Send(msg, prio, fields); jerr != nil {
		fmt.Fprintf(errw, "report: journal: %v\n", jerr)
	}
}
