package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

func TestLockWait(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireLockWait(context.Background(), dir, 0, nil)
	require.NoError(t, err)
	require.Contains(t, LockHolder(dir), "pid "+strconv.Itoa(os.Getpid()))

	_, err = AcquireLockWait(context.Background(), dir, 0, nil)
	require.ErrorIs(t, err, ErrLocked)
	require.ErrorContains(t, err, "held by pid")

	go func() { time.Sleep(1500 * time.Millisecond); l.Release() }()
	waited := false
	start := time.Now()
	l2, err := AcquireLockWait(context.Background(), dir, time.Minute, func(string) { waited = true })
	require.NoError(t, err)
	require.True(t, waited)
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	l2.Release()
}

// A holder that is killed leaves no stale lock: flock dies with its process.
func TestLockNotStaleAfterKill(t *testing.T) {
	testutil.NeedTool(t, "flock", "util-linux")
	dir := t.TempDir()
	// -o: flock itself holds the lock, not its child.
	cmd := exec.Command("flock", "-n", "-o", filepath.Join(dir, "run.lock"), "sleep", "60")
	require.NoError(t, cmd.Start())
	time.Sleep(300 * time.Millisecond)
	_, err := AcquireLockWait(context.Background(), dir, 0, nil)
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no chance to unlock
	_ = cmd.Wait()
	l, err := AcquireLockWait(context.Background(), dir, 0, nil)
	require.NoError(t, err)
	l.Release()
}
