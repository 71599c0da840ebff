package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

// errTimeLimit is the cause of the watchdog's cancellation.
var errTimeLimit = errors.New(job.TimeLimitExceeded)

// modeFunc is one job mode's part of the flow. It returns the (partial)
// done record; a mode that works on a repository opens it once
// (openRepo), after mounting what it reads or writes, so that a client's
// filesystem that cannot be found fails before the repository is touched.
type modeFunc func(s *supervisor, ctx context.Context, j *job.Job) (job.Done, error)

// modes are the job modes the appliance runs (shell is not a job: Main
// gives the console instead).
var modes = map[string]modeFunc{
	job.ModeBackup:  (*supervisor).backup,
	job.ModeRestore: (*supervisor).restore,
	job.ModeVerify:  (*supervisor).verify,
	job.ModeList:    (*supervisor).list,
	job.ModePrune:   (*supervisor).prune,
	job.ModeExec:    (*supervisor).exec,
}

// runJob runs the job's mode under the watchdog and returns the (partial)
// done record.
func (s *supervisor) runJob() (job.Done, error) {
	j := s.b.job
	limit := j.TimeLimit.Duration
	if limit <= 0 {
		limit = DefaultTimeLimit
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), limit, errTimeLimit)
	defer cancel()
	// The backstop: whatever hangs (a D-state mount, a tool ignoring
	// SIGKILL in the kernel), the machine goes off.
	hard := time.AfterFunc(limit+backstop, func() {
		s.rep.Logf("hard time limit: powering off now")
		s.finishHard()
	})
	defer hard.Stop()

	switch j.IONiceClass {
	case "", "idle", "best-effort", "realtime":
	default:
		return job.Done{}, fmt.Errorf("ionice_class %q: want idle, best-effort or realtime", j.IONiceClass)
	}
	s.runner.Nice, s.runner.IOClass = j.Nice, j.IONiceClass
	run, ok := modes[j.Mode]
	if !ok {
		return job.Done{}, fmt.Errorf("mode %q is not a job", j.Mode)
	}
	rec, err := run(s, ctx, j)
	switch {
	case err == nil:
	case errors.Is(err, errTimeLimit):
		err = fmt.Errorf("%w (limit %v)", err, limit)
	case context.Cause(ctx) == errTimeLimit:
		err = fmt.Errorf("%w (limit %v): %w", errTimeLimit, limit, err)
	}
	return rec, err
}

// finishHard writes a failed done record and powers off without unmounting.
func (s *supervisor) finishHard() {
	s.writeDone(job.Done{}, fmt.Errorf("%w: the job did not stop; forced power-off", errTimeLimit))
	s.finish(job.Done{}, nil)
	boot.PowerOff()
}

// timed runs the backend's main call f and keeps how long the tool took
// in done (BackendElapsed: the job's time without the appliance's own
// overhead, which the host reports beside ReadyAfter).
func timed(done *job.Done, f func() error) error {
	start := time.Now()
	err := f()
	done.BackendElapsed = time.Since(start)
	return err
}
