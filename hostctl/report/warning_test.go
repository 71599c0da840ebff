package report

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report/smtptest"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// warnedRun has a backup that ended with warnings next to an ok one.
func warnedRun() *Run {
	t0 := time.Date(2026, 12, 1, 3, 30, 0, 0, time.UTC)
	return &Run{
		ID: "20261201T033000Z", Host: "hv1", Started: t0, Elapsed: 4 * time.Minute, ExitCode: 5,
		Jobs: []*Job{
			{Client: "web", Status: job.StatusOK, Archive: "web-20261201T033000Z", Started: t0, Elapsed: time.Minute,
				Stats: &job.Stats{Files: 1200, OriginalSize: 3 << 30, CompressedSize: 1 << 30, DedupSize: 12 << 20}},
			{Client: "db", Status: job.StatusWarning, Archive: "db-20261201T033000Z", Started: t0.Add(time.Minute), Elapsed: 2 * time.Minute,
				Warnings: job.Warnings{Warning: "borg create finished with warnings (exit status 1): 23 item(s) could not be read: data/unreadable.bin: read: [Errno 5] Input/output error",
					Unreadable: []string{"data/unreadable.bin", "var/lib/db/broken"}, UnreadableCount: 23},
				LogDir: "/var/lib/hostctl/runs/20261201T033000Z/db",
				Stats:  &job.Stats{Files: 800, OriginalSize: 1 << 30, CompressedSize: 1 << 29, DedupSize: 1 << 20}},
		},
	}
}

func TestTextWarning(t *testing.T) {
	r := warnedRun()
	testutil.Golden(t, "report-warning.txt", Text(r))
	require.Equal(t, "warning", r.Status())
	require.Equal(t, Tally{OK: 1, Warning: 1}, r.Tally())
	require.Equal(t, "[hostctl WARNING] hv1: 1 ok, 1 warning (run 20261201T033000Z)", Subject(r))
	// A failure outranks a warning, a warning a skip.
	r.Jobs = append(r.Jobs, &Job{Client: "old", Status: StatusSkipped})
	require.Equal(t, "warning", r.Status())
	r.Jobs = append(r.Jobs, &Job{Client: "x", Status: job.StatusFailed})
	require.Equal(t, "failed", r.Status())
	require.Equal(t, "[hostctl FAILED] hv1: 1 ok, 1 warning, 1 failed, 1 skipped (run 20261201T033000Z)", Subject(r))
}

func TestMetricsWarning(t *testing.T) {
	r := warnedRun()
	older := &Run{ID: "20261130T033000Z", Jobs: []*Job{
		{Client: "db", Status: job.StatusOK, Started: r.Started.Add(-24 * time.Hour), Elapsed: time.Minute},
	}}
	m := Metrics(r, []*Run{older})
	testutil.Golden(t, "metrics-warning.prom", m)
	require.Contains(t, m, "hostctl_job_success{client=\"db\"} 0\n", "a backup with warnings is no success")
	require.Contains(t, m, "hostctl_job_status{client=\"db\",status=\"warning\"} 1\n")
	require.Contains(t, m, "hostctl_job_unreadable_files{client=\"db\"} 23\n")
	// The last success of db is still the day before.
	require.Contains(t, m, "hostctl_last_success_timestamp_seconds{client=\"db\"} 1796009460\n")
}

func TestJournalEntryWarning(t *testing.T) {
	r := warnedRun()
	msg, prio, f := JournalEntry(r.ID, r.Jobs[1])
	require.Equal(t, "hostctl: db: backup warning in 2m0s: borg create finished with warnings (exit status 1): 23 item(s) could not be read: data/unreadable.bin: read: [Errno 5] Input/output error", msg)
	require.EqualValues(t, 4, prio, "journal priority warning")
	require.Equal(t, "warning", f["SB_STATUS"])
	require.Equal(t, r.Jobs[1].Warning, f["SB_WARNING"])
	require.Equal(t, "23", f["SB_UNREADABLE_COUNT"])
	require.Equal(t, "data/unreadable.bin\nvar/lib/db/broken", f["SB_UNREADABLE"])
	require.Equal(t, "db-20261201T033000Z", f["SB_ARCHIVE"], "the archive was written")
	_, prio, f = JournalEntry(r.ID, r.Jobs[0])
	require.EqualValues(t, 6, prio)
	require.NotContains(t, f, "SB_WARNING")
}

func TestMailWarning(t *testing.T) {
	s, err := smtptest.Start()
	require.NoError(t, err)
	defer s.Close()
	no := false
	cfg := config.Report{Email: config.MailFailure, To: []string{"ops@example.org"}, SMTP: config.SMTP{Host: s.Host, Port: s.Port, StartTLS: &no}}
	r := warnedRun()
	require.True(t, WantMail(cfg, r), `email = "failure" mails a run with warnings`)
	require.NoError(t, Mail(context.Background(), cfg, r))
	m := <-s.Mails
	require.Contains(t, m.Data, "Subject: [hostctl WARNING] hv1: 1 ok, 1 warning (run 20261201T033000Z)\r\n")
	require.Contains(t, m.Data, "--- db backup: warning\r\n")
	require.Contains(t, m.Data, "not read (23):\r\n  data/unreadable.bin\r\n  var/lib/db/broken (and 21 more, see the log)\r\n")
	require.True(t, strings.Contains(m.Data, "retention did not run"))
	cfg.Email = config.MailNever
	require.False(t, WantMail(cfg, r))
}
