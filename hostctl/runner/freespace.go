package runner

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/snapshot-backup/snapshot-backup/internal/units"
)

// checkFreeSpace refuses a backup job while the state dir's filesystem has
// less free space than min_free_space. The job's files go there, and so
// do the overlays of a running domain's external snapshots, which receive
// everything the guest writes until its backup ends: when one cannot grow,
// QEMU pauses the guest (its default on ENOSPC), so a full state dir stops
// the clients. Checked before the snapshot, so that a refused job changes
// nothing.
func (r *Runner) checkFreeSpace() error {
	min := int64(r.cfg.Host.MinFreeSpace)
	if min <= 0 {
		return nil
	}
	dir := r.cfg.Host.StateDir
	free, err := FreeSpace(dir)
	if err != nil {
		return fmt.Errorf("free space in the state dir %s: %w", dir, err)
	}
	if free < min {
		return fmt.Errorf("the state dir %s has %s free, less than min_free_space (%s): no snapshot taken. The overlays that receive a running guest's writes during its backup live there, and a guest whose overlay cannot grow is paused; free space there or lower min_free_space",
			dir, units.Bytes(free), units.Bytes(min))
	}
	return nil
}

// Filesystem types that keep files in memory only (statfs f_type).
const (
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

// InMemory says whether dir, or the nearest existing directory above it
// (the run dir is created on first use), is on a tmpfs or ramfs: where job
// disks with secrets should be, so that they never reach a disk.
func InMemory(dir string) (bool, error) {
	for d := dir; ; d = filepath.Dir(d) {
		var st syscall.Statfs_t
		err := syscall.Statfs(d, &st)
		if err == nil {
			return st.Type == tmpfsMagic || st.Type == ramfsMagic, nil
		}
		if !errors.Is(err, syscall.ENOENT) || d == filepath.Dir(d) {
			return false, fmt.Errorf("filesystem of %s: %w", dir, err)
		}
	}
}

// FreeSpace returns the bytes available in dir's filesystem.
func FreeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
