package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// A backend holds a lock in its repository while it works (borg's
// lock.exclusive and lock.roster, restic's locks/), and a backend that is
// killed leaves it there: the appliance destroyed at a time limit, by the
// overflow guard or a signal, or orphaned by a killed hostctl and removed
// by `hostctl cleanup`. No later appliance can tell that lock from a live
// one (each boot is a new host to borg and restic), so without help every
// later job of the client fails on it.
//
// A repository job therefore leaves a mark, <state_dir>/repo-locks/CLIENT,
// while its appliance runs, and removes it only when the appliance has
// ended by itself without being killed at its time limit. A mark found
// when the next job of the client starts makes that job break the
// repository's locks first (job.Repo.BreakLock). That is safe because the
// run lock lets no other job of this host use the client's repository
// meanwhile; a repository that something else locks too (another host, a
// prune on the server) must not be a client's repository.

func (r *Runner) lockMark(client string) string {
	return filepath.Join(r.cfg.Host.StateDir, "repo-locks", client)
}

// staleLock says what left a mark for client, if any.
func (r *Runner) staleLock(client string) (string, bool) {
	b, err := os.ReadFile(r.lockMark(client))
	if err != nil {
		return "", false
	}
	what := strings.TrimSpace(string(b))
	if what == "" {
		what = "an earlier appliance"
	}
	return what, true
}

// markLock records, durably, that appliance name of client is about to use
// the client's repository.
func (r *Runner) markLock(client, name string) error {
	p := r.lockMark(client)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "appliance %s\n", name)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("repository lock mark %s: %w", p, err)
	}
	return nil
}

// clearLock removes client's mark once its appliance ended by itself with
// done: unless the supervisor killed the backend at the job's time limit,
// the backend released its lock.
func (r *Runner) clearLock(client string, done job.Done) {
	if strings.HasPrefix(done.Error, job.TimeLimitExceeded) {
		return
	}
	if err := os.Remove(r.lockMark(client)); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.logf("%s: %v", client, err)
	}
}
