package rootfs

import (
	"os"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/mountinfo"
)

// removeTree removes the install tree. A killed mmdebstrap can leave proc,
// sys or dev mounted inside it; those are detached first so that RemoveAll
// never walks into a live mount.
func removeTree(tree string, logf func(string, ...any)) {
	mounts, err := mountsUnder(tree)
	if err != nil {
		logf("rootfs: cannot read mounts, leaving %s: %v", tree, err)
		return
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			logf("rootfs: unmount %s: %v; leaving %s", m, err, tree)
			return
		}
	}
	if err := os.RemoveAll(tree); err != nil {
		logf("rootfs: remove %s: %v", tree, err)
	}
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	mounts, err := mountinfo.Read()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range mounts {
		if mountinfo.Below(m.MountPoint, dir) {
			out = append(out, m.MountPoint)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}
