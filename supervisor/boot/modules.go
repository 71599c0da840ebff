package boot

import (
	"bufio"
	"strings"
)

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
