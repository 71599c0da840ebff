// Package mountinfo reads the kernel's mount table (/proc/self/mountinfo,
// proc(5)) and undoes the octal escapes it and fstab(5) share: the one
// parser for the appliance's confinement checks, its usage estimate, the
// guest fstab and the rootfs builder's cleanup.
package mountinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
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
func (m Mount) HasOption(o string) bool {
	return slices.Contains(m.Options, o)
}

// Read reads this process's mount table.
func Read() ([]Mount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	return Parse(b)
}

// Parse parses the content of a mountinfo file. The kernel
// escapes space, tab, newline and backslash in paths as octal (\040); they
// are unescaped here, so a path is compared as the kernel spelt it.
func Parse(data []byte) ([]Mount, error) {
	var out []Mount
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
		out = append(out, Mount{
			ID: id, Parent: parent, Dev: f[2],
			Root: Unescape(f[3]), MountPoint: Unescape(f[4]),
			Options: strings.Split(f[5], ","),
			FSType:  f[sep+1], Source: Unescape(f[sep+2]),
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

// Unescape undoes the \NNN octal escapes of the kernel's mountinfo and of
// fstab(5) (space, tab, newline, backslash in paths).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
