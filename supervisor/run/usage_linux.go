package run

import (
	"bufio"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// usedBytes sums the space used by the filesystems mounted at or below dir:
// what a backup of dir will roughly read (sparse files count only what is
// allocated), for the host's progress estimate. 0 when unknown.
func usedBytes(dir string) int64 {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp != dir && !strings.HasPrefix(mp, dir+"/") {
			continue
		}
		var st unix.Statfs_t
		if unix.Statfs(mp, &st) == nil {
			total += int64(st.Blocks-st.Bfree) * int64(st.Bsize)
		}
	}
	return total
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, …).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := (s[i+1]-'0')*64 + (s[i+2]-'0')*8 + (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
