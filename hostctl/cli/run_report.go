package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

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
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
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
	if asJSON {
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			return err
		}
	} else {
		printSummary(g.Stdout, reports)
	}
	runErr := exitFor(reports)
	finishRun(ctx, cfg, runID, started, reports, runErr, g.Stderr)
	return runErr
}
