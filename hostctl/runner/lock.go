package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The run lock is a flock(2) on <state_dir>/run.lock: the kernel drops it
// when its holder exits, however it exits, so it cannot go stale. The file
// names the holder (pid and start) for the message a second run prints.

// lockPoll is how often a waiting run tries the lock again.
const lockPoll = time.Second

// AcquireLockWait takes the run lock, waiting up to wait for a running
// hostctl to finish (0: fail at once). onWait is called once when it has to wait.
func AcquireLockWait(ctx context.Context, stateDir string, wait time.Duration, onWait func(holder string)) (*Lock, error) {
	deadline := time.Now().Add(wait)
	waited := false
	for {
		l, err := AcquireLock(stateDir)
		if err == nil {
			l.writeHolder()
			return l, nil
		}
		if !errors.Is(err, ErrLocked) {
			return nil, err
		}
		holder := LockHolder(stateDir)
		if wait <= 0 || time.Now().After(deadline) {
			if holder != "" {
				err = fmt.Errorf("%w (held by %s)", err, holder)
			}
			if waited {
				err = fmt.Errorf("%w; gave up after waiting %s", err, wait)
			}
			return nil, err
		}
		if !waited && onWait != nil {
			onWait(holder)
		}
		waited = true
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the run lock: %w", ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// writeHolder records this process in the lock file (best effort).
func (l *Lock) writeHolder() {
	if err := l.f.Truncate(0); err != nil {
		return
	}
	_, _ = l.f.WriteAt([]byte(fmt.Sprintf("pid %d since %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))), 0)
}

// LockHolder says who holds (or last held) the run lock, "" if unknown.
func LockHolder(stateDir string) string {
	b, err := os.ReadFile(filepath.Join(stateDir, "run.lock"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
