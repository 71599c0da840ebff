package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/lvm"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
)

// session is what run, restore and cleanup share: the run lock, libvirt,
// the ledger, and the leftovers of crashed runs removed, as far as they
// could be (the runner's Leftovers say which clients they block).
type session struct {
	runner *runner.Runner
	lock   *runner.Lock
	lv     *virt.Libvirt
}

// openSession takes the run lock, connects to libvirt and reconciles the
// ledger. needImage is false for commands that boot no appliance. With
// lockWait, it waits that long for a running hostctl to finish (<0: forever).
// A leftover that cannot be removed is not an error here: it blocks the
// jobs of its client only (runner.Leftovers). An error is one that stops
// every client: callers that report runs report it (notStarted).
func openSession(ctx context.Context, cfg *config.Config, out io.Writer, needImage bool, lockWait ...time.Duration) (*session, error) {
	var wait time.Duration
	if len(lockWait) > 0 {
		wait = lockWait[0]
		if wait < 0 {
			wait = 100 * 365 * 24 * time.Hour
		}
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
	s := &session{lock: lock}
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
	l, err := ledger.Open(filepath.Join(cfg.Host.StateDir, "ledger"))
	if err != nil {
		return nil, err
	}
	r := &runner.Runner{Cfg: cfg, Virt: s.lv, Ledger: l, Out: out, RunID: runner.NewRunID(time.Now())}
	lo, err := runner.ReconcileClients(ctx, s.lv, &lvm.CLI{}, l, out)
	if err != nil {
		return nil, fmt.Errorf("the ledger of earlier runs' leftovers cannot be read, so none of them can be removed: %w", err)
	}
	if lo.Removed > 0 {
		fmt.Fprintf(out, "cleanup: removed %d leftover(s) of earlier runs\n", lo.Removed)
	}
	if err := lo.Err(); err != nil {
		fmt.Fprintf(out, "cleanup: could not remove (recorded in %s; the jobs of their clients do not run): %v\n", l.Dir(), err)
	}
	r.Leftovers = lo
	if needImage {
		if r.Image, err = runner.ImageIn(cfg.Host.ImageDir); err != nil {
			return nil, err
		}
		if r.Accel, err = accelFor(ctx, cfg, r.Image.Kernel); err != nil {
			return nil, err
		}
	}
	s.runner = r
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
