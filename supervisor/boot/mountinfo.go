package boot

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
)

// MountInfo is one line of /proc/self/mountinfo (proc(5)).
type MountInfo struct {
	ID, Parent int
	// Dev is the filesystem's st_dev as "major:minor".
	Dev string
	// Root is the directory of the filesystem that is mounted (not "/"
	// for a bind mount of a subdirectory or a btrfs subvolume).
	Root string
	// MountPoint is relative to the reading process's root.
	MountPoint string
	// Options are the per-mount options (ro, nosuid, nodev, noexec, …).
	Options []string
	FSType  string
	// Source is the mount source as the mount call gave it (/dev/vdc1).
	Source string
	// SuperOptions are the superblock's options.
	SuperOptions []string
}

// HasOption reports whether the per-mount options include o.
func (m MountInfo) HasOption(o string) bool {
	return slices.Contains(m.Options, o)
}

// ParseMountinfo parses the content of a mountinfo file. The kernel
// escapes space, tab, newline and backslash in paths as octal (\040); they
// are unescaped here, so a path is compared as the kernel spelt it.
func ParseMountinfo(data []byte) ([]MountInfo, error) {
	var out []MountInfo
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" {
			continue
		}
		// Fields 7… are optional "tag[:value]" fields, ended by "-".
		f := strings.Split(line, " ")
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 6 || sep < 0 || len(f) < sep+4 {
			return nil, fmt.Errorf("mountinfo line %d: %q: want 10 fields or more", n, line)
		}
		id, err1 := strconv.Atoi(f[0])
		parent, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("mountinfo line %d: %q: bad mount ids", n, line)
		}
		out = append(out, MountInfo{
			ID: id, Parent: parent, Dev: f[2],
			Root: blockdev.UnescapeOctal(f[3]), MountPoint: blockdev.UnescapeOctal(f[4]),
			Options: strings.Split(f[5], ","),
			FSType:  f[sep+1], Source: blockdev.UnescapeOctal(f[sep+2]),
			SuperOptions: strings.Split(f[sep+3], ","),
		})
	}
	return out, sc.Err()
}

// Below reports whether path p is dir or lies below it (both clean and
// absolute).
func Below(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}
