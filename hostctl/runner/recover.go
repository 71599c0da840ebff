package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// RecoverOptions steer an in-place recovery (hostctl recover CLIENT).
type RecoverOptions struct {
	Archive string // "" = the latest (at or before Time, when set)
	// Time, when set (and Archive is not), selects the newest backup taken
	// at or before it.
	Time time.Time
	// MkFS creates the client's filesystems afresh (same type) instead of
	// emptying the blank system's.
	MkFS bool
	// GPGKeys are key files besides the profile's (withGPGKeys).
	GPGKeys []string
	// ShutdownTimeout is how long the client gets to shut down gracefully
	// before it is forced off (default DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// AgentTimeout bounds the wait for the restored client's guest agent
	// before post_recovery (default DefaultAgentTimeout).
	AgentTimeout time.Duration
	// DiskDir or VG, for a domain that does not exist: its disks are made
	// there (qcow2 files, or logical volumes) and it is defined from the
	// backup's VM record (Recreate).
	DiskDir, VG string
}

// Defaults of RecoverOptions.
const (
	DefaultShutdownTimeout = 2 * time.Minute
	DefaultAgentTimeout    = 5 * time.Minute
)

// Steps of an in-place recovery, in order.
const (
	StepMakeDomain   = "make the domain"
	StepPreRecovery  = "pre_recovery"
	StepShutdown     = "shut down the client"
	StepRestore      = "restore in the appliance"
	StepStart        = "start the client"
	StepWaitAgent    = "wait for the guest agent"
	StepPostRecovery = "post_recovery"
)

// RecoverPlan is what an in-place recovery will do, for --dry-run and the
// start of a real one.
type RecoverPlan struct {
	Client  string
	Domain  string
	Running bool
	Disks   []virt.ClientDisk
	Mount   string // backup.mount as configured
	Archive string // "" = latest
	Backend string
	Target  string
	MkFS    bool
	Hooks   config.Hooks
	// Recreate, for a domain that does not exist, makes it; PlanRecreate
	// fills it in (nil until then, with Missing set).
	Recreate *Recreate
	Missing  bool
	// Recorded is the backup's VM record for a dry run of an existing
	// domain (PlanRecord), RecordNote why there is none.
	Recorded   *Recorded
	RecordNote string
	opts       RecoverOptions
	restore    *job.Restore // the job's restore table
}

// DiskPaths lists the client's disks the recovery writes to.
func (p *RecoverPlan) DiskPaths() []string {
	var out []string
	for _, d := range p.Disks {
		out = append(out, d.Path)
	}
	return out
}

// Lines renders the plan as numbered steps for the operator.
func (p *RecoverPlan) Lines() []string {
	arch := p.Archive
	switch {
	case arch == "" && !p.opts.Time.IsZero():
		arch = "the newest at or before " + p.opts.Time.UTC().Format(time.RFC3339)
	case arch == "":
		arch = "the latest (chosen by the backend in the appliance)"
	}
	state := "shut off"
	switch {
	case p.Running:
		state = "running"
	case p.Missing:
		state = "to be made"
	}
	var disks []string
	for _, d := range p.Disks {
		disks = append(disks, fmt.Sprintf("%s=%s (%s)", d.Target, d.Path, d.Format))
	}
	fs := "empty the existing filesystems (everything but lost+found)"
	if p.MkFS {
		fs = "create the filesystems afresh (the recorded type, UUID and label; --mkfs)"
	}
	hook := func(name, cmd string) string {
		if cmd == "" {
			return name + ": none configured"
		}
		return fmt.Sprintf("%s: %q", name, cmd)
	}
	out := []string{
		fmt.Sprintf("in-place recovery of client %s (domain %s, %s)", p.Client, p.Domain, state),
		fmt.Sprintf("disks: %s", strings.Join(disks, ", ")),
		fmt.Sprintf("backup: %s repository %s, archive %s", p.Backend, p.Target, arch),
	}
	switch {
	case p.Recreate != nil:
		out = append(out, p.Recreate.lines()...)
	case p.Recorded != nil:
		out = append(out, recordLines(p.Recorded)...)
	case p.RecordNote != "":
		out = append(out, p.RecordNote)
	}
	steps := []string{}
	switch {
	case p.Missing:
		steps = append(steps, "make the new disks and define the domain (a failed recovery removes them again)")
	case p.Running:
		steps = append(steps, hook("run "+hooks.PreRecovery+" in the client", p.Hooks.PreRecovery),
			fmt.Sprintf("shut the client down (forced off after %s)", p.opts.ShutdownTimeout))
	default:
		steps = append(steps, "the client is shut off: pre_recovery and the shutdown are skipped")
	}
	steps = append(steps,
		"boot the appliance with the client's disks attached writable",
		fmt.Sprintf("mount the client's filesystems where the backup's VM record says they were (disk, partition or LV, and type; a backup without a record: as backup.mount = %q says), stopping before any change if one is missing; a blank disk (nothing on it) gets the recorded partition table, guest LVM, filesystems and swap; %s", p.Mount, fs),
		"restore the archive into them with "+p.Backend,
		"give the filesystems the UUIDs and labels the restored /etc/fstab names",
		hook("run "+hooks.EndRecovery+" chrooted into the restored tree", p.Hooks.EndRecovery),
		"unmount, power the appliance off, detach the disks",
		"start the client",
		hook(fmt.Sprintf("wait for its guest agent (at most %s), run %s in it", p.opts.AgentTimeout, hooks.PostRecovery), p.Hooks.PostRecovery),
	)
	for i, s := range steps {
		out = append(out, fmt.Sprintf("  %d. %s", i+1, s))
	}
	return out
}

// StepError is a failed recovery step with what the operator can do next.
type StepError struct {
	Step string
	Err  error
	// Hint says in what state the client is and how to continue.
	Hint string
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %q failed: %v. %s", e.Step, e.Err, e.Hint)
}

func (e *StepError) Unwrap() error { return e.Err }

// PlanRecovery checks that client c can be recovered in place and returns
// the plan. It changes nothing.
func (r *Runner) PlanRecovery(ctx context.Context, c *config.Resolved, o RecoverOptions) (*RecoverPlan, error) {
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.AgentTimeout <= 0 {
		o.AgentTimeout = DefaultAgentTimeout
	}
	if c.Type != config.TypeLVMLibvirt && c.Type != "" {
		return nil, fmt.Errorf("client %s is of type %s: only lvm_libvirt clients (a VM) are recovered in place; use hostctl restore %s --to-dir DIR", c.Name, c.Type, c.Name)
	}
	p := &RecoverPlan{Client: c.Name, Domain: c.Domain, Mount: config.MountDesc(c.Tree), Archive: o.Archive, Backend: c.Profile.Backend,
		Target: c.Target.String(), MkFS: o.MkFS, Hooks: c.Hooks, opts: o}
	if p.Mount == "" {
		p.Mount = "auto"
	}
	p.restore = &job.Restore{Archive: o.Archive, Time: o.Time, To: job.RestoreToClient, MkFS: o.MkFS, Tree: c.Tree}
	if c.Hooks.EndRecovery != "" {
		p.restore.EndRecovery = &job.Hook{Command: c.Hooks.EndRecovery, TimeLimit: c.Hooks.TimeLimit,
			Env: hookEnvList(r.hookEnv(c.Client, hooks.EndRecovery))}
	}
	_, running, err := r.virt.DomainXML(ctx, c.Domain)
	switch {
	case errors.Is(err, virt.ErrNoDomain):
		if err := missingDomain(c, o, err); err != nil {
			return nil, err
		}
		p.Missing = true
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("client %s: %w", c.Name, err)
	case o.DiskDir != "" || o.VG != "":
		return nil, fmt.Errorf("client %s: domain %s exists: --disk-dir and --vg only make a domain that does not (its disks are recovered in place without them)", c.Name, c.Domain)
	}
	// The persistent definition is what boots after the restore, and its
	// disks are the ones to restore into.
	x, err := r.virt.InactiveXML(ctx, c.Domain)
	if err != nil {
		return nil, fmt.Errorf("client %s: domain %s must be defined (persistent) to be started again after the restore: %w", c.Name, c.Domain, err)
	}
	disks, err := virt.ClientDisks(x)
	if err != nil {
		return nil, err
	}
	if len(disks) == 0 {
		return nil, fmt.Errorf("domain %s has no disk to restore into", c.Domain)
	}
	for _, d := range disks {
		if d.ReadOnly {
			return nil, fmt.Errorf("domain %s disk %s is read-only in the domain: a recovery writes to it", c.Domain, d.Target)
		}
	}
	p.Running, p.Disks = running, disks
	return p, nil
}

// Recover runs an in-place recovery of client c: pre_recovery in the
// blank VM, shutdown, restore through the appliance with the client's
// disks, start, post_recovery. A failure leaves the client shut off with
// its disks detached (the appliance gone), except that a failing
// pre_recovery leaves it as it was, since nothing was changed yet; the
// error is a *StepError saying how to continue.
func (r *Runner) Recover(ctx context.Context, c *config.Resolved, o RecoverOptions) *report.Job {
	rep := newJobReport(c.Name, "recover", r.jobDir(c.Name))
	p, err := r.PlanRecovery(ctx, c, o)
	if err == nil && p.Missing {
		err = r.PlanRecreate(ctx, c, p)
	}
	if err != nil {
		return rep.finish(&StepError{Step: "check", Err: err, Hint: "Nothing was changed."})
	}
	return rep.finish(r.recover(ctx, c, p, rep))
}

// RecoverPlanned runs the recovery that plan p (PlanRecovery, and
// PlanRecreate for a domain to be made) describes.
// An existing domain is planned again: it may have been started or shut
// down while the operator read the plan.
func (r *Runner) RecoverPlanned(ctx context.Context, c *config.Resolved, p *RecoverPlan) *report.Job {
	rep := newJobReport(c.Name, "recover", r.jobDir(c.Name))
	if !p.Missing {
		fresh, err := r.PlanRecovery(ctx, c, p.opts)
		if err != nil {
			return rep.finish(&StepError{Step: "check", Err: err, Hint: "Nothing was changed."})
		}
		p = fresh
	}
	return rep.finish(r.recover(ctx, c, p, rep))
}

func (r *Runner) recover(ctx context.Context, c *config.Resolved, p *RecoverPlan, rep *jobReport) error {
	if err := r.leftovers.Blocks(c.Name); err != nil {
		return &StepError{Step: "check", Err: err, Hint: "Nothing was changed."}
	}
	if p.Missing && p.Recreate == nil {
		return &StepError{Step: "check", Err: errors.New("the plan to make the domain is missing (PlanRecreate)"), Hint: "Nothing was changed."}
	}
	o := p.opts
	dir := r.jobDir(c.Name)
	for _, l := range p.Lines() {
		r.logf("%s", l)
	}
	hrun := r.hookRunner(c.Client)
	runHook := func(name, cmd string, extra map[string]string) error {
		h := hooks.Hook{Name: name, Command: cmd, Timeout: c.Hooks.TimeLimit.Duration, Env: r.hookEnv(c.Client, name)}
		if h.Timeout <= 0 {
			h.Timeout = config.DefaultHookTimeLimit
		}
		for k, v := range extra {
			h.Env[k] = v
		}
		res := hrun.Run(ctx, h)
		rep.Hooks = append(rep.Hooks, res)
		r.logf("%s: hook %s: %s in %s", c.Name, name, hookStatus(res), res.Elapsed.Round(time.Millisecond))
		return res.Err()
	}
	logs := fmt.Sprintf("Logs: %s.", dir)
	offHint := fmt.Sprintf("The client is shut off and its disks are detached (no appliance is left). %s", logs)

	// 0. make the domain, 1. pre_recovery in the blank VM, 2. shut it down.
	undoMade := func() {}
	if p.Recreate != nil {
		r.logf("%s: %s…", c.Name, StepMakeDomain)
		undo, err := r.makeDomain(ctx, c.Domain, p.Recreate)
		if err != nil {
			return &StepError{Step: StepMakeDomain, Err: err, Hint: "Nothing was left: what was made is removed again. " + logs}
		}
		undoMade = undo
	}
	if p.Running {
		if c.Hooks.PreRecovery != "" {
			r.logf("%s: %s…", c.Name, StepPreRecovery)
			if err := runHook(hooks.PreRecovery, c.Hooks.PreRecovery, nil); err != nil {
				return &StepError{Step: StepPreRecovery, Err: err, Hint: fmt.Sprintf(
					"Nothing was changed: the client %s is still running. Fix the hook (or the VM) and rerun.", c.Domain)}
			}
		}
		r.logf("%s: %s…", c.Name, StepShutdown)
		if err := r.shutdown(ctx, c.Domain, o.ShutdownTimeout); err != nil {
			r.forceOff(ctx, c.Domain)
			return &StepError{Step: StepShutdown, Err: err, Hint: fmt.Sprintf(
				"Nothing was restored; check that domain %s is shut off (virsh domstate %s) and rerun. %s", c.Domain, c.Domain, logs)}
		}
	} else {
		r.logf("%s: domain %s is shut off: no pre_recovery, no shutdown", c.Name, c.Domain)
	}

	// 3. the appliance restores into the client's disks.
	r.logf("%s: %s…", c.Name, StepRestore)
	touched := true // unless the appliance's steps say otherwise
	if err := r.recoverDisks(ctx, c, p, rep, &touched); err != nil {
		r.forceOff(ctx, c.Domain)
		next := fmt.Sprintf("To continue: fix the cause and rerun `hostctl recover %s`", c.Name)
		if !o.MkFS {
			next += " (with --mkfs when the client's filesystems are missing or damaged)"
		}
		if p.Recreate != nil {
			undoMade()
			return &StepError{Step: StepRestore, Err: err, Hint: fmt.Sprintf(
				"The domain %s and the disks this recovery made are removed again. To continue: fix the cause and rerun `hostctl recover %s` with the same options. %s", c.Domain, c.Name, logs)}
		}
		if touched {
			next += fmt.Sprintf(", or look at its disks with `hostctl rescue %s`; its filesystems may hold a partial restore.", c.Name)
		} else {
			next += fmt.Sprintf(", or look at its disks with `hostctl rescue %s`; the appliance stopped before it changed a filesystem.", c.Name)
		}
		return &StepError{Step: StepRestore, Err: err, Hint: offHint + " " + next}
	}

	// 4. start it, 5. post_recovery once its agent answers.
	r.logf("%s: %s…", c.Name, StepStart)
	if err := r.virt.Start(ctx, c.Domain); err != nil {
		return &StepError{Step: StepStart, Err: err, Hint: fmt.Sprintf(
			"The disks hold the restored system and are detached; start the domain by hand (virsh start %s). %s", c.Domain, logs)}
	}
	if c.Hooks.PostRecovery == "" {
		return nil
	}
	extra := map[string]string{"SB_ARCHIVE": rep.Archive}
	if c.Hooks.Transport == config.TransportAgent || c.Hooks.Transport == "" {
		r.logf("%s: %s…", c.Name, StepWaitAgent)
		if err := r.waitAgent(ctx, c.Domain, o.AgentTimeout); err != nil {
			return &StepError{Step: StepWaitAgent, Err: err, Hint: fmt.Sprintf(
				"The client is restored and was started, but post_recovery did not run: look at its console (virsh console %s) and run the hook by hand. %s", c.Domain, logs)}
		}
	}
	r.logf("%s: %s…", c.Name, StepPostRecovery)
	if err := runHook(hooks.PostRecovery, c.Hooks.PostRecovery, extra); err != nil {
		return &StepError{Step: StepPostRecovery, Err: err, Hint: fmt.Sprintf(
			"The client is restored and running; finish what the hook does by hand. %s", logs)}
	}
	return nil
}

// recoverDisks boots the appliance with the client's own disks (writable)
// and removes it, whatever happened. touched is set false when the
// appliance's result shows it stopped before a step that changes a
// filesystem.
func (r *Runner) recoverDisks(ctx context.Context, c *config.Resolved, p *RecoverPlan, rep *jobReport, touched *bool) error {
	return r.reverted(ctx, jobScope{client: c.Name, logDir: rep.LogDir}, &rep.Cleanups, func(rv *reverter) error {
		// The domain is off: its disks are its own files or LVs, attached
		// writable, with no snapshot or overlay in between.
		aj, res, err := r.runFromArchive(ctx, rv, rep, c, restoreTable(p.restore), withGPGKeys(c, p.opts.GPGKeys), withDisks(p.Disks))
		if err != nil {
			return err
		}
		*touched = changedFilesystems(res)
		if h := endRecoveryResult(res, p.Hooks.EndRecovery); h != nil {
			rep.Hooks = append(rep.Hooks, *h)
			r.logf("%s: hook %s: %s in %s", c.Name, h.Name, hookStatus(*h), h.Elapsed.Round(time.Millisecond))
		}
		if !rep.accept(res) {
			return fmt.Errorf("%s (appliance log: %s)", res.LastError(), aj.logPath())
		}
		return nil
	})
}

// changedFilesystems says whether a recovery appliance started a step that
// writes to the client's filesystems.
func changedFilesystems(res *job.Result) bool {
	for _, st := range res.Steps() {
		switch st.Name {
		case "lay out blank disks", "create filesystems", "mount client filesystems", "empty client filesystems", "restore":
			return true
		}
	}
	return false
}

// endRecoveryResult turns the appliance's end_recovery step records into
// a hook result for the report; nil when it did not run.
func endRecoveryResult(res *job.Result, cmd string) *hooks.Result {
	var h *hooks.Result
	for _, rec := range res.Records {
		st := rec.Step
		if st == nil || st.Name != hooks.EndRecovery {
			continue
		}
		if st.Elapsed == 0 {
			h = &hooks.Result{Name: hooks.EndRecovery, Command: cmd, Started: rec.Time, Exit: -1, Error: "did not finish"}
			continue
		}
		if h == nil {
			h = &hooks.Result{Name: hooks.EndRecovery, Command: cmd, Started: rec.Time.Add(-st.Elapsed)}
		}
		h.Elapsed, h.Exit, h.Error = st.Elapsed, 0, ""
		if st.Error != "" {
			h.Exit, h.Error = -1, st.Error
		}
	}
	return h
}

// shutdown asks the domain to shut down and waits until it is off; past
// limit it is forced off.
func (r *Runner) shutdown(ctx context.Context, domain string, limit time.Duration) error {
	if err := r.virt.Shutdown(ctx, domain); err != nil {
		// It may have gone off by itself between the hook and the
		// request (seen: libvirt's "domain is not running").
		if _, running, xerr := r.virt.DomainXML(ctx, domain); xerr == nil && !running {
			r.logf("%s is off already", domain)
			return nil
		}
		r.logf("graceful shutdown of %s refused (%v): forcing it off", domain, err)
		return r.virt.Destroy(ctx, domain)
	}
	deadline := time.Now().Add(limit)
	for {
		_, running, err := r.virt.DomainXML(ctx, domain)
		if err != nil {
			return err
		}
		if !running {
			return nil
		}
		if time.Now().After(deadline) {
			r.logf("%s did not shut down within %s: forcing it off", domain, limit)
			return r.virt.Destroy(ctx, domain)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// forceOff makes sure the client is off after a failed step (on a context
// that survives the cancellation that may have caused the failure).
func (r *Runner) forceOff(ctx context.Context, domain string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := r.virt.Destroy(dctx, domain); err != nil {
		r.logf("could not force %s off: %v", domain, err)
	}
}

// waitAgent waits until the domain's guest agent answers a ping.
func (r *Runner) waitAgent(ctx context.Context, domain string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		if _, last = r.virt.QemuAgentCommand(ctx, domain, `{"execute":"guest-ping"}`); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the guest agent of %s did not answer within %s: %w", domain, limit, last)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(agentPoll):
		}
	}
}

// agentPoll is how often waitAgent pings.
const agentPoll = time.Second
