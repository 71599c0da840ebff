package runner

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// A job whose appliance was stopped (destroyed at a limit, or its hostctl
// killed) may have left the backend's lock in the repository: the next
// job of the client breaks it first, and only the next one. A job that
// ended by itself leaves no mark; one whose backend the supervisor killed
// at the time limit does.
func TestStoppedApplianceBreaksLockNextTime(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	var sawBreak []bool
	powerOff := func(done job.Done) func(string) error {
		return func(x string) error {
			sawBreak = append(sawBreak, readJob(t, applianceDisk(t, x)).Repo.BreakLock)
			require.NoError(t, writeResult(applianceDisk(t, x), okStats, done.Record()))
			delete(j.hv.live, x[strings.Index(x, "<name>")+6:strings.Index(x, "</name>")])
			return nil
		}
	}
	backup := func(ctx context.Context, want string) {
		t.Helper()
		rep := j.r.Backup(ctx, j.c)
		require.Equal(t, want, rep.Status, rep.Error)
		j.requireNothingLeft(t)
	}

	j.hv.onStart = powerOff(job.Done{Status: job.StatusOK})
	backup(context.Background(), job.StatusOK)
	_, marked := j.r.staleLock(j.c.Name)
	require.False(t, marked, "a job that ended by itself")

	// Destroyed by the host (here: the run's time limit).
	j.hv.onStart = func(x string) error {
		sawBreak = append(sawBreak, readJob(t, applianceDisk(t, x)).Repo.BreakLock)
		return nil // runs until destroyed
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), 2*time.Second, &LimitError{Key: "run_time_limit", Limit: 2 * time.Second})
	backup(ctx, job.StatusFailed)
	cancel()
	what, marked := j.r.staleLock(j.c.Name)
	require.True(t, marked)
	require.Equal(t, "appliance hostctl-backup-web-20261125T000000Z", what)

	// The next job breaks the lock and, ending by itself, clears the mark.
	j.hv.onStart = powerOff(job.Done{Status: job.StatusOK})
	backup(context.Background(), job.StatusOK)
	j.hv.onStart = powerOff(job.Done{Status: job.StatusFailed, Error: "borg create: exit status 2: repository does not exist"})
	backup(context.Background(), job.StatusFailed)

	// The supervisor killed the backend at the job's time limit: its lock
	// may be there, the mark stays.
	j.hv.onStart = powerOff(job.Done{Status: job.StatusFailed, Error: job.TimeLimitExceeded + " (limit 1h0m0s): borg create: signal: killed"})
	backup(context.Background(), job.StatusFailed)
	_, marked = j.r.staleLock(j.c.Name)
	require.True(t, marked)
	j.hv.onStart = powerOff(job.Done{Status: job.StatusOK})
	backup(context.Background(), job.StatusOK)
	_, marked = j.r.staleLock(j.c.Name)
	require.False(t, marked)

	require.Equal(t, []bool{false, false, true, false, false, true}, sawBreak)
	entries, err := os.ReadDir(j.r.lockMark(""))
	if err == nil {
		require.Empty(t, entries)
	}
}
