package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/textsafe"
)

// jobHooks is one job's hook plan and transport, kept between the snapshot
// and the post_snapshot hook.
type jobHooks struct {
	plan hooks.Plan
	run  hooks.Runner
}

// domainFreezer freezes one domain's filesystems through virt.Hypervisor.
// The freeze is recorded in the ledger first and the thaw is its undo, so
// that the next run thaws a guest a killed hostctl left frozen.
type domainFreezer struct {
	hv     virt.Hypervisor
	rv     *reverter
	domain string
	frozen *ledger.Entry
}

func (f *domainFreezer) FSFreeze(ctx context.Context) error {
	if f.frozen == nil {
		e, err := f.rv.record(ledger.Entry{Kind: ledger.KindFreeze, Domain: f.domain})
		if err != nil {
			return err
		}
		f.frozen = e
	}
	return f.hv.FSFreeze(ctx, f.domain)
}

func (f *domainFreezer) FSThaw(ctx context.Context) error {
	if f.frozen == nil {
		return f.hv.FSThaw(ctx, f.domain)
	}
	if err := f.rv.undo(ctx, f.frozen); err != nil {
		return err
	}
	f.frozen = nil
	return nil
}

// hooksFor returns the client's hooks, or nil when it has none (and no freeze).
func (r *Runner) hooksFor(c *config.Client) *jobHooks {
	h := c.Hooks
	if !h.Any() && !h.Freeze {
		return nil
	}
	limit := h.TimeLimit.Duration
	if limit <= 0 {
		limit = config.DefaultHookTimeLimit
	}
	jh := &jobHooks{plan: hooks.Plan{
		Pre: h.PreSnapshot, On: h.OnSnapshot, Post: h.PostSnapshot,
		Timeout: limit, Freeze: h.Freeze,
		ContinueOnPreFailure: h.OnPreFailure == config.PreFailureContinue,
		Env:                  r.hookEnv(c, ""), // the plan adds SB_HOOK
	}}
	jh.run = r.hookRunner(c)
	return jh
}

// hookEnv is the environment of client c's hook name ("": without
// SB_HOOK, which hooks.Plan adds): the one place it is made, for the hooks
// run here or in the client and end_recovery in the appliance alike.
func (r *Runner) hookEnv(c *config.Client, name string) map[string]string {
	env := map[string]string{"SB_CLIENT": c.Name, "SB_RUN_ID": r.runID, "SB_DOMAIN": c.Domain}
	if name != "" {
		env["SB_HOOK"] = name
	}
	return env
}

// hookEnvOrder is the order of hookEnv's keys in a job's hook.
var hookEnvOrder = []string{"SB_HOOK", "SB_CLIENT", "SB_RUN_ID", "SB_DOMAIN"}

// hookEnvList is env as a job's hook takes it, "KEY=value": hookEnv's
// keys first, in their order, then any other sorted.
func hookEnvList(env map[string]string) []string {
	var out []string
	for _, k := range hookEnvOrder {
		if v, ok := env[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !slices.Contains(hookEnvOrder, k) {
			out = append(out, k+"="+env[k])
		}
	}
	return out
}

// hookRunner is the transport of a client's guest hooks.
func (r *Runner) hookRunner(c *config.Client) hooks.Runner {
	h := c.Hooks
	switch h.Transport {
	case config.TransportSSH:
		return &hooks.SSHRunner{Host: h.SSH.Host, User: h.SSH.User, Port: h.SSH.Port,
			IdentityFile: h.SSH.IdentityFile, KnownHosts: h.SSH.KnownHosts}
	case config.TransportLocal:
		return hooks.LocalRunner{}
	default:
		return &hooks.AgentRunner{Agent: r.virt, Domain: c.Domain}
	}
}

// snapshotWithHooks runs snapshot between the client's pre_snapshot and
// on_snapshot hooks (and inside a freeze when configured), recording the
// hooks and the pause window in rep.
func (r *Runner) snapshotWithHooks(ctx context.Context, c *config.Resolved, rv *reverter, rep *jobReport, snapshot func(context.Context) error) error {
	jh := r.hooksFor(c.Client)
	if jh == nil {
		start := time.Now()
		err := snapshot(ctx)
		rep.Pause = time.Since(start)
		return err
	}
	rep.hooks = jh
	w, err := jh.plan.Sequence(ctx, jh.run, &domainFreezer{hv: r.virt, rv: rv, domain: c.Domain}, snapshot)
	rep.Hooks, rep.Pause, rep.Frozen = w.Hooks, w.Pause, w.Frozen
	for _, h := range w.Hooks {
		r.logf("%s: hook %s: %s in %s", c.Name, h.Name, hookStatus(h), h.Elapsed.Round(time.Millisecond))
	}
	r.logf("%s: pause window %s", c.Name, w.Pause.Round(time.Millisecond))
	return err
}

// runPost runs post_snapshot with the job's outcome, once the job is over
// (cleanup included). Its failure fails the job.
func (r *Runner) runPost(ctx context.Context, c *config.Resolved, rep *jobReport, jobErr error) error {
	if rep.hooks == nil {
		return nil
	}
	outcome, msg := "ok", ""
	var warn *warningError
	switch {
	case errors.As(jobErr, &warn):
		outcome, msg = job.StatusWarning, warn.Error()
	case jobErr != nil:
		outcome, msg = "failed", jobErr.Error()
	}
	res := rep.hooks.plan.RunPost(ctx, rep.hooks.run, outcome, msg)
	if res == nil {
		return nil
	}
	rep.Hooks = append(rep.Hooks, *res)
	r.logf("%s: hook %s: %s in %s", c.Name, res.Name, hookStatus(*res), res.Elapsed.Round(time.Millisecond))
	return res.Err()
}

func hookStatus(h hooks.Result) string {
	switch {
	case h.OK():
		return "ok"
	case h.TimedOut:
		return "timed out"
	case h.Error != "":
		return "error: " + textsafe.Line(h.Error)
	default:
		return fmt.Sprintf("exit %d", h.Exit)
	}
}
