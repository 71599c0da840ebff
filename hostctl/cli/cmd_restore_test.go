package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config/configtest"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestParseTimeArg(t *testing.T) {
	utc, err := parseTimeArg("--time", "2026-11-20T03:30:00Z")
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 11, 20, 3, 30, 0, 0, time.UTC), utc)
	zoned, err := parseTimeArg("--time", "2026-11-20T04:30:00+01:00")
	require.NoError(t, err)
	assert.True(t, zoned.Equal(utc))
	for _, s := range []string{"2026-11-20 03:30", "2026-11-20 03:30:00", "2026-11-20T03:30"} {
		local, err := parseTimeArg("--time", s)
		require.NoError(t, err, s)
		assert.Equal(t, time.Date(2026, 11, 20, 3, 30, 0, 0, time.Local), local, s)
	}
	for _, s := range []string{"yesterday", "20.11.2026", "2026-11-20"} {
		_, err := parseTimeArg("--time", s)
		require.Error(t, err, s)
		assert.Contains(t, err.Error(), "--time")
	}
	zero, err := parseTimeArg("--time", "")
	require.NoError(t, err)
	assert.True(t, zero.IsZero())
}

// TestRestoreUsage: bad destinations, paths and selectors are usage errors
// (exit 2) before anything boots.
func TestRestoreUsage(t *testing.T) {
	cfg := configtest.Example(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "disk.img")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"web", "--path", "etc"}, "need a destination (--to-dir or --to-disk)"},
		{[]string{"web", "--time", "2026-11-20 03:30"}, "use: hostctl recover web"},
		{[]string{"web", "--to-dir", "x", "--mkfs"}, "--mkfs is for the in-place recovery"},
		{[]string{"web", "--to-dir", dir, "--to-disk", file}, "give one destination"},
		{[]string{"web", "--to", dir, "--to-dir", dir}, "give one destination"},
		{[]string{"web", "--to-dir", file}, "not a directory"},
		{[]string{"web", "--to-disk", dir}, "not a disk image file"},
		{[]string{"web", "--to-dir", dir, "--path", "../etc"}, "must not contain .."},
		{[]string{"web", "--to-dir", dir, "--path", "/"}, "whole tree"},
		{[]string{"web", "--to-dir", dir, "--time", "soon"}, `--time "soon"`},
		{[]string{"web", "--to-dir", dir, "--time", "2026-11-20 03:30", "--archive", "x"}, "give one"},
	} {
		code, _, stderr := runMain(t, append([]string{"restore", "--config", cfg}, tc.args...)...)
		assert.Equal(t, ExitUsage, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.want, "%v", tc.args)
	}
}

// TestRecoverUsage: the in-place recovery's selectors and timeouts are
// checked before anything boots (or asks).
func TestRecoverUsage(t *testing.T) {
	cfg := configtest.Example(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"web", "--time", "soon"}, `--time "soon"`},
		{[]string{"web", "--time", "2026-11-20 03:30", "--archive", "x"}, "give one"},
		{[]string{"web", "--shutdown-timeout", "0s", "--yes"}, "must be > 0"},
		{[]string{"nosuch", "--yes"}, `unknown client "nosuch"`},
		{[]string{"web", "--to-dir", "/tmp"}, "unknown flag: --to-dir"},
	} {
		code, _, stderr := runMain(t, append([]string{"recover", "--config", cfg}, tc.args...)...)
		assert.Equal(t, ExitUsage, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.want, "%v", tc.args)
	}
}

func TestVerifyUsage(t *testing.T) {
	cfg := configtest.Example(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"web", "--sample", "-1"}, "--sample -1"},
		{[]string{"--archive", "a1"}, "name exactly one CLIENT"},
		{[]string{"web", "--path", "a/../../b"}, "must not contain .."},
		{[]string{"nosuch"}, "nosuch"},
	} {
		code, _, stderr := runMain(t, append([]string{"verify", "--config", cfg}, tc.args...)...)
		assert.Equal(t, ExitUsage, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.want, "%v", tc.args)
	}
}

// A restore or recovery that ended with warnings exits 5 with what the
// tool could not restore, never 0; a failed one is a plain failure.
func TestRestoreOutcomeExitCodes(t *testing.T) {
	require.NoError(t, restoreOutcome("restore of web", &report.Job{Status: job.StatusOK}))
	err := restoreOutcome("restore of web", &report.Job{Status: job.StatusWarning, Warnings: job.Warnings{Warning: "borg extract finished with warnings (exit status 1): dev/zero: attrs: Operation not permitted"}})
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, ExitWarning, ee.Code)
	require.ErrorContains(t, err, "restore of web ended with warnings, not everything is restored: borg extract finished with warnings")
	err = restoreOutcome("in-place recovery of web", &report.Job{Status: job.StatusFailed, Error: "restore failed in the appliance: x"})
	require.EqualError(t, err, "in-place recovery of web: restore failed in the appliance: x")
	require.False(t, errors.As(err, &ee), "a failure exits 1")
}
