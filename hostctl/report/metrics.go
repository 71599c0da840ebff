package report

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// Metrics renders node_exporter textfile metrics for the latest run, with
// the last success time of every client found in history (newest first;
// the latest run included).
func Metrics(latest *Run, history []*Run) string {
	var b strings.Builder
	help := func(name, typ, text string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, typ) }
	help("hostctl_run_timestamp_seconds", "gauge", "Start of the last hostctl run.")
	fmt.Fprintf(&b, "hostctl_run_timestamp_seconds %d\n", latest.Started.Unix())
	help("hostctl_run_duration_seconds", "gauge", "Duration of the last hostctl run.")
	fmt.Fprintf(&b, "hostctl_run_duration_seconds %.3f\n", latest.Elapsed.Seconds())
	help("hostctl_run_exit_code", "gauge", "Exit code of the last hostctl run.")
	fmt.Fprintf(&b, "hostctl_run_exit_code %d\n", latest.ExitCode)

	// Backups and verifies have gauges of their own: a client may have
	// both in one run.
	var jobs, verifies []*Job
	for _, j := range latest.Jobs {
		switch j.Mode {
		case ModeVerify:
			verifies = append(verifies, j)
		case ModePrune:
			// a prune is no backup: it has the run's gauges only
		default:
			jobs = append(jobs, j)
		}
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Client < jobs[j].Client })
	sort.Slice(verifies, func(i, j int) bool { return verifies[i].Client < verifies[j].Client })
	type gauge struct {
		name, help string
		val        func(*Job) (float64, bool)
	}
	for _, g := range []gauge{
		{"hostctl_job_success", "1 if the client's last job succeeded (status ok; a backup with warnings is 0).", func(j *Job) (float64, bool) { return b2f(j.Status == job.StatusOK), true }},
		{"hostctl_job_unreadable_files", "Files the client's last backup could not read.", func(j *Job) (float64, bool) {
			return float64(j.UnreadableCount), j.Status == job.StatusOK || j.Status == job.StatusWarning
		}},
		{"hostctl_job_duration_seconds", "Duration of the client's last job.", func(j *Job) (float64, bool) { return j.Elapsed.Seconds(), true }},
		{"hostctl_job_pause_seconds", "Pause window of the client's last job (end of pre_snapshot to start of on_snapshot).", func(j *Job) (float64, bool) { return j.Pause.Seconds(), j.Pause > 0 }},
		{"hostctl_job_files", "Files in the client's last backup.", func(j *Job) (float64, bool) { return stat(j, func(s statsT) int64 { return s.Files }) }},
		{"hostctl_job_read_bytes", "Bytes read by the client's last backup (original size).", func(j *Job) (float64, bool) { return stat(j, func(s statsT) int64 { return s.OriginalSize }) }},
		{"hostctl_job_written_bytes", "Bytes written by the client's last backup (compressed).", func(j *Job) (float64, bool) {
			return stat(j, func(s statsT) int64 { return s.CompressedSize })
		}},
		{"hostctl_job_deduplicated_bytes", "New bytes in the repository after deduplication.", func(j *Job) (float64, bool) { return stat(j, func(s statsT) int64 { return s.DedupSize }) }},
	} {
		help(g.name, "gauge", g.help)
		for _, j := range jobs {
			if v, ok := g.val(j); ok {
				fmt.Fprintf(&b, "%s{%s} %s\n", g.name, labels(j), num(v))
			}
		}
	}
	for _, g := range []gauge{
		{"hostctl_verify_success", "1 if the client's last verify (restore test) in this run succeeded.", func(j *Job) (float64, bool) { return b2f(j.Status == job.StatusOK), true }},
		{"hostctl_verify_files", "Items compared by the client's last verify.", func(j *Job) (float64, bool) { return stat(j, func(s statsT) int64 { return s.Files }) }},
		{"hostctl_verify_bytes", "Bytes restored and compared by the client's last verify.", func(j *Job) (float64, bool) { return stat(j, func(s statsT) int64 { return s.OriginalSize }) }},
	} {
		if len(verifies) == 0 {
			break
		}
		help(g.name, "gauge", g.help)
		for _, j := range verifies {
			if v, ok := g.val(j); ok {
				fmt.Fprintf(&b, "%s{%s} %s\n", g.name, labels(j), num(v))
			}
		}
	}
	jobStatus(&b, jobs)
	lastSuccess(&b, latest, history, false, "hostctl_last_success_timestamp_seconds", "End of the client's last successful backup.")
	lastSuccess(&b, latest, history, true, "hostctl_last_verify_success_timestamp_seconds", "End of the client's last successful verify (restore test).")
	return b.String()
}

// labels are a job's series labels: its client, and its profile for one
// of several destinations of a client.
func labels(j *Job) string {
	if j.Profile == "" {
		return fmt.Sprintf("client=%q", j.Client)
	}
	return fmt.Sprintf("client=%q,profile=%q", j.Client, j.Profile)
}

// jobStatuses are the values of hostctl_job_status's status label.
var jobStatuses = []string{job.StatusOK, job.StatusWarning, job.StatusFailed, StatusSkipped}

// jobStatus writes hostctl_job_status: one series per client and status,
// 1 for the status of its last backup, so that an alert can tell a warning
// from a failure (`hostctl_job_status{status="failed"} == 1`).
func jobStatus(b *strings.Builder, jobs []*Job) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s gauge\n", "hostctl_job_status", "1 for the status of the client's last backup (ok, warning, failed, skipped), 0 for the others.", "hostctl_job_status")
	for _, j := range jobs {
		for _, st := range jobStatuses {
			fmt.Fprintf(b, "hostctl_job_status{%s,status=%q} %s\n", labels(j), st, num(b2f(j.Status == st)))
		}
	}
}

// lastSuccess writes the end time of every client's last successful
// backup (or verify) found in the runs; a backup with warnings is none.
func lastSuccess(b *strings.Builder, latest *Run, history []*Run, verify bool, name, text string) {
	last := map[string]int64{}
	for _, r := range append([]*Run{latest}, history...) {
		for _, j := range r.Jobs {
			if j.Mode != ModePrune && (j.Mode == ModeVerify) == verify && j.Status == job.StatusOK && last[labels(j)] == 0 {
				last[labels(j)] = j.Started.Add(j.Elapsed).Unix()
			}
		}
	}
	if verify && len(last) == 0 {
		return
	}
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, text, name)
	clients := make([]string, 0, len(last))
	for c := range last {
		clients = append(clients, c)
	}
	sort.Strings(clients)
	for _, c := range clients {
		fmt.Fprintf(b, "%s{%s} %d\n", name, c, last[c])
	}
}

type statsT = struct {
	Files, OriginalSize, CompressedSize, DedupSize int64
}

func stat(j *Job, f func(statsT) int64) (float64, bool) {
	if j.Stats == nil {
		return 0, false
	}
	s := j.Stats
	return float64(f(statsT{s.Files, s.OriginalSize, s.CompressedSize, s.DedupSize})), true
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func num(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprintf("%.3f", v)
}

// WriteMetrics writes the textfile atomically (node_exporter must never
// read half a file).
func WriteMetrics(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, []byte(content), 0o644)
}
