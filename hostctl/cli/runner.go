package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/progress"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
)

// session is what every command that takes the run lock shares: the lock,
// libvirt, the ledger, and the leftovers of crashed runs removed, as far
// as they could be (the runner's Leftovers say which clients they block).
type session struct {
	cfg    *config.Config
	runner *runner.Runner
	lock   *runner.Lock
	lv     *virt.Libvirt
	ledger *ledger.Ledger
	// leftovers are what reconciling the ledger could not remove (the
	// runner does not run their clients' jobs).
	leftovers *runner.Leftovers
}

// sessionSpec is what a command needs of its session (withSession).
type sessionSpec struct {
	// clients are the ones named on the command line, all when empty;
	// noClients: the command is about no client (cleanup, rescue --disk).
	clients   []string
	noClients bool
	// image: the command boots appliances (the image and the accelerator
	// are looked up before anything else happens).
	image bool
	// lockWait is how long to wait for a running hostctl (<0: as long as
	// it takes; 0: not at all, exit code 4).
	lockWait time.Duration
	// log receives the session's own lines (lock, leftovers) and the
	// runner's; nil: stderr.
	log io.Writer
	// progress shows the appliances' progress (--progress); nil: text on
	// log (rescue, which has no flag).
	progress progress.Sink
	// reported: the command reports its jobs like a run (run, verify). A
	// configuration that does not load then goes to the journal too, and
	// a session that does not open is reported as every client failed,
	// "not started" (reportNotStarted), with mode and asJSON.
	reported bool
	mode     string
	asJSON   bool
	// backupTime, when set, is the time the backups of this run are
	// recorded at (run --backup-time).
	backupTime time.Time
	// profile (list, restore, verify --profile) picks each client's
	// destination by its profile's name; "" is its first.
	profile string
}

// withSession is the preamble of every command that takes the run lock:
// load the configuration, select the clients, open the session, run fn,
// close the session. Usage errors (configuration, client names) come
// before the lock is taken.
func (g *Globals) withSession(ctx context.Context, sp sessionSpec, fn func(*session, []*config.Resolved) error) error {
	cfg, clients, err := g.sessionClients(sp)
	if err != nil {
		return err
	}
	return g.inSession(ctx, cfg, clients, sp, fn)
}

// sessionClients is withSession's first half, for a command that looks at
// its clients before it takes the lock (recover's plan and question).
func (g *Globals) sessionClients(sp sessionSpec) (*config.Config, []*config.Resolved, error) {
	var cfg *config.Config
	var clients []*config.Resolved
	var err error
	if sp.noClients {
		cfg, err = g.LoadConfig()
	} else {
		cfg, clients, err = g.LoadClients(sp.clients)
	}
	if err == nil {
		clients, err = destinations(clients, sp.profile)
	}
	if err != nil && sp.reported {
		journalConfigFailure(g.ConfigPath, err, g.Stderr)
	}
	return cfg, clients, err
}

// destinations is each client's destination through profile ("" its
// first). A client without it is a usage error, before anything starts.
func destinations(clients []*config.Resolved, profile string) ([]*config.Resolved, error) {
	out := make([]*config.Resolved, len(clients))
	for i, c := range clients {
		d, err := c.Destination(profile)
		if err != nil {
			return nil, &UsageError{err}
		}
		out[i] = d
	}
	return out, nil
}

// inSession is withSession's second half.
func (g *Globals) inSession(ctx context.Context, cfg *config.Config, clients []*config.Resolved, sp sessionSpec, fn func(*session, []*config.Resolved) error) error {
	log := sp.log
	if log == nil {
		log = g.Stderr
	}
	sink := sp.progress
	if sink == nil {
		sink = progress.NewText(log, isTerminal(log))
	}
	defer func() {
		if n := progress.Close(sink); n > 0 {
			fmt.Fprintf(g.Stderr, "progress: %d line(s) its reader did not take were dropped\n", n)
		}
	}()
	s, err := openSession(ctx, cfg, log, sp.lockWait, sp.image, runner.WithProgress(sink), runner.WithBackupTime(sp.backupTime))
	if err != nil {
		if sp.reported {
			return reportNotStarted(ctx, g, cfg, clients, sp.mode, err, sp.asJSON)
		}
		return err
	}
	defer s.close()
	return fn(s, clients)
}

// printResult prints a command's result: v as indented JSON (--json), or
// what text writes.
func printResult(w io.Writer, asJSON bool, v any, text func(io.Writer) error) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(w)
}

// openSession takes the run lock, connects to libvirt, reconciles the
// ledger and builds the runner (with opts). needImage is false for
// commands that boot no appliance. With lockWait, it waits that long for a
// running hostctl to finish (<0: forever). A leftover that cannot be
// removed is not an error here: it blocks the jobs of its client only
// (runner.Leftovers). An error is one that stops every client: callers
// that report runs report it (notStarted).
func openSession(ctx context.Context, cfg *config.Config, out io.Writer, wait time.Duration, needImage bool, opts ...runner.Option) (*session, error) {
	if wait < 0 {
		wait = 100 * 365 * 24 * time.Hour
	}
	lock, err := runner.AcquireLockWait(ctx, cfg.Host.StateDir, wait, func(holder string) {
		fmt.Fprintf(out, "waiting for the run lock (held by %s)\n", holder)
	})
	if err != nil {
		if errors.Is(err, runner.ErrLocked) {
			return nil, &ExitError{Code: ExitLocked, Err: err}
		}
		return nil, err
	}
	s := &session{cfg: cfg, lock: lock}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	s.lv, err = virt.NewLibvirt(cfg.Host.LibvirtURI)
	if err != nil {
		return nil, err
	}
	if s.ledger, err = ledger.Open(filepath.Join(cfg.Host.StateDir, "ledger")); err != nil {
		return nil, err
	}
	deps := runner.Deps{Virt: s.lv, Ledger: s.ledger}
	runID := runner.NewRunID(time.Now())
	lo, err := runner.ReconcileClients(ctx, deps, out)
	if err != nil {
		return nil, fmt.Errorf("the ledger of earlier runs' leftovers cannot be read, so none of them can be removed: %w", err)
	}
	if lo.Removed > 0 {
		fmt.Fprintf(out, "cleanup: removed %d leftover(s) of earlier runs\n", lo.Removed)
	}
	if err := lo.Err(); err != nil {
		fmt.Fprintf(out, "cleanup: could not remove (recorded in %s; the jobs of their clients do not run): %v\n", s.ledger.Dir(), err)
	}
	s.leftovers = lo
	opts = append([]runner.Option{runner.WithRunID(runID), runner.WithOutput(out), runner.WithLeftovers(lo)}, opts...)
	if needImage {
		img, err := runner.ImageIn(cfg.Host.ImageDir)
		if err != nil {
			return nil, err
		}
		accel, err := accelFor(ctx, cfg, img.Kernel)
		if err != nil {
			return nil, err
		}
		opts = append(opts, runner.WithImage(img, accel))
	}
	s.runner = runner.New(cfg, deps, opts...)
	ok = true
	return s, nil
}

func accelFor(ctx context.Context, cfg *config.Config, kernel string) (string, error) {
	switch a := cfg.Host.Appliance.Accel; a {
	case "kvm", "tcg":
		return a, nil
	default:
		return virt.ProbeAccel(ctx, kernel, filepath.Join(cfg.Host.StateDir, "accel"))
	}
}

func (s *session) close() {
	if s.lv != nil {
		s.lv.Close()
	}
	s.lock.Release()
}
