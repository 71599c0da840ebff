// Package report turns one hostctl run into what the operator reads: a JSON
// record in the state dir (`hostctl status`), a mail, journal entries and
// Prometheus textfile metrics. Rendering is pure functions of a Run, checked
// against golden files; sending and writing are thin wrappers around them.
package report

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
	"github.com/snapshot-backup/snapshot-backup/internal/units"
)

// Run is one hostctl run: its jobs' reports and its outcome.
type Run struct {
	ID       string        `json:"id"`
	Host     string        `json:"host"`
	Started  time.Time     `json:"started"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	ExitCode int           `json:"exit_code"`
	Jobs     []*Job        `json:"jobs"`
	// LogTails holds, per failed client, the end of its backend log.
	LogTails map[string]string `json:"log_tails,omitempty"`
}

// Tally is how many jobs of a run ended in each status.
type Tally struct{ OK, Warning, Failed, Skipped int }

// Tally counts the run's jobs by status; a status it does not know counts
// as failed.
func (r *Run) Tally() Tally {
	var t Tally
	for _, j := range r.Jobs {
		switch j.Status {
		case job.StatusOK:
			t.OK++
		case job.StatusWarning:
			t.Warning++
		case StatusSkipped:
			t.Skipped++
		default:
			t.Failed++
		}
	}
	return t
}

// Status is "failed" (a job failed), "warning" (a backup is incomplete,
// none failed), "partial" (skips only) or "ok": the exit code's order.
func (r *Run) Status() string {
	t := r.Tally()
	switch {
	case t.Failed > 0:
		return "failed"
	case t.Warning > 0:
		return "warning"
	case t.Skipped > 0:
		return "partial"
	}
	return "ok"
}

// Subject is the mail subject: outcome first, so it sorts and filters well.
func Subject(r *Run) string {
	t := r.Tally()
	s := fmt.Sprintf("[hostctl %s] %s: %d ok", strings.ToUpper(r.Status()), r.Host, t.OK)
	if t.Warning > 0 {
		s += fmt.Sprintf(", %d warning", t.Warning)
	}
	if t.Failed > 0 {
		s += fmt.Sprintf(", %d failed", t.Failed)
	}
	if t.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped", t.Skipped)
	}
	return s + " (run " + r.ID + ")"
}

// Text is the human-readable report: a table per client, then the details
// of every job that did not succeed. Errors, hook output and log tails are
// what the appliance and the guest said: they go through textsafe, since
// the report is read on terminals (hostctl status) and in mail.
func Text(r *Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostctl run %s on %s: %s, exit code %d\n", r.ID, r.Host, r.Status(), r.ExitCode)
	fmt.Fprintf(&b, "started %s, took %s\n\n", r.Started.UTC().Format(time.RFC3339), dur(r.Elapsed))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSTATUS\tTIME\tPAUSE\tFILES\tREAD\tWRITTEN\tDEDUP")
	for _, j := range r.Jobs {
		files, read, written, dedup := "-", "-", "-", "-"
		if s := j.Stats; s != nil {
			files = fmt.Sprint(s.Files)
			read, written, dedup = units.Bytes(s.OriginalSize), units.Bytes(s.CompressedSize), units.Bytes(s.DedupSize)
		}
		pause := "-"
		if j.Pause > 0 {
			pause = dur(j.Pause)
		}
		name := j.Name()
		switch j.Mode {
		case ModeVerify:
			// files and bytes compared; nothing written
			name, written, dedup = j.Client+" (verify)", "-", "-"
		case ModePrune:
			name, files, read, written, dedup = j.Client+" (prune)", "-", "-", "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, j.Status, dur(j.Elapsed), pause, files, read, written, dedup)
	}
	tw.Flush()
	var records []string
	for _, j := range r.Jobs {
		if j.VMRecord != "" {
			records = append(records, fmt.Sprintf("  %s: %s", j.Name(), textsafe.Line(j.VMRecord)))
		}
	}
	if len(records) > 0 {
		fmt.Fprintf(&b, "\nVM records (what \"hostctl recover\" puts back where):\n%s\n", strings.Join(records, "\n"))
	}
	for _, j := range r.Jobs {
		if j.Status == job.StatusOK && len(j.Cleanups) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n--- %s %s: %s\n", j.Name(), jobKind(j), j.Status)
		if j.Error != "" {
			fmt.Fprintf(&b, "reason: %s\n", textsafe.Line(j.Error))
		}
		if j.Status == job.StatusWarning {
			writeWarning(&b, j)
		}
		for _, c := range j.Cleanups {
			fmt.Fprintf(&b, "cleanup: %s\n", textsafe.Line(c))
		}
		for _, h := range j.Hooks {
			if h.OK() {
				continue
			}
			switch {
			case h.TimedOut:
				fmt.Fprintf(&b, "hook %s: still running after %s: abandoned\n", h.Name, dur(h.Elapsed))
			case h.Error != "":
				fmt.Fprintf(&b, "hook %s: %s\n", h.Name, textsafe.Line(h.Error))
			default:
				fmt.Fprintf(&b, "hook %s: exit code %d after %s\n", h.Name, h.Exit, dur(h.Elapsed))
			}
			if s := textsafe.Text(strings.TrimSpace(h.Stderr)); s != "" {
				fmt.Fprintf(&b, "  stderr: %s\n", indent(s))
			}
		}
		if t := textsafe.Text(strings.TrimSpace(r.LogTails[j.Client])); t != "" {
			fmt.Fprintf(&b, "backend log (last lines):\n  %s\n", indent(t))
		}
		if j.LogDir != "" {
			fmt.Fprintf(&b, "logs: %s\n", j.LogDir)
		}
	}
	return b.String()
}

// writeWarning details a backup with warnings: what the backend said, the
// files it could not read, and that retention did not run.
func writeWarning(b *strings.Builder, j *Job) {
	fmt.Fprintf(b, "warning: %s\n", j.Warning)
	if j.UnreadableCount > 0 {
		more := ""
		if n := j.UnreadableCount - len(j.Unreadable); n > 0 {
			more = fmt.Sprintf(" (and %d more, see the log)", n)
		}
		fmt.Fprintf(b, "not read (%d):\n  %s%s\n", j.UnreadableCount, strings.Join(j.Unreadable, "\n  "), more)
	}
	fmt.Fprintf(b, "the archive %s is incomplete; retention did not run (only an ok backup is followed by it)\n", j.Archive)
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n  ") }

// dur rounds for people: ms below 10s, s below an hour.
func dur(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
