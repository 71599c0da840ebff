package run

import (
	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/mountinfo"
)

// usedBytes sums the space used by the filesystems mounted at or below dir:
// what a backup of dir will roughly read (sparse files count only what is
// allocated), for the host's progress estimate. 0 when unknown.
func usedBytes(dir string) int64 {
	mounts, err := mountinfo.Read()
	if err != nil {
		return 0
	}
	var total int64
	for _, m := range mounts {
		if !mountinfo.Below(m.MountPoint, dir) {
			continue
		}
		var st unix.Statfs_t
		if unix.Statfs(m.MountPoint, &st) == nil {
			total += int64(st.Blocks-st.Bfree) * int64(st.Bsize)
		}
	}
	return total
}
