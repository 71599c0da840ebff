package boot

import (
	"bufio"
	"slices"
	"strings"
)

// FilesystemModules are the on-demand modules that a mount loads: each is
// named like its filesystem type.
var FilesystemModules = []string{"xfs", "btrfs"}

// NeedsModule says whether mounting a filesystem of type fstype needs its
// on-demand module loaded: the kernel does not know the type yet (known:
// /proc/filesystems), it is a filesystem's module (FilesystemModules) and
// onDemand (the image's OnDemandList) names it. fstype is what blkid read
// off a guest's disk or what its fstab says: only a filesystem name the
// list holds as a whole line is ever loaded, never one of the list's other
// modules (the network's, device-mapper's, vsock).
func NeedsModule(fstype, known, onDemand string) bool {
	if !slices.Contains(FilesystemModules, fstype) {
		return false
	}
	for _, l := range strings.Split(known, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == fstype {
			return false
		}
	}
	return slices.Contains(ParseModuleList(onDemand), fstype)
}

// ParseModuleList reads /etc/sb-modules: one module name per line in load
// order, "#" comments and blank lines ignored.
func ParseModuleList(data string) []string {
	var mods []string
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		if l != "" {
			mods = append(mods, l)
		}
	}
	return mods
}
