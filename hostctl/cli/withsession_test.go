package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
)

// A client name that is not configured is a usage error (2) before the
// lock: another run holding it changes nothing about that.
func TestSessionUsageErrorBeforeLock(t *testing.T) {
	h := newRunHost(t, "")
	h.withImage(t)
	h.holdLock(t)
	for _, args := range [][]string{
		{"run", "nosuch"},
		{"verify", "nosuch"},
		{"list", "nosuch"},
		{"restore", "nosuch", "--to-dir", t.TempDir()},
		{"rescue", "nosuch"},
	} {
		code, _, stderr := runMain(t, append(args, "--config", h.config)...)
		require.Equal(t, ExitUsage, code, "%v: %s", args, stderr)
		require.Contains(t, stderr, "nosuch", "%v", args)
	}
	runs, err := report.Last(h.stateDir, 10)
	require.NoError(t, err)
	require.Empty(t, runs, "a usage error is no run")
}

// Only the commands that report runs report a session that did not open:
// verify as every client's verify not started, list and cleanup not at all.
func TestSessionFailureReportedByRunCommandsOnly(t *testing.T) {
	h := newRunHost(t, "")
	h.withImage(t)
	h.holdLock(t)
	for _, args := range [][]string{{"list", "a"}, {"cleanup"}, {"restore", "a", "--to-dir", t.TempDir()}} {
		code, _, stderr := runMain(t, append(args, "--config", h.config)...)
		require.Equal(t, ExitLocked, code, "%v: %s", args, stderr)
		require.Contains(t, stderr, "another hostctl run is in progress")
	}
	runs, err := report.Last(h.stateDir, 10)
	require.NoError(t, err)
	require.Empty(t, runs)

	code, out, stderr := runMain(t, "verify", "--json", "--config", h.config)
	require.Equal(t, ExitLocked, code, stderr)
	var reps []runner.Report
	require.NoError(t, json.Unmarshal([]byte(out), &reps), out)
	require.Len(t, reps, 2)
	jobs := jobsByClient(h.saved(t))
	for _, c := range []string{"a", "b"} {
		require.Equal(t, runner.ModeVerify, jobs[c].Mode)
		require.Equal(t, runner.StatusFailed, jobs[c].Status)
		require.Contains(t, jobs[c].Error, "not started: ")
	}
}

func TestPrintResult(t *testing.T) {
	v := map[string]int{"files": 3}
	var b bytes.Buffer
	require.NoError(t, printResult(&b, true, v, func(io.Writer) error { t.Fatal("text with --json"); return nil }))
	require.Equal(t, "{\n  \"files\": 3\n}\n", b.String())

	b.Reset()
	errText := errors.New("from the text")
	err := printResult(&b, false, v, func(w io.Writer) error { io.WriteString(w, "3 files\n"); return errText })
	require.ErrorIs(t, err, errText)
	require.Equal(t, "3 files\n", b.String())
}
