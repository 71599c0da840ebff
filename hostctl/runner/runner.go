// Package runner runs hostctl's jobs on the host: it snapshots a client's
// disks, boots a throwaway appliance with them, collects the result and
// removes everything it created, recording each resource in the ledger
// before creating it so a crashed run can be cleaned up later.
package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/progress"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/image"
)

// Image names the appliance's boot files (written by `hostctl build-image`).
type Image struct {
	Kernel string
	Initrd string
	Disk   string
}

// ImageIn returns the appliance files in an image directory and checks
// that they exist and that the image's supervisor speaks this hostctl's
// job format (its manifest says), so that an old appliance is refused
// before it boots, saying to rebuild it.
func ImageIn(dir string) (Image, error) {
	img := Image{
		Kernel: filepath.Join(dir, image.KernelFile),
		Initrd: filepath.Join(dir, image.InitramfsFile),
		Disk:   filepath.Join(dir, image.ImageFile),
	}
	for _, p := range []string{img.Kernel, img.Initrd, img.Disk} {
		if _, err := os.Stat(p); err != nil {
			return img, fmt.Errorf("appliance image incomplete (%w): run `hostctl build-image` first", err)
		}
	}
	return img, image.CheckJobFormat(dir)
}

// Runner holds what every job of one hostctl invocation shares.
type Runner struct {
	Cfg  *config.Config
	Virt virt.Hypervisor
	// LVM is the host's LVM; nil means the lvm2 tools (lvm.CLI).
	LVM    lvm.Manager
	Ledger *ledger.Ledger
	Image  Image
	Accel  string // "kvm" or "tcg"
	RunID  string
	// Out receives hostctl's own lines for the operator (hooks,
	// snapshots, cleanup).
	Out io.Writer
	// Progress shows the appliances' progress records (nil: nothing).
	Progress progress.Sink
	// BackupTime, when set, is the time the backends record for the
	// backups of this run (tests of retention, imports); zero means now.
	BackupTime time.Time
	// Leftovers are what reconciling the ledger before this run could not
	// remove: the clients they belong to do not run (nil: none).
	Leftovers *Leftovers
}

// NewRunID returns a run id: sortable, readable, unique per second (the
// run lock makes runs sequential).
func NewRunID(now time.Time) string { return now.UTC().Format("20060102T150405Z") }

// Lock is the one-run-at-a-time lock in the state dir.
type Lock struct{ f *os.File }

// ErrLocked means another hostctl run holds the lock.
var ErrLocked = errors.New("another hostctl run is in progress")

// AcquireLock takes the run lock without waiting.
func AcquireLock(stateDir string) (*Lock, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", stateDir, err)
	}
	p := filepath.Join(stateDir, "run.lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", p, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock.
func (l *Lock) Release() error { return l.f.Close() }

// jobDir is where one job's temporary files and its logs live.
func (r *Runner) jobDir(client string) string {
	return filepath.Join(RunsDir(r.Cfg.Host.StateDir), r.RunID, client)
}

func (r *Runner) logf(format string, args ...any) {
	if r.Out != nil {
		fmt.Fprintf(r.Out, format+"\n", args...)
	}
}
