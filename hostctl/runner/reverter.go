package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"

	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
)

// reverter undoes, newest first, the resources one job created.
type reverter struct {
	deps    Deps
	runID   string
	client  string // every entry carries it: a leftover blocks this client only
	entries []*ledger.Entry
}

// record writes e to the ledger before the resource is created; the run
// and the client are filled in.
func (r *reverter) record(e ledger.Entry) (*ledger.Entry, error) {
	e.RunID, e.Client = r.runID, r.client
	rec, err := r.deps.Ledger.Record(e)
	if err != nil {
		return nil, err
	}
	r.entries = append(r.entries, rec)
	return rec, nil
}

// undo undoes one recorded entry now (a resume, a thaw: they must not wait
// for the end of the job) on a context of its own, and drops it from the
// job's list once it is gone. When it fails, the entry stays for undoAll
// and, failing that, for the next run.
func (r *reverter) undo(ctx context.Context, e *ledger.Entry) error {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := Undo(uctx, r.deps, e); err != nil {
		return err
	}
	r.entries = slices.DeleteFunc(r.entries, func(x *ledger.Entry) bool { return x == e })
	return nil
}

// undoAll removes every recorded resource, newest first, on a context of
// its own so that a cancelled run still cleans up.
func (r *reverter) undoAll(ctx context.Context) error {
	var errs []error
	for i := len(r.entries) - 1; i >= 0; i-- {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		if err := Undo(uctx, r.deps, r.entries[i]); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	r.entries = nil
	return errors.Join(errs...)
}

// jobScope names the job a reverter works for.
type jobScope struct {
	client string // the ledger entries' client; what leftovers block
	logDir string // where a panic's stack goes
}

// reverted runs f with a fresh reverter and then undoes everything f
// recorded, whether f failed, panicked or not. It returns f's error, or
// else the cleanup's; a cleanup error is also appended to cleanups when
// that is set (job reports list them apart from the job's own error). A
// client with leftovers of an earlier run that could not be removed does
// not get to run f at all.
func (r *Runner) reverted(ctx context.Context, s jobScope, cleanups *[]string, f func(rv *reverter) error) error {
	if err := r.leftovers.Blocks(s.client); err != nil {
		return err
	}
	rv := &reverter{deps: r.deps(), runID: r.runID, client: s.client}
	err := protect(s.logDir, func() error { return f(rv) })
	if cerr := rv.undoAll(ctx); cerr != nil {
		if cleanups != nil {
			*cleanups = append(*cleanups, cerr.Error())
		}
		if err == nil {
			err = fmt.Errorf("cleanup: %w", cerr)
		}
	}
	return err
}

// panicLog is the file in a job's log directory that receives the stack
// of a panic in hostctl during the job.
const panicLog = "hostctl-panic.log"

// protect runs f and turns a panic in it into the job's error, with the
// stack written to logDir: a bug hostctl trips over in one job (on input no
// test thought of) fails that job, and its cleanup and the other clients'
// jobs still run. Panics in goroutines a job starts are not caught here.
func protect(logDir string, f func() error) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		stack := debug.Stack()
		err = fmt.Errorf("hostctl failed: panic: %v", p)
		if logDir == "" {
			return
		}
		path := filepath.Join(logDir, panicLog)
		if os.MkdirAll(logDir, 0o700) == nil && os.WriteFile(path, fmt.Appendf(nil, "panic: %v\n\n%s", p, stack), 0o600) == nil {
			err = fmt.Errorf("%w (stack: %s)", err, path)
		}
	}()
	return f()
}
