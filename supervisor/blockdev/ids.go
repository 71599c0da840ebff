package blockdev

import (
	"fmt"
	"path"
	"strings"
)

// IDChange is what a filesystem of a recovered client must be given so
// that the restored system finds it: the UUID and label its restored
// fstab names ("" keeps the current one).
type IDChange struct {
	Dev   Device
	Where string
	UUID  string
	Label string
}

func (c IDChange) String() string {
	var s []string
	if c.UUID != "" {
		s = append(s, fmt.Sprintf("UUID %s → %s", orNone(c.Dev.UUID), c.UUID))
	}
	if c.Label != "" {
		s = append(s, fmt.Sprintf("LABEL %s → %s", orNone(c.Dev.Label), c.Label))
	}
	return fmt.Sprintf("%s on %s: %s", c.Dev.Name(), c.Where, strings.Join(s, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// WantedIDs compares a restored fstab with the devices mounted at its mount
// points (by absolute path inside the client) and returns the changes that
// make every UUID= and LABEL= line (also /dev/disk/by-uuid/…, by-label/…)
// find the filesystem now mounted there. Lines naming devices by path, and
// mount points not in the tree, need nothing.
func WantedIDs(fstab []FstabEntry, mounted map[string]Device) ([]IDChange, error) {
	var out []IDChange
	byDev := map[string]int{}
	for _, e := range fstab {
		d, ok := mounted[path.Clean(e.File)]
		if !ok {
			continue
		}
		sp, err := ParseSpec(e.Spec)
		if err != nil {
			continue
		}
		c := IDChange{Dev: d, Where: path.Clean(e.File)}
		switch sp.Kind {
		case "uuid":
			if !strings.EqualFold(d.UUID, sp.Value) {
				c.UUID = strings.ToLower(sp.Value)
			}
		case "label":
			if d.Label != sp.Value {
				c.Label = sp.Value
			}
		}
		if c.UUID == "" && c.Label == "" {
			continue
		}
		if i, ok := byDev[d.Dev]; ok {
			prev := &out[i]
			if c.UUID != "" && prev.UUID != "" && c.UUID != prev.UUID || c.Label != "" && prev.Label != "" && c.Label != prev.Label {
				return nil, fmt.Errorf("fstab line %d: %s on %s is also mounted on %s under another name", e.Line, d.Name(), c.Where, prev.Where)
			}
			prev.UUID, prev.Label = or(prev.UUID, c.UUID), or(prev.Label, c.Label)
			continue
		}
		byDev[d.Dev] = len(out)
		out = append(out, c)
	}
	return out, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
