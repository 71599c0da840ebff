package hooks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Freezer freezes and thaws a guest's filesystems (the guest agent's
// fsfreeze, through virt.Hypervisor).
type Freezer interface {
	FSFreeze(ctx context.Context) error
	FSThaw(ctx context.Context) error
}

// Plan is one job's hooks and how they are run.
type Plan struct {
	Pre, On, Post string
	Timeout       time.Duration // per hook
	Freeze        bool
	// ContinueOnPreFailure takes the snapshot even when pre_snapshot failed.
	ContinueOnPreFailure bool
	// Env is given to every hook (SB_CLIENT, SB_RUN_ID, …); SB_HOOK is added.
	Env map[string]string
}

// Window is what happened around the snapshot.
type Window struct {
	Hooks  []Result      `json:"hooks,omitempty"`
	Pause  time.Duration `json:"pause_ns"`            // end of pre_snapshot → start of on_snapshot
	Frozen time.Duration `json:"frozen_ns,omitempty"` // freeze → thaw
	// SnapshotTaken says the snapshot function ran and succeeded.
	SnapshotTaken bool `json:"snapshot_taken"`
}

// ErrPreFailed marks a job stopped by its failing pre_snapshot hook.
var ErrPreFailed = errors.New("pre_snapshot failed: snapshot skipped")

// thawGrace bounds thaw and on_snapshot when the run is being cancelled:
// the guest must not stay frozen or paused because hostctl was stopped.
const thawGrace = 30 * time.Second

// Sequence runs pre_snapshot → [freeze] → snapshot → [thaw] → on_snapshot.
// on_snapshot runs whenever pre_snapshot ran (also when it or the snapshot
// failed, and when ctx is cancelled), bounded by the hook time limit; a
// freeze is always thawed.
func (p Plan) Sequence(ctx context.Context, run Runner, fr Freezer, snapshot func(context.Context) error) (Window, error) {
	var w Window
	var errs []error
	preFailed := false
	if p.Pre != "" {
		r := run.Run(ctx, p.hook(PreSnapshot, p.Pre, nil))
		w.Hooks = append(w.Hooks, r)
		if err := r.Err(); err != nil && !p.ContinueOnPreFailure {
			errs = append(errs, fmt.Errorf("%w: %w", ErrPreFailed, err))
			preFailed = true
		}
	}
	pauseStart := time.Now()
	switch {
	case preFailed:
	case ctx.Err() != nil:
		errs = append(errs, ctx.Err())
	default:
		var serrs []error
		w.Frozen, w.SnapshotTaken, serrs = p.snapshot(ctx, fr, snapshot)
		errs = append(errs, serrs...)
	}
	w.Pause = time.Since(pauseStart)
	if p.On != "" {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.onLimit())
		r := run.Run(hctx, p.hook(OnSnapshot, p.On, nil))
		cancel()
		w.Pause = r.Started.Sub(pauseStart)
		w.Hooks = append(w.Hooks, r)
		if err := r.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	return w, errors.Join(errs...)
}

// snapshot runs snap inside an optional freeze; the thaw runs whatever
// happened, on a context that survives cancellation.
func (p Plan) snapshot(ctx context.Context, fr Freezer, snap func(context.Context) error) (frozen time.Duration, taken bool, errs []error) {
	if p.Freeze {
		start := time.Now()
		if err := fr.FSFreeze(ctx); err != nil {
			errs = append(errs, fmt.Errorf("freeze: %w", err))
		} else {
			defer func() {
				tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), thawGrace)
				defer cancel()
				if err := fr.FSThaw(tctx); err != nil {
					errs = append(errs, fmt.Errorf("thaw: %w", err))
				}
				frozen = time.Since(start)
			}()
		}
		if len(errs) > 0 {
			// A failed freeze may have frozen some filesystems.
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), thawGrace)
			defer cancel()
			_ = fr.FSThaw(tctx)
			return 0, false, errs
		}
	}
	if err := snap(ctx); err != nil {
		return 0, false, append(errs, err)
	}
	return 0, true, errs
}

func (p Plan) onLimit() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout + thawGrace
	}
	return thawGrace
}

// RunPost runs post_snapshot with the job's outcome in SB_OUTCOME ("ok" or
// "failed") and SB_ERROR. It returns nil when no post hook is configured.
func (p Plan) RunPost(ctx context.Context, run Runner, outcome, errMsg string) *Result {
	if p.Post == "" {
		return nil
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.onLimit())
	defer cancel()
	r := run.Run(hctx, p.hook(PostSnapshot, p.Post, map[string]string{"SB_OUTCOME": outcome, "SB_ERROR": errMsg}))
	return &r
}

func (p Plan) hook(name, cmd string, extra map[string]string) Hook {
	env := map[string]string{"SB_HOOK": name}
	for k, v := range p.Env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return Hook{Name: name, Command: cmd, Env: env, Timeout: p.Timeout}
}

// StopBound is how long a job's hooks can still take once the job is
// stopped (SIGTERM, a time limit), hooks of timeout each: the running hook
// is killed (an agent hook: one more guest-exec, waited for), the guest
// thawed, and on_snapshot and post_snapshot still run.
func StopBound(timeout time.Duration) time.Duration {
	p := Plan{Timeout: timeout}
	return killWait + 2*agentRoundTrip + thawGrace + 2*p.onLimit()
}

// agentRoundTrip is the longest one guest agent command takes (libvirt's
// timeout, virt.agentTimeout).
const agentRoundTrip = 10 * time.Second
