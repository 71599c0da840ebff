package blockdev

import (
	"bufio"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/mountinfo"
)

// MountPoint is one filesystem of a client's tree: What (a selector as
// ParseSpec reads it) mounted at Where (an absolute path in the client).
type MountPoint struct {
	Where string
	What  string
	// FSType is the type the guest's fstab names ("" when unknown); the
	// appliance probes the device itself and uses this only in messages.
	FSType string
	// Optional (fstab "nofail"): a filesystem that is not found is left
	// out with a note instead of failing the job.
	Optional bool
	// Subvol is a btrfs subvolume (fstab subvol=).
	Subvol string
}

// FstabEntry is one line of an fstab(5).
type FstabEntry struct {
	Line    int
	Spec    string
	File    string
	VFSType string
	Options []string
}

// ParseFstab parses an fstab: whitespace-separated fields with octal
// escapes (\040), "#" comments. Lines with fewer than three fields are
// errors: guessing would back up the wrong tree.
func ParseFstab(content string) ([]FstabEntry, error) {
	var out []FstabEntry
	sc := bufio.NewScanner(strings.NewReader(content))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("fstab line %d: %q: want at least spec, mount point and type", n, line)
		}
		e := FstabEntry{Line: n, Spec: mountinfo.Unescape(f[0]), File: mountinfo.Unescape(f[1]), VFSType: f[2]}
		if len(f) > 3 {
			e.Options = strings.Split(f[3], ",")
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// Filesystem types that are never part of a client's on-disk tree.
var virtualFS = []string{
	"swap", "tmpfs", "ramfs", "proc", "sysfs", "devpts", "devtmpfs", "cgroup", "cgroup2", "securityfs",
	"debugfs", "tracefs", "efivarfs", "mqueue", "hugetlbfs", "binfmt_misc", "pstore", "configfs",
	"fusectl", "autofs", "overlay", "squashfs", "iso9660", "udf",
	"nfs", "nfs4", "cifs", "smb3", "smbfs", "sshfs", "9p", "virtiofs", "glusterfs", "ceph", "davfs",
}

// FstabPlan turns a guest's fstab into the mounts that make up its on-disk
// tree, parents first. Swap, virtual and network filesystems, bind mounts,
// loop images and noauto entries are left out; skipped says which and why.
func FstabPlan(entries []FstabEntry) (plan []MountPoint, skipped []string, err error) {
	for _, e := range entries {
		why := ""
		switch {
		case slices.Contains(virtualFS, e.VFSType) || strings.HasPrefix(e.VFSType, "fuse"):
			why = "type " + e.VFSType
		case !path.IsAbs(e.File):
			why = "no mount point"
		case slices.Contains(e.Options, "noauto"):
			why = "noauto"
		case slices.Contains(e.Options, "bind") || slices.Contains(e.Options, "rbind"):
			why = "bind mount"
		case slices.Contains(e.Options, "loop"):
			why = "loop image"
		case strings.HasPrefix(e.Spec, "//") || strings.Contains(e.Spec, ":") && !strings.Contains(e.Spec, "="):
			why = "network filesystem"
		}
		if why != "" {
			skipped = append(skipped, fmt.Sprintf("%s on %s (%s)", e.Spec, e.File, why))
			continue
		}
		if _, err := ParseSpec(e.Spec); err != nil {
			return nil, skipped, fmt.Errorf("fstab line %d: %s on %s: %w", e.Line, e.Spec, e.File, err)
		}
		mp := MountPoint{Where: path.Clean(e.File), What: e.Spec, FSType: e.VFSType,
			Optional: slices.Contains(e.Options, "nofail")}
		for _, o := range e.Options {
			if v, ok := strings.CutPrefix(o, "subvol="); ok && e.VFSType == "btrfs" {
				mp.Subvol = v
			}
		}
		plan = append(plan, mp)
	}
	plan, err = OrderMounts(plan)
	return plan, skipped, err
}

// OrderMounts checks a mount table (absolute, distinct mount points; one
// for "/") and orders it parents first, so every filesystem is mounted
// onto the tree that holds its mount point.
func OrderMounts(mps []MountPoint) ([]MountPoint, error) {
	seen := map[string]bool{}
	out := make([]MountPoint, 0, len(mps))
	for _, m := range mps {
		if !path.IsAbs(m.Where) || slices.Contains(strings.Split(m.Where, "/"), "..") {
			return nil, fmt.Errorf("mount point %q: want an absolute path without \"..\"", m.Where)
		}
		m.Where = path.Clean(m.Where)
		if seen[m.Where] {
			return nil, fmt.Errorf("mount point %s is given twice", m.Where)
		}
		seen[m.Where] = true
		out = append(out, m)
	}
	if len(out) > 0 && !seen["/"] {
		return nil, fmt.Errorf("no filesystem for \"/\" among %d mount points", len(out))
	}
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i].Where) < depth(out[j].Where) })
	return out, nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}
