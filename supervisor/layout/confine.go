package layout

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/mountinfo"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
)

// CheckConfined checks the appliance's mount table once a client's
// filesystems are mounted: every mount whose source is a client device
// (client says which sources are) lies at or below dir and carries the
// flags that use promises (nosuid,nodev; noexec unless the client's own
// system; ro for a snapshot). The mount points were resolved without
// symlinks; this is the kernel's word that nothing of the guest's landed
// anywhere else: on a tool's PATH, the job disk, the cache.
func CheckConfined(mounts []mountinfo.Mount, client func(source string) bool, dir string, use blockdev.Use) error {
	dir = filepath.Clean(dir)
	want := []string{"nosuid", "nodev"}
	if use != blockdev.System {
		want = append(want, "noexec")
	}
	if use == blockdev.Snapshot {
		want = append(want, "ro")
	}
	var bad []string
	for _, m := range mounts {
		if !client(m.Source) {
			continue
		}
		if !mountinfo.Below(m.MountPoint, dir) {
			bad = append(bad, fmt.Sprintf("%s on %s is outside %s", m.Source, m.MountPoint, dir))
			continue
		}
		for _, o := range want {
			if !m.HasOption(o) {
				bad = append(bad, fmt.Sprintf("%s on %s lacks %s", m.Source, m.MountPoint, o))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("client filesystems mounted wrongly: %s", strings.Join(bad, "; "))
	}
	return nil
}
