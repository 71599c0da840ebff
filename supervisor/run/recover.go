package run

import (
	"fmt"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
)

// restoredBackup is the backup a restore of j extracts, among snaps
// (oldest first): Restore.Archive (a restic id may be given by its first 8
// or more characters), or the latest without one; nil when it is not
// listed (duplicity's archive is a time only duplicity resolves).
func restoredBackup(j *job.Job, snaps []backend.Snapshot) *backend.Snapshot {
	archive := j.Restore.Archive
	if archive == "" {
		if len(snaps) == 0 {
			return nil
		}
		sn, err := backend.Latest(snaps)
		if err != nil {
			return nil
		}
		return &sn
	}
	for i, sn := range snaps {
		if sn.ID == archive || j.Repo.Backend == "restic" && len(archive) >= 8 && strings.HasPrefix(sn.ID, archive) {
			return &snaps[i]
		}
	}
	return nil
}

// filesIn counts the files among a backup's entries; an entry of unknown
// type counts as one (duplicity's listing has paths only, the root left
// out), so that only a backup with nothing in it counts zero.
func filesIn(entries []backend.Entry) int64 {
	var n int64
	for _, e := range entries {
		if e.Type == backend.EntryFile || e.Type == 0 {
			n++
		}
	}
	return n
}

// mkfsArgv creates a fresh filesystem of d's type on d, keeping its
// current UUID and label (the restored fstab's are set afterwards).
func mkfsArgv(d blockdev.Device) ([]string, error) {
	dev := "/dev/" + d.Dev
	var argv []string
	switch d.FSType {
	case "ext2", "ext3", "ext4":
		argv = []string{"mkfs." + d.FSType, "-q", "-F"}
		argv = appendIf(argv, "-L", d.Label)
		argv = appendIf(argv, "-U", d.UUID)
	case "xfs":
		argv = []string{"mkfs.xfs", "-q", "-f"}
		argv = appendIf(argv, "-L", d.Label)
		if d.UUID != "" {
			argv = append(argv, "-m", "uuid="+d.UUID)
		}
	case "btrfs":
		argv = []string{"mkfs.btrfs", "-q", "-f"}
		argv = appendIf(argv, "-L", d.Label)
		argv = appendIf(argv, "-U", d.UUID)
	case "vfat":
		argv = []string{"mkfs.vfat"}
		argv = appendIf(argv, "-n", d.Label)
		argv = appendIf(argv, "-i", strings.ReplaceAll(d.UUID, "-", ""))
	default:
		return nil, fmt.Errorf("%s: cannot create a %q filesystem (ext2/3/4, xfs, btrfs, vfat can be)", d.Name(), d.FSType)
	}
	return append(argv, dev), nil
}

// setIDArgvs are the commands that give the unmounted filesystem d the
// UUID and/or label of c.
func setIDArgvs(c blockdev.IDChange) ([][]string, error) {
	d := c.Dev
	dev := "/dev/" + d.Dev
	var out [][]string
	switch d.FSType {
	case "ext2", "ext3", "ext4":
		// tune2fs changes the UUID of a metadata_csum filesystem only when
		// it was checked since it was last mounted.
		if c.UUID != "" {
			out = append(out, []string{"e2fsck", "-f", "-p", dev}, []string{"tune2fs", "-U", c.UUID, dev})
		}
		if c.Label != "" {
			out = append(out, []string{"tune2fs", "-L", c.Label, dev})
		}
	case "xfs":
		if c.UUID != "" {
			out = append(out, []string{"xfs_admin", "-U", c.UUID, dev})
		}
		if c.Label != "" {
			out = append(out, []string{"xfs_admin", "-L", c.Label, dev})
		}
	case "btrfs":
		if c.UUID != "" {
			out = append(out, []string{"btrfstune", "-f", "-U", c.UUID, dev})
		}
		if c.Label != "" {
			out = append(out, []string{"btrfs", "filesystem", "label", dev, c.Label})
		}
	case "vfat":
		if c.UUID != "" {
			out = append(out, []string{"fatlabel", "-i", dev, strings.ReplaceAll(strings.ToUpper(c.UUID), "-", "")})
		}
		if c.Label != "" {
			out = append(out, []string{"fatlabel", dev, c.Label})
		}
	default:
		return nil, fmt.Errorf("%s: cannot change the UUID or label of a %q filesystem: set it by hand (hostctl rescue) to %s", d.Name(), d.FSType, c)
	}
	return out, nil
}

func appendIf(argv []string, flag, v string) []string {
	if v == "" {
		return argv
	}
	return append(argv, flag, v)
}
