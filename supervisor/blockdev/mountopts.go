package blockdev

import (
	"bufio"
	"strings"

	"golang.org/x/sys/unix"
)

// Use is what a client filesystem is mounted for; it decides the mount's
// flags. A guest's filesystem is attacker input: whatever it holds must
// never run, gain privileges or open a device in the appliance, unless an
// operator deliberately enters the client's own system.
type Use int

const (
	// Snapshot: a backup reads it. ro,noexec,nosuid,nodev.
	Snapshot Use = iota
	// Destination: a file restore writes into it. noexec,nosuid,nodev
	// (a restore creates setuid files and device nodes, it runs none).
	Destination
	// System: the client's own system, entered with chroot by the
	// operator: the end_recovery hook of an in-place recovery (operator
	// configuration, e.g. grub-install) and the rescue shell's
	// chroot-target. It must run programs, so it is not noexec; nosuid,nodev
	// still (the chroot runs as root and binds the appliance's /dev).
	// Nothing of the appliance's own ever runs from it: such mounts lie
	// below the restore or rescue directory, which no tool's PATH reaches.
	System
)

func (u Use) String() string {
	switch u {
	case Snapshot:
		return "read-only"
	case Destination:
		return "read-write"
	}
	return "read-write, exec"
}

// MountOptions returns the flags, data and kernel fs type for mounting d
// for use. Snapshot filesystems are mounted read-only. The host hands
// them as throwaway copy-on-write overlays, so a journal replay on a ro
// mount lands in the overlay, never on the origin; only when the device
// itself is read-only must replay be skipped (ext4 noload, xfs norecovery),
// since the kernel refuses to replay onto it. XFS snapshots share the
// origin's UUID, hence nouuid.
func MountOptions(d Device, use Use, readOnlyDev bool) (fstype string, flags uintptr, data string) {
	fstype = d.FSType
	ro := use == Snapshot
	var opts []string
	switch d.FSType {
	case "ext2", "ext3", "ext4":
		fstype = "ext4" // the ext4 driver mounts all three
		if ro && readOnlyDev {
			opts = append(opts, "noload")
		}
	case "xfs":
		opts = append(opts, "nouuid")
		if ro && readOnlyDev {
			opts = append(opts, "norecovery")
		}
	case "btrfs":
		if ro && readOnlyDev {
			opts = append(opts, "rescue=nologreplay")
		}
	case "ntfs":
		fstype = "ntfs3"
	}
	flags = unix.MS_NODEV | unix.MS_NOSUID
	if use != System {
		flags |= unix.MS_NOEXEC
	}
	if ro {
		flags |= unix.MS_RDONLY
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
