package report

import (
	"fmt"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

// JournalEntry is one job as a journal message with structured fields
// (SB_CLIENT, SB_STATUS, …), so `journalctl SB_STATUS=failed` finds failures
// and `journalctl SB_STATUS=warning` incomplete backups (priority warning,
// SB_WARNING, SB_UNREADABLE_COUNT and the first paths in SB_UNREADABLE).
func JournalEntry(runID string, j *Job) (msg string, prio journal.Priority, fields map[string]string) {
	prio = journal.PriInfo
	msg = fmt.Sprintf("hostctl: %s: %s %s in %s", j.Name(), jobKind(j), j.Status, dur(j.Elapsed))
	switch j.Status {
	case job.StatusFailed:
		prio = journal.PriErr
		msg += ": " + textsafe.Line(j.Error)
	case job.StatusWarning:
		prio = journal.PriWarning
		msg += ": " + textsafe.Line(j.Warning)
	case StatusSkipped:
		prio = journal.PriWarning
		msg += ": " + textsafe.Line(j.Error)
	}
	fields = map[string]string{
		"SYSLOG_IDENTIFIER": "hostctl",
		"SB_RUN_ID":         runID,
		"SB_CLIENT":         j.Client,
		"SB_STATUS":         j.Status,
		"SB_DURATION_SEC":   fmt.Sprintf("%.3f", j.Elapsed.Seconds()),
		"SB_JOB":            jobKind(j),
	}
	if j.Profile != "" {
		fields["SB_PROFILE"] = j.Profile
	}
	if j.Error != "" {
		fields["SB_ERROR"] = textsafe.Line(j.Error)
	}
	if j.Archive != "" && (j.Status == job.StatusOK || j.Status == job.StatusWarning) {
		fields["SB_ARCHIVE"] = textsafe.Line(j.Archive)
	}
	if j.Status == job.StatusWarning {
		fields["SB_WARNING"] = j.Warning
		fields["SB_UNREADABLE_COUNT"] = fmt.Sprint(j.UnreadableCount)
		if len(j.Unreadable) > 0 {
			fields["SB_UNREADABLE"] = strings.Join(j.Unreadable, "\n")
		}
	}
	if j.Pause > 0 {
		fields["SB_PAUSE_SEC"] = fmt.Sprintf("%.3f", j.Pause.Seconds())
	}
	if s := j.Stats; s != nil {
		fields["SB_FILES"] = fmt.Sprint(s.Files)
		fields["SB_READ_BYTES"] = fmt.Sprint(s.OriginalSize)
		fields["SB_WRITTEN_BYTES"] = fmt.Sprint(s.CompressedSize)
		fields["SB_DEDUP_BYTES"] = fmt.Sprint(s.DedupSize)
	}
	return msg, prio, fields
}

// Journal sends one entry per job when journald is there; it reports
// whether it did (no journald: nothing sent, no error).
func Journal(r *Run) (bool, error) {
	if !journal.Enabled() {
		return false, nil
	}
	for _, j := range r.Jobs {
		msg, prio, fields := JournalEntry(r.ID, j)
		if err := journal.Send(msg, prio, fields); err != nil {
			return true, fmt.Errorf("journal: %w", err)
		}
	}
	return true, nil
}

// jobKind is what a job did: "verify", "prune", else "backup".
func jobKind(j *Job) string {
	if j.Mode == ModeVerify || j.Mode == ModePrune {
		return j.Mode
	}
	return "backup"
}
