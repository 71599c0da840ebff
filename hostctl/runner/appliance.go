package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/jobdisk"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// applianceJob is one appliance boot: the job, its secrets and what to attach.
type applianceJob struct {
	dir     string // job directory (temporary files and kept logs)
	job     *job.Job
	secrets map[string][]byte
	disks   []virt.DiskSpec // client disks (snapshots, restore destination)
	shares  []virt.ShareSpec
	// cache is the client whose cache volume is attached, the job's own
	// client; "" attaches none (the appliance then uses a tmpfs).
	cache string
	// attach, when set, connects the operator to the running appliance (the
	// rescue shell's console) and returns when the console closes; an error
	// stops the appliance.
	attach func(ctx context.Context, domain string) error
}

// bootGrace is how long the host waits past the job's time limit before it
// destroys the appliance itself: the supervisor's watchdog should have
// powered off first, with a proper failure record.
const bootGrace = 3 * time.Minute

// destroyTimeout bounds destroying an appliance that is stopped (a time
// limit, a signal, a failed console).
const destroyTimeout = time.Minute

// pollInterval is how often the host looks at the appliance domain and its
// progress stream: a tenth of the power-off time it measures (issue: ≤ 1 s),
// one cheap libvirt call each.
const pollInterval = 100 * time.Millisecond

// outcome is what came back from one appliance boot.
type outcome struct {
	result   *job.Result
	log      []byte
	vmRecord []byte        // FileVMRecord (a list job asked for it), nil when absent
	elapsed  time.Duration // domain start to gone
	// powerOff is the done record's arrival on the progress channel to
	// the domain gone (0: the record did not come that way).
	powerOff time.Duration
}

// runAppliance boots a transient appliance for aj, waits for it to power
// off and reads the result back from the job disk. Every resource it creates
// goes through rv, so the caller's undoAll removes it.
func (r *Runner) runAppliance(ctx context.Context, rv *reverter, aj applianceJob) (*outcome, error) {
	usesRepo := aj.job.Repo != nil
	if usesRepo {
		if what, ok := r.staleLock(aj.job.Client); ok {
			for _, repo := range aj.job.Destinations() {
				repo.BreakLock = true
			}
			r.logf("%s: %s was stopped while it used the repository: this job first removes the lock it may have left", aj.job.Client, what)
		}
	}
	jobImg, err := r.makeJobDisk(rv, aj)
	if err != nil {
		return nil, err
	}
	disks := []virt.DiskSpec{
		{Path: r.image.Disk, Format: "raw", Serial: job.SerialAppliance, Target: "vda", ReadOnly: true},
		{Path: jobImg, Format: "raw", Serial: job.SerialJob, Target: "vdb"},
	}
	for i, d := range aj.disks {
		d.Target = "vd" + string(rune('c'+i))
		disks = append(disks, d)
	}
	if aj.cache != "" {
		// The job's own client's cache, and no other: an appliance a
		// guest took over must not read or poison another client's.
		cache, err := r.ensureCache(ctx, aj.cache)
		if err != nil {
			return nil, err
		}
		disks = append(disks, cache)
	}
	name := fmt.Sprintf("hostctl-%s-%s-%s", aj.job.Mode, aj.job.Client, r.runID)
	progress, err := makeProgressPipe(rv, aj.dir)
	if err != nil {
		return nil, err
	}
	spec := virt.ApplianceSpec{
		Name:         name,
		Accel:        r.accel,
		MemoryMiB:    r.cfg.Host.Appliance.MemoryMiB,
		VCPUs:        r.cfg.Host.Appliance.VCPUs,
		Kernel:       r.image.Kernel,
		Initrd:       r.image.Initrd,
		Cmdline:      virt.Cmdline(job.CmdlineModeJob, true),
		Disks:        disks,
		Shares:       aj.shares,
		Network:      aj.job.Net != nil,
		ConsoleLog:   filepath.Join(aj.dir, "console.log"),
		ProgressPipe: progress,
		ProgressPort: job.VirtioPortProgress,
	}
	xml, err := virt.ApplianceXML(spec)
	if err != nil {
		return nil, err
	}
	if _, err := rv.record(ledger.Entry{Kind: ledger.KindDomain, Name: name}); err != nil {
		return nil, err
	}
	if usesRepo {
		if err := r.markLock(aj.job.Client, name); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	if err := r.virt.StartTransient(ctx, xml); err != nil {
		return nil, fmt.Errorf("start appliance %s: %w", name, err)
	}
	r.logf("%s: appliance %s started (%s)", aj.job.Client, name, r.accel)
	if aj.attach != nil {
		if err := aj.attach(ctx, name); err != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), destroyTimeout)
			defer cancel()
			_ = r.virt.Destroy(dctx, name)
			return nil, err
		}
	}
	powerOff, err := r.waitAppliance(ctx, name, progress, filepath.Join(aj.dir, "progress.jsonl"), aj.job)
	if err != nil {
		// Destroyed (a time limit, a signal): keep what the appliance had
		// written to its job disk, its result records (fsynced one by one)
		// and as much of its log as reached the disk, for the report's log
		// tail and the operator. Best effort.
		if contents, rerr := jobdisk.Read(jobImg); rerr == nil {
			keep(aj.dir, job.FileLog, contents.Log)
			keep(aj.dir, job.FileResult, contents.Result)
		}
		return nil, err
	}
	out := &outcome{elapsed: time.Since(start), powerOff: powerOff}
	contents, err := jobdisk.Read(jobImg)
	if err != nil {
		return nil, err
	}
	out.log, out.vmRecord = contents.Log, contents.VMRecord
	keep(aj.dir, job.FileLog, contents.Log)
	keep(aj.dir, job.FileResult, contents.Result)
	out.result, err = job.ParseResult(contents.Result)
	if err != nil {
		if errors.Is(err, job.ErrNoDone) {
			return out, fmt.Errorf("appliance %s: %w; console log: %s", name, err, filepath.Join(aj.dir, "console.log"))
		}
		return out, err
	}
	if usesRepo {
		r.clearLock(aj.job.Client, out.result.Done)
	}
	return out, nil
}

// makeJobDisk writes aj's job disk, with its secrets, into the job's
// directory on the run dir (a tmpfs: see config.Host.RunDir), and returns
// its path. The directory and the disk are ledger entries: the reverter
// removes them after the job, the next run after a crash.
func (r *Runner) makeJobDisk(rv *reverter, aj applianceJob) (string, error) {
	dir := filepath.Join(r.runDir(), r.runID, filepath.Base(aj.dir))
	img := filepath.Join(dir, "job.img")
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("run dir: %w", err)
	}
	if _, err := rv.record(ledger.Entry{Kind: ledger.KindDir, Path: dir}); err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("job disk directory: %w", err)
	}
	if _, err := rv.record(ledger.Entry{Kind: ledger.KindFile, Path: img}); err != nil {
		return "", err
	}
	return img, jobdisk.Create(img, aj.job, aj.secrets)
}

// runDir is where job disks live (config.Host.RunDir).
func (r *Runner) runDir() string {
	if d := r.cfg.Host.RunDir; d != "" {
		return d
	}
	return config.DefaultRunDir
}

// waitAppliance waits until the domain is gone, passing the progress it
// sends through the pipe at pipe to r.progress (and keeping a bounded copy
// in logPath), and returns the power-off time: from the done record's
// arrival through it to the domain gone (0 when it did not come that way).
// On cancellation or past the time limit it destroys the domain.
func (r *Runner) waitAppliance(ctx context.Context, name, pipe, logPath string, j *job.Job) (powerOff time.Duration, err error) {
	var doneAt time.Time
	deadline := time.Now().Add(j.TimeLimit.Duration + bootGrace)
	sink := r.progress
	sink.Begin(j.Client, j.Mode)
	show := func(rec job.Record) {
		if rec.Type == job.RecDone && doneAt.IsZero() {
			doneAt = time.Now()
		}
		sink.Record(j.Client, rec)
	}
	ch, err := openProgress(pipe, logPath)
	if err != nil {
		return 0, err
	}
	defer func() {
		ch.close()
		if s := ch.report(); s != "" {
			r.logf("%s: progress channel: %s", j.Client, s)
		}
	}()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	recs := ch.recs
	for {
		exists, err := r.virt.Exists(ctx, name)
		if err != nil && ctx.Err() == nil {
			return 0, fmt.Errorf("watch appliance %s: %w", name, err)
		}
		if !exists && err == nil {
			if !doneAt.IsZero() {
				powerOff = time.Since(doneAt)
			}
			ch.drain(pollInterval, show)
			return powerOff, nil
		}
	wait:
		for {
			select {
			case rec, ok := <-recs:
				if !ok {
					recs = nil // the result on the job disk is what counts
					continue
				}
				show(rec)
			case <-ctx.Done():
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), destroyTimeout)
				defer cancel()
				_ = r.virt.Destroy(dctx, name)
				return 0, stoppedBy(context.Cause(ctx), name)
			case <-tick.C:
				break wait
			}
		}
		if time.Now().After(deadline) {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), destroyTimeout)
			defer cancel()
			_ = r.virt.Destroy(dctx, name)
			return 0, fmt.Errorf("appliance %s did not power off within the time limit %s (+%s): destroyed", name, j.TimeLimit.Duration, bootGrace)
		}
	}
}

// keep saves a file read back from the job disk next to the job's logs.
func keep(dir, name string, data []byte) {
	if data != nil {
		_ = os.WriteFile(filepath.Join(dir, name), data, 0o600)
	}
}

// ensureCache returns client's own cache volume (Config.CacheFor), creating
// it on first use: a sparse qcow2 image, or an LV through the LVM manager.
// It lives across runs (borg's caches) and is not a ledger resource; a
// half-made image is never used (made under another name, then renamed).
func (r *Runner) ensureCache(ctx context.Context, client string) (virt.DiskSpec, error) {
	cc := r.cfg.CacheFor(client)
	spec := virt.DiskSpec{Serial: job.SerialCache, Target: "vdy", Format: "qcow2", Path: cc.Path}
	switch cc.Type {
	case "lvm":
		lm := r.lvm
		lv, err := lm.Get(ctx, cc.VG, cc.LV)
		if errors.Is(err, lvm.ErrNoLV) {
			r.logf("%s: creating its cache volume %s (%d bytes)", client, cc, cc.Size)
			lv, err = lm.Create(ctx, cc.VG, cc.LV, cc.Size)
		}
		if err != nil {
			return spec, fmt.Errorf("cache volume of %s: %w", client, err)
		}
		spec.Path, spec.Format, spec.Block = lv.Path, "raw", true
		return spec, nil
	default:
		if _, err := os.Stat(cc.Path); err == nil {
			return spec, nil
		}
		if err := os.MkdirAll(filepath.Dir(cc.Path), 0o700); err != nil {
			return spec, fmt.Errorf("cache volume of %s: %w", client, err)
		}
		r.logf("%s: creating its cache volume %s (%d bytes, sparse)", client, cc, cc.Size)
		tmp := cc.Path + ".new"
		if err := r.images.Create(ctx, tmp, cc.Size); err != nil {
			return spec, fmt.Errorf("cache volume of %s: %w", client, err)
		}
		if err := os.Rename(tmp, cc.Path); err != nil {
			return spec, fmt.Errorf("cache volume of %s: %w", client, err)
		}
		return spec, nil
	}
}
