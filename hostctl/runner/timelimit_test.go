package runner

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestApplianceLimit(t *testing.T) {
	require.Equal(t, 6*time.Hour, applianceLimit(time.Time{}, 6*time.Hour), "no deadline: as configured")
	got := applianceLimit(time.Now().Add(time.Hour), 6*time.Hour)
	require.InDelta(t, float64(57*time.Minute), float64(got), float64(time.Second), "a long job: 3m margin")
	got = applianceLimit(time.Now().Add(40*time.Second), 6*time.Hour)
	require.InDelta(t, float64(30*time.Second), float64(got), float64(time.Second), "a short one: a quarter")
	require.Equal(t, time.Second, applianceLimit(time.Now().Add(-time.Minute), time.Hour), "past: at least 1s")
}

func TestWhyStopped(t *testing.T) {
	boom := errors.New("appliance destroyed: boom")
	require.NoError(t, whyStopped(context.Background(), time.Minute, nil))
	require.Equal(t, boom, whyStopped(context.Background(), time.Minute, boom), "no limit: as is")

	jctx, _, cancel := withJobLimit(context.Background(), time.Nanosecond)
	defer cancel()
	<-jctx.Done()
	err := whyStopped(jctx, time.Nanosecond, boom)
	require.EqualError(t, err, "time_limit 1ns of the job reached: appliance destroyed: boom")
	var le *LimitError
	require.ErrorAs(t, err, &le)
	require.Equal(t, "time_limit", le.Key)

	run, cancelRun := context.WithTimeoutCause(context.Background(), time.Nanosecond, &LimitError{Key: "run_time_limit", Limit: 2 * time.Minute})
	defer cancelRun()
	<-run.Done()
	jctx, _, cancel = withJobLimit(run, time.Hour)
	defer cancel()
	require.EqualError(t, whyStopped(jctx, time.Hour, boom), "run_time_limit 2m0s reached: appliance destroyed: boom", "the run's limit fired")
	already := &LimitError{Key: "run_time_limit", Limit: time.Minute}
	require.Equal(t, error(already), whyStopped(jctx, time.Hour, already), "not named twice")

	require.EqualError(t, whyStopped(jctx, time.Hour, stoppedBy(context.Cause(jctx), "hostctl-backup-web-1")),
		"run_time_limit 2m0s reached: appliance hostctl-backup-web-1 destroyed", "the limit first, once")
	require.EqualError(t, stoppedBy(context.Canceled, "hostctl-backup-web-1"), "appliance hostctl-backup-web-1 destroyed: context canceled")

	// The appliance's watchdog fired before the host's deadline.
	res := &job.Result{Done: job.Done{Status: job.StatusFailed, Error: "restic backup stopped: time limit exceeded (limit 45s)"}}
	err = whyStopped(context.Background(), time.Minute, applianceFailure(res, "/x/job.log"))
	require.EqualError(t, err, "time_limit 1m0s of the job reached: the appliance's watchdog stopped the job: restic backup stopped: time limit exceeded (limit 45s) (log: /x/job.log)")
	res.Done.Error = "borg: repository locked"
	require.EqualError(t, whyStopped(context.Background(), time.Minute, applianceFailure(res, "/x/job.log")),
		"backup failed in the appliance: borg: repository locked (log: /x/job.log)")
}

// TestTimeLimitsDestroyAppliance: an appliance that runs past the job's
// time_limit, or past the run's limit, is destroyed by the host, the report
// names the limit, and everything is removed.
func TestTimeLimitsDestroyAppliance(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		job        time.Duration
		run        time.Duration
	}{
		// Limits long enough for the overlays and the job disk on a loaded
		// machine: the appliance must be running when they pass.
		{name: "job", job: 3 * time.Second, want: `^time_limit 3s of the job reached: appliance hostctl-backup-web-20261125T000000Z destroyed$`},
		{name: "run", job: time.Hour, run: 3 * time.Second, want: `^run_time_limit 3s reached: appliance hostctl-backup-web-20261125T000000Z destroyed$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newLVMJob(t, lvDisk)
			_, err := j.r.ensureCache(context.Background(), j.c.Name) // made once, before the clock runs
			require.NoError(t, err)
			j.c.TimeLimit = job.Duration{Duration: tc.job}
			j.hv.onStart = func(string) error { return nil } // runs until destroyed
			ctx := context.Background()
			if tc.run > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeoutCause(ctx, tc.run, &LimitError{Key: "run_time_limit", Limit: tc.run})
				defer cancel()
			}
			rep := j.r.Backup(ctx, j.c)
			require.Equal(t, StatusFailed, rep.Status)
			require.Regexp(t, tc.want, rep.Error)
			require.Contains(t, j.hv.calls, "destroy hostctl-backup-web-20261125T000000Z")
			j.requireNothingLeft(t)
		})
	}
}
