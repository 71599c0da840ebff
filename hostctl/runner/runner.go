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

// Runner holds what every job of one hostctl invocation shares. It is
// built complete by New and not changed afterwards: parallel jobs may share
// it.
type Runner struct {
	cfg    *config.Config
	virt   virt.Hypervisor
	lvm    lvm.Manager
	images Images
	ledger *ledger.Ledger
	image  Image
	accel  string // "kvm" or "tcg"
	runID  string
	// out receives hostctl's own lines for the operator (hooks,
	// snapshots, cleanup); nil: none.
	out io.Writer
	// progress shows the appliances' progress records.
	progress progress.Sink
	// backupTime, when set, is the time the backends record for the
	// backups of this run; zero means now.
	backupTime time.Time
	// leftovers are what reconciling the ledger before this run could not
	// remove: the clients they belong to do not run (nil: none).
	leftovers *Leftovers
}

// Deps are the host's machinery a Runner (and a cleanup: Undo, Reconcile)
// works through; a nil LVM or Images is the host's own tools (lvm.CLI,
// QemuImg). Tests give fakes.
type Deps struct {
	Virt   virt.Hypervisor
	LVM    lvm.Manager
	Images Images
	Ledger *ledger.Ledger
}

// withDefaults is d with the host's tools for what is nil.
func (d Deps) withDefaults() Deps {
	if d.LVM == nil {
		d.LVM = &lvm.CLI{}
	}
	if d.Images == nil {
		d.Images = QemuImg{}
	}
	return d
}

// Option sets what a Runner is built with besides its configuration and
// its Deps.
type Option func(*Runner)

// WithImage is the appliance a Runner boots and the accelerator it boots it
// with (commands that boot none need neither).
func WithImage(img Image, accel string) Option {
	return func(r *Runner) { r.image, r.accel = img, accel }
}

// WithRunID sets the run's id (default NewRunID of the time of New).
func WithRunID(id string) Option { return func(r *Runner) { r.runID = id } }

// WithOutput sends hostctl's own lines for the operator (hooks,
// snapshots, cleanup) to w.
func WithOutput(w io.Writer) Option { return func(r *Runner) { r.out = w } }

// WithProgress shows the appliances' progress records on s (default none).
func WithProgress(s progress.Sink) Option { return func(r *Runner) { r.progress = s } }

// WithBackupTime makes the backends record the backups of this run at t
// instead of now (tests of retention, imports).
func WithBackupTime(t time.Time) Option { return func(r *Runner) { r.backupTime = t } }

// WithLeftovers are what reconciling the ledger before this run could not
// remove: the jobs of their clients do not run.
func WithLeftovers(lo *Leftovers) Option { return func(r *Runner) { r.leftovers = lo } }

// New builds the Runner of one hostctl invocation.
func New(cfg *config.Config, d Deps, opts ...Option) *Runner {
	d = d.withDefaults()
	r := &Runner{cfg: cfg, virt: d.Virt, lvm: d.LVM, images: d.Images, ledger: d.Ledger,
		runID: NewRunID(time.Now()), progress: progress.None}
	for _, o := range opts {
		o(r)
	}
	if r.progress == nil {
		r.progress = progress.None
	}
	return r
}

// RunID is the id of the run the Runner's jobs belong to.
func (r *Runner) RunID() string { return r.runID }

// deps are the Runner's Deps (for its jobs' cleanup).
func (r *Runner) deps() Deps {
	return Deps{Virt: r.virt, LVM: r.lvm, Images: r.images, Ledger: r.ledger}
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
	return filepath.Join(RunsDir(r.cfg.Host.StateDir), r.runID, client)
}

func (r *Runner) logf(format string, args ...any) {
	if r.out != nil {
		fmt.Fprintf(r.out, format+"\n", args...)
	}
}
