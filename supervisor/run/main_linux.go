package run

import (
	"fmt"
	"os"
	"runtime/debug"
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

// supervisor is the state of one boot: the mounts it made, where it
// reports, how it runs tools, and what boot brought up (b, set once when
// boot returns).
type supervisor struct {
	stack  boot.Stack
	early  int // number of early mounts, unmounted last
	rep    *report.Reporter
	reaper *boot.Reaper
	runner *chroot.Runner
	b      booted
	// vmDir is the backup's VM record directory (recordVM), "" when
	// there is none; vmErr why a disk client's record is missing.
	vmDir, vmSummary string
	vmErr            error
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
	b, err := s.boot()
	s.b = b
	if err != nil && !b.shellWanted() {
		s.finish(job.Done{}, err)
		return
	}
	if err != nil || b.shellWanted() {
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

// finish writes the done record, unmounts everything and returns (to
// power-off). It is safe to call with a half-booted appliance.
func (s *supervisor) finish(rec job.Done, err error) {
	if s.rep == nil {
		s.rep = report.New(os.Stderr, nil)
	}
	if j := s.b.job; j != nil && rec.Archive == "" && j.Backup != nil && !s.b.shellWanted() {
		rec.Archive = j.Backup.Archive
	}
	s.writeDone(rec, err)
	unix.Sync()
	if e := s.stack.UnmountAll(s.early); e != nil {
		s.rep.Logf("unmount: %v", e)
	}
	unix.Sync()
	s.rep.Logf("powering off (up %v)", uptime())
}

// writeDone writes the done record unless one was written, with the
// appliance's own timing (ReadyAfter) filled in here only.
func (s *supervisor) writeDone(rec job.Done, err error) {
	if s.rep.IsDone() {
		return
	}
	rec.ReadyAfter = s.b.ready
	if e := s.rep.Done(rec, err); e != nil {
		s.rep.Logf("writing the result failed: %v", e)
	}
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
