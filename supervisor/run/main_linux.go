package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/report"
)

// Paths of the appliance layout.
const (
	Sysroot   = "/sysroot"   // overlay root in which every tool runs
	roDir     = "/run/sb/ro" // the squashfs
	rwDir     = "/run/sb/rw" // tmpfs: overlay upper and work dirs
	jobDir    = "/run/sb/job"
	consoleTT = "/dev/console"
	shellTTY  = "/dev/ttyS0"
)

// Timeouts.
const (
	applianceWait = 30 * time.Second
	// Once the appliance disk is there, virtio probing is done; the job disk
	// gets a short grace only.
	jobDiskWait = 3 * time.Second
	// DefaultTimeLimit applies when the job sets none.
	DefaultTimeLimit = 12 * time.Hour
	// backstop is how long after the time limit the machine powers off
	// regardless of what the flow is doing.
	backstop = 2*chroot.Grace + 60*time.Second
)

// supervisor is the state of one boot.
type supervisor struct {
	stack   boot.Stack
	early   int // number of early mounts, unmounted last
	rep     *report.Reporter
	reaper  *boot.Reaper
	runner  *chroot.Runner
	cmdline boot.Cmdline
	serials map[string]string // serial → vdX
	job     *job.Job
	ready   time.Duration // uptime when ready
	rootOK  bool
	jobOK   bool
}

// Main is PID 1. It never returns: every path ends in power-off.
func Main() {
	s := &supervisor{}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "supervisor: must run as PID 1 (/init) of the backup appliance")
		return
	}
	s.rep = report.New(os.Stderr, nil)
	defer func() {
		if r := recover(); r != nil {
			s.finish(job.Done{}, fmt.Errorf("supervisor panic: %v: %s", r, oneLineStack()))
		}
		boot.PowerOff()
	}()
	err := s.boot()
	if err != nil && !s.shellWanted() {
		s.finish(job.Done{}, err)
		return
	}
	if err != nil || s.shellWanted() {
		if err != nil {
			s.rep.Logf("boot problem (continuing to the shell): %v", err)
		}
		s.shell()
		s.finish(job.Done{}, nil)
		return
	}
	rec, err := s.runJob()
	s.finish(rec, err)
}

// shellWanted: sb.mode=shell, mode shell in the job, or no job disk when
// the host did not say it booted us for a job.
func (s *supervisor) shellWanted() bool {
	return s.cmdline.Shell() || !s.jobOK && !s.cmdline.JobExpected() || s.job != nil && s.job.Mode == job.ModeShell
}

// boot brings the appliance up to "ready": job read, userland mounted.
func (s *supervisor) boot() error {
	if err := s.stack.MountAll(boot.EarlyMounts); err != nil {
		return fmt.Errorf("early mounts: %w", err)
	}
	s.early = len(s.stack.Mounted())
	if c, err := os.OpenFile(consoleTT, os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		s.rep = report.New(c, nil)
	}
	s.reaper = boot.NewReaper()
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		s.cmdline = boot.ParseCmdline(string(b))
	}
	os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
	// The mark is logged so that the binary holds it: the image builder
	// reads the job format from it (job.FormatMark).
	s.rep.Logf("supervisor starting (kernel up %v, %s)", uptime(), strings.Trim(job.FormatMark, "\x00"))

	end := s.rep.Step("load modules")
	n, failed := boot.LoadModules(boot.ModuleList, s.rep.Logf)
	s.rep.Logf("loaded %d modules, %d failed", n, len(failed))
	end(nil)
	if p := progressPort(); p != "" {
		if w, err := openPort(p); err == nil {
			s.rep.SetPort(w)
		} else {
			s.rep.Logf("progress port %s: %v", p, err)
		}
	}

	end = s.rep.Step("find disks")
	app, err := boot.WaitSerial(context.Background(), job.SerialAppliance, applianceWait)
	if err != nil {
		return end(err)
	}
	if _, err := boot.WaitSerial(context.Background(), job.SerialJob, jobDiskWait); err != nil && !s.cmdline.Shell() {
		s.rep.Logf("no job disk: %v", err)
	}
	s.serials, _ = boot.Serials(boot.SysBlock)
	s.rep.Logf("disks by serial: %v", s.serials)
	end(nil)

	if d, ok := s.serials[job.SerialJob]; ok {
		if err := s.rep.Step("mount job disk")(s.mountJobDisk(d)); err != nil {
			return err
		}
	}
	if err := s.rep.Step("mount appliance root")(s.mountRoot(app)); err != nil {
		return err
	}
	s.rootOK = true
	s.runner = &chroot.Runner{Root: Sysroot, Tracker: s.reaper}
	if s.jobOK {
		if err := s.bindJob(); err != nil {
			return err
		}
	}
	s.ready = uptime()
	s.rep.Logf("ready after %v", s.ready)
	return nil
}

// mountJobDisk mounts the job disk and starts writing the result there,
// then reads the job.
func (s *supervisor) mountJobDisk(dev string) error {
	if err := s.stack.Mount(boot.Mount{Source: "/dev/" + dev, Target: jobDir, FSType: "vfat",
		Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Data: "umask=077,flush"}); err != nil {
		return err
	}
	res, err := os.OpenFile(filepath.Join(jobDir, job.FileResult), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", job.FileResult, err)
	}
	lg, err := os.OpenFile(filepath.Join(jobDir, job.FileLog), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", job.FileLog, err)
	}
	if err := s.rep.Attach(res, lg); err != nil {
		return err
	}
	s.jobOK = true
	data, err := os.ReadFile(filepath.Join(jobDir, job.FileJob))
	if errors.Is(err, os.ErrNotExist) && s.cmdline.Shell() {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read job: %w", err)
	}
	j, err := job.Parse(data)
	if err != nil {
		return err
	}
	s.job = j
	s.rep.Logf("job: mode=%s client=%s run=%s", j.Mode, j.Client, j.RunID)
	return nil
}

// finish writes the done record, unmounts everything and returns (to
// power-off). It is safe to call with a half-booted appliance.
func (s *supervisor) finish(rec job.Done, err error) {
	if s.rep == nil {
		s.rep = report.New(os.Stderr, nil)
	}
	if !s.rep.IsDone() {
		rec.ReadyAfter = s.ready
		if s.job != nil && rec.Archive == "" && s.job.Backup != nil && !s.shellWanted() {
			rec.Archive = s.job.Backup.Archive
		}
		if e := s.rep.Done(rec, err); e != nil {
			s.rep.Logf("writing the result failed: %v", e)
		}
	}
	unix.Sync()
	if e := s.stack.UnmountAll(s.early); e != nil {
		s.rep.Logf("unmount: %v", e)
	}
	unix.Sync()
	s.rep.Logf("powering off (up %v)", uptime())
}

// uptime is the time since the kernel started.
func uptime() time.Duration {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	d, _ := boot.ParseUptime(string(b))
	return d
}

func oneLineStack() string {
	b := debug.Stack()
	if len(b) > 1500 {
		b = b[:1500]
	}
	return string(b)
}
