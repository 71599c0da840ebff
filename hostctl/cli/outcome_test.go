package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config/configtest"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// warnedReport is a backup that the appliance finished with warnings.
func warnedReport() *report.Job {
	return &report.Job{Client: "web", Status: job.StatusWarning, Archive: "web-20261201T033000Z",
		Started: time.Date(2026, 12, 1, 3, 30, 0, 0, time.UTC), Elapsed: 90 * time.Second,
		Warnings: job.Warnings{Warning: "borg create finished with warnings (exit status 1): 4 item(s) could not be read: data/unreadable.bin: read: [Errno 5] Input/output error",
			Unreadable: []string{"data/unreadable.bin", "var/log/a", "var/log/b", "var/log/c"}, UnreadableCount: 4},
		Stats: &job.Stats{Files: 1000, OriginalSize: 1 << 30}}
}

func TestExitFor(t *testing.T) {
	rep := func(statuses ...string) []*report.Job {
		var rs []*report.Job
		for _, s := range statuses {
			rs = append(rs, &report.Job{Client: "c", Status: s})
		}
		return rs
	}
	for _, tc := range []struct {
		statuses []string
		code     int
	}{
		{[]string{"ok", "ok"}, ExitOK},
		{[]string{"ok", "warning"}, ExitWarning},
		{[]string{"warning", "skipped"}, ExitWarning},
		{[]string{"skipped", "ok"}, ExitPartial},
		{[]string{"warning", "failed", "skipped"}, ExitFailed},
		{[]string{"ok", "something new"}, ExitFailed}, // never ok for what it does not know
	} {
		err := exitFor(rep(tc.statuses...))
		code := ExitOK
		var ee *ExitError
		if errors.As(err, &ee) {
			code = ee.Code
		}
		require.Equal(t, tc.code, code, "%v: %v", tc.statuses, err)
	}
	err := exitFor(rep("ok", "warning"))
	require.EqualError(t, err, "1 of 2 backup(s) ended with warnings: files could not be read")
}

func TestHelpDocumentsExitWarning(t *testing.T) {
	for _, cmd := range [][]string{{"--help"}, {"run", "--help"}, {"status", "--help"}, {"verify", "--help"}} {
		code, out, _ := runMain(t, cmd...)
		require.Equal(t, 0, code)
		require.Contains(t, out, "5  a backup ended with warnings", "%v", cmd)
		require.Contains(t, out, "the most serious wins: 1, then 5, then 3", "%v", cmd)
	}
}

func TestSummaryWarning(t *testing.T) {
	var b bytes.Buffer
	printSummary(&b, []*report.Job{warnedReport(), {Client: "db", Status: job.StatusOK, Archive: "db-1"}})
	out := b.String()
	require.Regexp(t, `(?m)^web\s+warning\s+1m30s\s+1000\s+1\.0 GiB\s+0 B\s+web-20261201T033000Z: borg create finished with warnings \(exit status 1\): 4 item\(s\) could not be read: data/unreadable.bin: read: \[Errno 5\] Input/output error; not read \(4\): data/unreadable.bin, var/log/a, var/log/b, …$`, out)
	require.Regexp(t, `(?m)^db\s+ok\s+`, out)
}

// testConfig is the example configuration with its state dir in a
// temporary directory; it returns the config path and the state dir.
func testConfig(t *testing.T) (string, string) {
	t.Helper()
	path := configtest.Example(t)
	state := filepath.Join(t.TempDir(), "state")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data = regexp.MustCompile(`(?m)^state_dir = .*$`).ReplaceAll(data, []byte(`state_dir = "`+state+`"`))
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path, state
}

func TestReportRunWarning(t *testing.T) {
	path, state := testConfig(t)
	var out, errb bytes.Buffer
	g := &Globals{ConfigPath: path, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	cfg, err := g.LoadConfig()
	require.NoError(t, err)
	err = reportRun(context.Background(), g, cfg, "20261201T033000Z", time.Now(), []*report.Job{warnedReport()}, true)
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, ExitWarning, ee.Code)
	var reps []map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &reps), out.String())
	require.Equal(t, "warning", reps[0]["status"])
	require.Equal(t, []any{"data/unreadable.bin", "var/log/a", "var/log/b", "var/log/c"}, reps[0]["unreadable"])
	require.EqualValues(t, 4, reps[0]["unreadable_count"])
	require.Contains(t, reps[0]["warning"], "exit status 1")

	// The saved report, and hostctl status reading it: exit 5.
	runs, err := report.Last(state, 1)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, ExitWarning, runs[0].ExitCode)
	code, sout, _ := runMain(t, "status", "-c", path)
	require.Equal(t, ExitWarning, code, sout)
	require.Regexp(t, `(?m)^RUN\s+STATUS\s+EXIT\s+TIME\s+OK\s+WARNING\s+FAILED\s+SKIPPED$`, sout)
	require.Regexp(t, `(?m)^20261201T033000Z\s+warning\s+5\s+\S+\s+0\s+1\s+0\s+0$`, sout)
	require.Contains(t, sout, "not read (4):\n  data/unreadable.bin\n  var/log/a")
	require.Contains(t, sout, "retention did not run")

	// A failed run after it: status says 1.
	err = reportRun(context.Background(), g, cfg, "20261202T033000Z", time.Now(),
		[]*report.Job{warnedReport(), {Client: "db", Status: job.StatusFailed, Error: "backup source /srv: not found"}}, false)
	require.ErrorAs(t, err, &ee)
	require.Equal(t, ExitFailed, ee.Code)
	code, _, _ = runMain(t, "status", "-c", path)
	require.Equal(t, ExitFailed, code)
}
