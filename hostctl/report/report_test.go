package report

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report/smtptest"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func sampleRun() *Run {
	t0 := time.Date(2026, 11, 25, 3, 30, 0, 0, time.UTC)
	return &Run{
		ID: "20261125T033000Z", Host: "hv1", Started: t0, Elapsed: 3*time.Minute + 12*time.Second, ExitCode: 1,
		Jobs: []*Job{
			{Client: "web", Status: job.StatusOK, Archive: "web-20261125T033000Z", Mode: "live-snapshot",
				Started: t0, Elapsed: 95 * time.Second, Pause: 1234 * time.Millisecond,
				Stats:    &job.Stats{Files: 1200, OriginalSize: 3 << 30, CompressedSize: 1 << 30, DedupSize: 12 << 20},
				VMRecord: "2 disk(s), 2 filesystem(s): / ext4 on vda1, /srv/data xfs on vdb; the domain's definition"},
			{Client: "db", Status: job.StatusFailed, Started: t0.Add(95 * time.Second), Elapsed: 4 * time.Second,
				Error:  "pre_snapshot failed: snapshot skipped: hook pre_snapshot: exit code 3: cannot lock",
				LogDir: "/var/lib/hostctl/runs/20261125T033000Z/db",
				Hooks: []hooks.Result{{Name: hooks.PreSnapshot, Exit: 3, Stderr: "cannot lock\n", Elapsed: 200 * time.Millisecond},
					{Name: hooks.OnSnapshot, Elapsed: 100 * time.Millisecond}}},
			{Client: "old", Status: StatusSkipped, Started: t0.Add(99 * time.Second), Elapsed: time.Second,
				Error: "domain old is shut off and offline_ok = false"},
			{Client: "web", Status: job.StatusFailed, Mode: ModeVerify, Started: t0.Add(100 * time.Second), Elapsed: 30 * time.Second,
				Error: "verify failed: verify of web-20261125T033000Z: 1 of 1200 item(s) differ from the backup's listing: etc/motd: content sha256 1f2e, listed 9a8b",
				Stats: &job.Stats{Files: 1200, OriginalSize: 3 << 30}},
		},
		LogTails: map[string]string{"db": "borg: Repository locked\nexit 2"},
	}
}

func TestText(t *testing.T) {
	r := sampleRun()
	testutil.Golden(t, "report.txt", Text(r))
	require.Equal(t, "[hostctl FAILED] hv1: 1 ok, 2 failed, 1 skipped (run 20261125T033000Z)", Subject(r))
}

func TestMetrics(t *testing.T) {
	r := sampleRun()
	older := &Run{ID: "20261124T033000Z", Jobs: []*Job{
		{Client: "db", Status: job.StatusOK, Started: r.Started.Add(-24 * time.Hour), Elapsed: time.Minute},
	}}
	testutil.Golden(t, "metrics.prom", Metrics(r, []*Run{older}))
}

func TestJournalEntry(t *testing.T) {
	r := sampleRun()
	msg, prio, f := JournalEntry(r.ID, r.Jobs[0])
	require.Equal(t, "hostctl: web: backup ok in 1m35s", msg)
	require.EqualValues(t, 6, prio)
	require.Equal(t, map[string]string{"SYSLOG_IDENTIFIER": "hostctl", "SB_RUN_ID": r.ID, "SB_CLIENT": "web", "SB_STATUS": "ok",
		"SB_DURATION_SEC": "95.000", "SB_ARCHIVE": "web-20261125T033000Z", "SB_PAUSE_SEC": "1.234",
		"SB_FILES": "1200", "SB_READ_BYTES": "3221225472", "SB_WRITTEN_BYTES": "1073741824", "SB_DEDUP_BYTES": "12582912", "SB_JOB": "backup"}, f)
	msg, prio, f = JournalEntry(r.ID, r.Jobs[1])
	require.EqualValues(t, 3, prio)
	require.True(t, strings.HasSuffix(msg, "cannot lock"))
	require.Equal(t, "failed", f["SB_STATUS"])
	msg, _, f = JournalEntry(r.ID, r.Jobs[3])
	require.True(t, strings.HasPrefix(msg, "hostctl: web: verify failed in 30s: verify failed: "), msg)
	require.Equal(t, "verify", f["SB_JOB"])
	// Without journald (as in CI) nothing is sent and nothing fails.
	if _, err := os.Stat("/run/systemd/journal/socket"); err != nil {
		sent, err := Journal(r)
		require.NoError(t, err)
		require.False(t, sent)
	}
}

func TestSaveAndLast(t *testing.T) {
	dir := t.TempDir()
	for i, id := range []string{"20261123T033000Z", "20261124T033000Z", "20261125T033000Z"} {
		r := sampleRun()
		r.ID, r.ExitCode = id, i
		_, err := Save(dir, r, 2)
		require.NoError(t, err)
	}
	runs, err := Last(dir, 10)
	require.NoError(t, err)
	require.Len(t, runs, 2, "only keep_runs reports are kept")
	require.Equal(t, "20261125T033000Z", runs[0].ID)
	require.Equal(t, 2, runs[0].ExitCode)
	require.Equal(t, 1234*time.Millisecond, runs[0].Jobs[0].Pause)
	none, err := Last(filepath.Join(dir, "nothing"), 1)
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestMailToSink(t *testing.T) {
	s, err := smtptest.Start()
	require.NoError(t, err)
	defer s.Close()
	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	no := false
	cfg := config.Report{Email: config.MailFailure, To: []string{"ops@example.org"}, From: "backup@hv1.example.org",
		SMTP: config.SMTP{Host: s.Host, Port: s.Port, StartTLS: &no, Username: "hostctl", PasswordFile: pw}}
	r := sampleRun()
	require.True(t, WantMail(cfg, r))
	require.NoError(t, Mail(context.Background(), cfg, r))
	m := <-s.Mails
	require.Equal(t, "backup@hv1.example.org", m.From)
	require.Equal(t, []string{"ops@example.org"}, m.To)
	require.Equal(t, "hostctl:s3cret", m.Auth)
	require.Contains(t, m.Data, "Subject: [hostctl FAILED] hv1: 1 ok, 2 failed, 1 skipped (run 20261125T033000Z)\r\n")
	require.Contains(t, m.Data, "reason: pre_snapshot failed")
	require.Contains(t, m.Data, "borg: Repository locked")

	ok := &Run{ID: "x", Jobs: []*Job{{Client: "web", Status: job.StatusOK}}}
	require.False(t, WantMail(cfg, ok))
	cfg.Email = config.MailAlways
	require.True(t, WantMail(cfg, ok))
	// STARTTLS is required by default: a relay without it is refused.
	cfg.SMTP.StartTLS = nil
	require.ErrorContains(t, Mail(context.Background(), cfg, r), "does not offer STARTTLS")
}
