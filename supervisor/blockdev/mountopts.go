package blockdev

import (
	"bufio"
	"strings"

	"golang.org/x/sys/unix"
)

// MountOptions returns the flags, data and kernel fs type for mounting d.
// Snapshot filesystems (rw == false) are mounted read-only. The host hands
// them as throwaway copy-on-write overlays, so a journal replay on a ro
// mount lands in the overlay, never on the origin; only when the device
// itself is read-only must replay be skipped (ext4 noload, xfs norecovery),
// since the kernel refuses to replay onto it. XFS snapshots share the
// origin's UUID, hence nouuid.
func MountOptions(d Device, rw, readOnlyDev bool) (fstype string, flags uintptr, data string) {
	fstype = d.FSType
	var opts []string
	switch d.FSType {
	case "ext2", "ext3", "ext4":
		fstype = "ext4" // the ext4 driver mounts all three
		if !rw && readOnlyDev {
			opts = append(opts, "noload")
		}
	case "xfs":
		opts = append(opts, "nouuid")
		if !rw && readOnlyDev {
			opts = append(opts, "norecovery")
		}
	case "btrfs":
		if !rw && readOnlyDev {
			opts = append(opts, "rescue=nologreplay")
		}
	case "ntfs":
		fstype = "ntfs3"
	}
	if !rw {
		flags = unix.MS_RDONLY | unix.MS_NODEV | unix.MS_NOSUID
	}
	return fstype, flags, strings.Join(opts, ",")
}

// ParseBlkid parses `blkid -p -o export DEV` (KEY=value lines).
func ParseBlkid(out string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			m[k] = v
		}
	}
	return m
}
