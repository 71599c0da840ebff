package config

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// MountFstab as backup.mount assembles the client's tree from its own
// /etc/fstab (read in the appliance from the filesystem that holds it).
const MountFstab = job.MountFstab

// MountSpec is backup.mount as written: one selector
//
//	mount = "vg0/root"
//
// or a table of mount point = selector for a tree of several filesystems
//
//	[backup.mount]
//	"/" = "vg0/root"
//	"/var" = "vg0/var"
type MountSpec struct {
	Single string
	Table  []job.MountPoint // sorted by mount point
}

// UnmarshalTOML implements toml.Unmarshaler.
func (m *MountSpec) UnmarshalTOML(v any) error {
	switch t := v.(type) {
	case string:
		*m = MountSpec{Single: t}
		return nil
	case map[string]any:
		*m = MountSpec{}
		for where, what := range t {
			s, ok := what.(string)
			if !ok {
				return fmt.Errorf("mount point %q: want a filesystem selector string, got %T", where, what)
			}
			m.Table = append(m.Table, job.MountPoint{Where: where, What: s})
		}
		sort.Slice(m.Table, func(i, j int) bool { return m.Table[i].Where < m.Table[j].Where })
		return nil
	}
	return fmt.Errorf("want a string (\"vg0/root\", \"fstab\", …) or a table of mount point = filesystem, got %T", v)
}

// Tree is backup.mount as a job takes it.
func (m MountSpec) Tree() job.Tree {
	return job.Tree{Mount: m.Single, Mounts: slices.Clone(m.Table)}
}

// MountDesc describes a client's backup.mount (Resolved.Tree) for the
// operator (hostctl check, a recovery's plan).
func MountDesc(t job.Tree) string {
	if len(t.Mounts) == 0 {
		return t.Mount
	}
	var s []string
	for _, m := range t.Mounts {
		s = append(s, m.Where+" = "+m.What)
	}
	return strings.Join(s, ", ")
}

// checkMountTable checks a backup.mount table: absolute, distinct mount
// points, one of them "/", each a selector checkMount accepts (not "auto"
// or "fstab": a table names its filesystems).
func checkMountTable(t []job.MountPoint) error {
	var wheres []string
	for _, m := range t {
		if !path.IsAbs(m.Where) || path.Clean(m.Where) != m.Where {
			return fmt.Errorf("mount point %q: want a clean absolute path like \"/var\"", m.Where)
		}
		if slices.Contains(wheres, m.Where) {
			return fmt.Errorf("mount point %q is given twice", m.Where)
		}
		wheres = append(wheres, m.Where)
		if m.What == "" || m.What == "auto" || m.What == MountFstab {
			return fmt.Errorf("mount point %q: want the filesystem by name (\"vg0/var\", \"vdb1\", \"LABEL=…\"), not %q", m.Where, m.What)
		}
		if err := checkMount(m.What); err != nil {
			return fmt.Errorf("mount point %q: %w", m.Where, err)
		}
	}
	if !slices.Contains(wheres, "/") {
		return fmt.Errorf("no filesystem for \"/\" among the mount points %s", strings.Join(wheres, ", "))
	}
	return nil
}
