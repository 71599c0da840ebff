package boot

import (
	"bufio"
	"slices"
	"strings"
)

// NeedsModule says whether mounting a filesystem of type fstype needs its
// on-demand module loaded: the kernel does not know the type yet (known:
// /proc/filesystems) and onDemand (the image's OnDemandList) names it.
// fstype is what blkid read off a guest's disk: only a name the list
// holds as a whole line is ever loaded.
func NeedsModule(fstype, known, onDemand string) bool {
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
