package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// LimitError is the cause of a job or run stopped by a time limit: the
// context's cause, and the start of the report's reason.
type LimitError struct {
	Key   string // the configuration key: "time_limit" or "run_time_limit"
	Limit time.Duration
}

func (e *LimitError) Error() string {
	if e.Key == "time_limit" {
		return fmt.Sprintf("time_limit %s of the job reached", e.Limit)
	}
	return fmt.Sprintf("%s %s reached", e.Key, e.Limit)
}

// errApplianceWatchdog marks a job the appliance stopped itself because its
// watchdog (the job's time limit, see applianceLimit) fired.
var errApplianceWatchdog = errors.New("the appliance's watchdog stopped the job")

// applianceWatchdogText is in the done record's error when the supervisor's
// watchdog stopped the job (supervisor/run: errTimeLimit), after the step
// it stopped ("restic backup stopped: time limit exceeded (limit 56s)").
const applianceWatchdogText = "time limit exceeded"

// withJobLimit returns ctx bounded by the client's time_limit, enforced on
// the host: hooks are killed and the appliance destroyed when it passes.
func withJobLimit(ctx context.Context, limit time.Duration) (context.Context, time.Time, context.CancelFunc) {
	if limit <= 0 {
		return ctx, time.Time{}, func() {}
	}
	deadline := time.Now().Add(limit)
	jctx, cancel := context.WithDeadlineCause(ctx, deadline, &LimitError{Key: "time_limit", Limit: limit})
	return jctx, deadline, cancel
}

// applianceLimit is the time limit the appliance's own watchdog gets: what
// is left of the job's deadline, less a margin for booting, stopping the
// backend, writing the result and powering off. The appliance then
// normally stops itself, leaving its log and a failure record, before the
// host destroys it at the deadline.
func applianceLimit(deadline time.Time, configured time.Duration) time.Duration {
	if deadline.IsZero() {
		return configured
	}
	left := time.Until(deadline)
	return max((left - min(bootGrace, left/4)).Round(time.Second), time.Second)
}

// whyStopped puts the time limit that stopped a job in front of its error,
// unless the error already names it.
func whyStopped(ctx context.Context, jobLimit time.Duration, err error) error {
	var le *LimitError
	switch {
	case err == nil || errors.As(err, &le):
		return err
	case errors.As(context.Cause(ctx), &le):
		return fmt.Errorf("%w: %w", le, err)
	case errors.Is(err, errApplianceWatchdog):
		return fmt.Errorf("%w: %w", &LimitError{Key: "time_limit", Limit: jobLimit}, err)
	}
	return err
}

// stoppedBy is the error of an appliance destroyed because of cause; a
// time limit comes first, as the reason of the job's failure.
func stoppedBy(cause error, name string) error {
	var le *LimitError
	if errors.As(cause, &le) {
		return fmt.Errorf("%w: appliance %s destroyed", le, name)
	}
	return fmt.Errorf("appliance %s destroyed: %w", name, cause)
}

// applianceFailure is the error of a backup the appliance reports failed.
func applianceFailure(res *job.Result, log string) error {
	msg := res.LastError()
	if strings.Contains(res.Done.Error, applianceWatchdogText) {
		return fmt.Errorf("%w: %s (log: %s)", errApplianceWatchdog, msg, log)
	}
	return fmt.Errorf("backup failed in the appliance: %s (log: %s)", msg, log)
}
